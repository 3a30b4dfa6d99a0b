"""Erasing 12 people from a lab model vs retraining it from scratch.

    python benchmarks/bench_unlearn.py LAB [--people 12] [--threads 2,1] [--steps 200]
        [--no-captions]

LAB is a finished ``idia lab`` folder (read only: the unlearned model goes to a temporary
folder). Two members of every injected count are erased with ``idia unlearn``'s defaults
(text encoder), with the lab's training captions as the clean texts, as ``idia defence``
does (``--no-captions``: the generated ones). The baseline is the lab's own training time
from LAB/summary.json: what the provider would pay to retrain without them. One run per
thread count (PyTorch's intra-op threads: on cores shared with other jobs one thread can
beat two by far), each printing load, preparation and training seconds and
``unlearn <N> people, <T> thread(s): <s> s vs retraining <s> s (<ratio>x)``.
The issue's target: at most 2 minutes for 12 people on 2 CPU cores (standard lab model).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from idia.unlearn import UnlearnSettings, unlearn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("lab", type=Path)
    parser.add_argument("--people", type=int, default=12)
    parser.add_argument("--threads", default=f"{torch.get_num_threads()},1",
                        help="comma-separated thread counts, one run each")
    parser.add_argument("--steps", type=int, default=UnlearnSettings.steps)
    parser.add_argument("--no-captions", action="store_true")
    args = parser.parse_args()
    summary = json.loads((args.lab / "summary.json").read_text())
    members = pd.read_csv(args.lab / "membership.csv").query("member")
    per_count = -(-args.people // members["count"].nunique())
    names = list(members.sort_values(["count", "name"]).groupby("count").head(per_count)["name"])
    names = names[: args.people]
    captions = None if args.no_captions else args.lab / "trainset" / "train.csv"
    print(f"lab {args.lab}: model {summary['preset']['model']}, {len(names)} people to erase, "
          f"{args.steps} steps, clean texts: {captions or 'generated'}; baseline: the lab's "
          f"training, {summary['seconds']['train_s']} s")
    for threads in (int(t) for t in args.threads.split(",")):
        torch.set_num_threads(threads)
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            result = unlearn(summary["model"], names, Path(tmp) / "model",
                             UnlearnSettings(steps=args.steps), captions=captions,
                             device="cpu", progress=False,
                             log=lambda m: print(f"  {m}"))
            total = time.perf_counter() - start
        seconds, losses = result.record["seconds"], result.record["losses"]
        retrain = summary["seconds"]["train_s"]
        print(f"  load {seconds['load_s']:.1f} s, prepare {seconds['prepare_s']:.1f} s, "
              f"train {seconds['train_s']:.1f} s, save {seconds['save_s']:.1f} s; cosine "
              f"distance to targets {losses['initial']} -> {losses['final']}")
        print(f"unlearn {len(names)} people, {threads} thread(s): {total:.1f} s vs retraining "
              f"{retrain:.1f} s ({retrain / total:.1f}x)")


if __name__ == "__main__":
    main()
