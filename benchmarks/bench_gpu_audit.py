"""Audit-shaped throughput: one model, 1,000 names x 21 templates, many photos.

    python benchmarks/bench_gpu_audit.py [--model ViT-L-14] [--names 1000] [--photos 6000]
                                         [--per-person 30] [--device auto]

Random-initialised weights and random photos (speed does not depend on them), no cache, the
same code path as ``idia audit`` (text embeddings once, then one person's photos at a time).
Prints prompts/s, photos/s and the total.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from PIL import Image

from idia import IdentityInferenceAttack, attack
from idia.models.openclip import OpenCLIPModel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="ViT-L-14")
    parser.add_argument("--names", type=int, default=1000)
    parser.add_argument("--photos", type=int, default=6000)
    parser.add_argument("--per-person", type=int, default=30)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    torch.manual_seed(0)
    start = time.perf_counter()
    model = OpenCLIPModel.from_spec(args.model, "random", device=args.device,
                                    image_batch_size=args.per_person)
    if model.device.type == "cuda":
        torch.cuda.synchronize()
    load_s = time.perf_counter() - start
    n_people = args.photos // args.per_person
    people = [f"Person {i:04d} Example" for i in range(n_people)]
    idia = IdentityInferenceAttack(model, crop="none", num_names=max(args.names, n_people),
                                   cache_dir=False, progress=False)
    candidates = idia.candidates(people)
    rng = np.random.default_rng(0)
    pool = [Image.fromarray(rng.integers(0, 255, (256, 256, 3), dtype=np.uint8))
            for _ in range(64)]
    gpu = torch.cuda.get_device_name() if model.device.type == "cuda" else "cpu"
    print(f"device {model.device} ({gpu}), model {args.model} random init, load {load_s:.1f} s")

    t0 = time.perf_counter()
    idia.classifier.group_embeddings(
        [[t.replace("{}", n) for n in candidates.names] for t in idia.templates])
    text_s = time.perf_counter() - t0
    n_prompts = len(idia.templates) * len(candidates)
    print(f"text: {n_prompts} prompts in {text_s:.1f} s = {n_prompts / text_s:,.0f} prompts/s")

    t1 = time.perf_counter()
    members = 0
    for i, person in enumerate(people):
        photos = [pool[(i * args.per_person + j) % len(pool)] for j in range(args.per_person)]
        real = candidates.index_of(person)
        predictions = idia.predict(photos, candidates, real)
        winners, _ = attack.majority_votes(predictions.best)
        members += int(attack.score(winners, real) >= 1)
    photo_s = time.perf_counter() - t1
    n_photos = n_people * args.per_person
    print(f"photos: {n_photos} ({n_people} people x {args.per_person}) in {photo_s:.1f} s = "
          f"{n_photos / photo_s:,.0f} photos/s (incl. preprocessing and votes)")
    print(f"total: {text_s + photo_s:.1f} s for {n_prompts} prompts and {n_photos} photos "
          f"(+ {load_s:.1f} s model build); {members} people called members")


if __name__ == "__main__":
    main()
