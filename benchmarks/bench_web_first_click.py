"""How long a newcomer waits for the first verdict on ``idia web`` after ``make lab``.

Side by side, in one run, for the lab model of LAB (``lab/`` by default):

1. prepared (what ``idia web`` does now): start-up encodes the prompts and the lab's people
   once (timed apart), then the first example's check is timed, then the next examples';
2. cold (the baseline: nothing prepared): the same first example, checked by a fresh page
   whose prompts and reference people are encoded on that first click;
3. per check, the face test against the lab's people given as a folder (prepared and
   encoded again on every check, as ``check(..., reference=DIR)`` does) against a
   ReferenceSet prepared once (as the page does); both should give the same p-values (the
   statistics may differ in the last digits: the photos are encoded in other batches).

    python benchmarks/bench_web_first_click.py [--lab lab] [--threads 2]

Each figure is one run (wall clock); run it on an otherwise idle machine, or say that the
cores were shared.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lab", type=Path, default=Path("lab"))
    parser.add_argument("--threads", type=int, default=2, help="torch and BLAS threads")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from idia.engine import IdentityInferenceAttack
    from idia.serve.catalog import find_local_models, offered_models
    from idia.serve.demo import WebDemo

    offered = offered_models(find_local_models([args.lab]))
    if not offered:
        raise SystemExit(f"no model under {args.lab}: run make lab (or idia lab --out DIR)")
    label = next(iter(offered))

    def timed(action):
        start = time.perf_counter()
        value = action()
        return value, time.perf_counter() - start

    demo = WebDemo(offered, device="cpu")
    if label not in demo.labs:
        raise SystemExit(f"{label} has no lab examples (no card, or no audit run)")
    examples = demo.labs[label].examples
    _, load_s = timed(lambda: demo.model(label))
    _, prepare_s = timed(lambda: demo.prepare(label, log=lambda _: None))
    first, first_s = timed(lambda: demo.run_example(label, examples[0].name))
    rest = [timed(lambda e=e: demo.run_example(label, e.name)) for e in examples[1:]]

    cold_demo = WebDemo(offered, device="cpu")
    cold_demo.model(label)  # loading the weights is not what is compared
    cold, cold_s = timed(lambda: cold_demo.run_example(label, examples[0].name))

    model = demo.model(label)
    attacker = IdentityInferenceAttack(model, num_names=demo.num_names, crop="none",
                                       progress=False)
    photos = list(examples[0].photos)
    people = demo.labs[label].people_dir
    attacker.check(photos, examples[0].name)  # encode the prompts for both paths
    folder, folder_s = timed(lambda: attacker.check(photos, examples[0].name, reference=people))
    references, set_s = timed(lambda: attacker.reference_set(people))
    kept, kept_s = timed(lambda: attacker.check(photos, examples[0].name, reference=references))
    same = {c: t.p_value for c, t in folder.claims.items()} == {
        c: t.p_value for c, t in kept.claims.items()
    }
    drift = max(
        abs((folder.claims[c].statistic or 0) - (kept.claims[c].statistic or 0))
        for c in folder.claims
    )

    print(f"lab model: {label}; {len(examples)} examples; torch threads {args.threads}")
    print(f"{'':44s}{'prepared':>12s}{'cold (baseline)':>18s}")
    print(f"{'start-up: load the model':44s}{load_s:>11.1f}s{'':>18s}")
    print(f"{'start-up: prompts and lab people':44s}{prepare_s:>11.1f}s{'0.0s':>18s}")
    print(f"{'first example: ' + examples[0].name:44s}{first_s:>11.1f}s{cold_s:>17.1f}s")
    for example, (_, seconds) in zip(examples[1:], rest, strict=True):
        print(f"{'next example: ' + example.name:44s}{seconds:>11.1f}s")
    print(f"first verdict: {first.verdict.splitlines()[0]} (cold: {cold.verdict.splitlines()[0]})")
    print(f"{'face test per check':44s}{'set':>12s}{'folder':>18s}")
    print(f"{'  one check':44s}{kept_s:>11.1f}s{folder_s:>17.1f}s")
    print(f"{'  preparing the set once':44s}{set_s:>11.1f}s")
    print(f"same p-values both ways: {same} (statistics differ by at most {drift:.2g}: the "
          "photos are encoded in other batches)")


if __name__ == "__main__":
    main()
