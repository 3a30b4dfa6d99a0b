"""What the full-name null costs a check: prompts encoded and seconds, from an empty cache and
again with the parts of the pools in memory, for a few names and decoy counts.

    python benchmarks/bench_name_null.py [--model SPEC] [--decoys 2000,200] [--cache-dir DIR]

Default model: a random tiny open_clip (2 layers, width 64: the test suite's); no photo, so a
check runs the text-only test only (the name test adds one image-text product per photo).
The origin table is read from (or extracted into) ``--cache-dir`` (default: idia's).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

NAMES = ["Conan O'Brien", "Jane Doe", "Jan Kowalski"]
TINY = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8, "head_width": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}


def tiny_spec(folder: Path) -> str:
    import open_clip
    import torch

    config = folder / "bench-tiny-clip.json"
    config.write_text(json.dumps(TINY))
    open_clip.add_model_config(config)
    torch.manual_seed(0)
    checkpoint = folder / "tiny.pt"
    torch.save({"state_dict": open_clip.create_model("bench-tiny-clip").state_dict()},
               checkpoint)
    return f"open_clip:{config}:{checkpoint}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model spec (default: a random tiny open_clip)")
    parser.add_argument("--decoys", default="2000,200", help="decoys per name, comma-separated")
    parser.add_argument("--cache-dir", help="folder of the origin table (default: idia's)")
    args = parser.parse_args()

    from idia import create_attack, name_null
    from idia.origins import load_origin_table

    table = load_origin_table(args.cache_dir)
    name_null.load_origin_table = lambda: table
    with tempfile.TemporaryDirectory() as folder:
        spec = args.model or tiny_spec(Path(folder))
        print(f"model {spec if args.model else 'random tiny open_clip'}; 21 templates; no "
              "embedding cache")
        print("decoys  name              first check: s, prompts   again: s, prompts   decoys")
        for total in map(int, args.decoys.split(",")):
            attack = create_attack(spec, name_decoys=total, use_cache=False, progress=False,
                                   device="cpu")
            for name in NAMES:
                rows = []
                for _ in range(2):
                    before = attack.classifier.encoded_texts
                    start = time.perf_counter()
                    result = attack.check([], name)
                    rows.append((time.perf_counter() - start,
                                 attack.classifier.encoded_texts - before))
                print(f"{total:>6}  {name:<16}  {rows[0][0]:8.1f} {rows[0][1]:>10,}   "
                      f"{rows[1][0]:8.1f} {rows[1][1]:>7,}   "
                      f"{result.name_null['n_decoys']:>6,} ({result.name_null['origin']})")


if __name__ == "__main__":
    main()
