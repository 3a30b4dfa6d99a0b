"""Audit-shaped throughput per precision, and how often half precision changes the answers.

    python benchmarks/bench_gpu_audit.py [--model ViT-L-14 | --model SPEC] [--names 1000]
        [--photos 6000] [--per-person 30] [--device auto] [--precisions fp32,bf16,fp16]
        [--people DIR] [--image-size 64] [--workers N]

The same code path as ``idia audit`` (text embeddings once, then one person's photos at a
time), no cache, run once per precision on the same photos and the same prompts. Prints per
precision: prompts/s, photos/s and totals; and against fp32 (the paper's numerics): the share
of top-1 predictions (photo x template) that agree, of per-template majority winners, of
scores, and of verdicts (the paper's rule: member if score >= 1).

``--model``: an open_clip architecture, random-initialised (speed does not depend on weights),
or any model spec (e.g. a trained lab model ``open_clip:lab/model/CFG.json:lab/model/ckpt.pt``).
Photos: ``--people DIR`` (one folder per person, named after them; e.g. ``lab/people``), else
synthetic faces (``idia.synthetic``) of ``photos / per-person`` people with realistic names.
Agreement on a random-initialised model measures near-ties of an untrained model, where almost
no verdict is "member"; a trained model (``--model SPEC --people DIR``) gives the verdict
agreement that matters.
"""

from __future__ import annotations

import argparse
import copy
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from idia import IdentityInferenceAttack, attack, synthetic
from idia.faces import load_image
from idia.models import load_model
from idia.models.openclip import OpenCLIPModel


@dataclass
class Outcome:
    precision: str
    text_s: float
    photo_s: float
    best: np.ndarray  # (people, photos, templates), -1 where a person has fewer photos
    winners: np.ndarray  # (people, templates)
    scores: np.ndarray  # (people,)
    peak_gib: float  # the most GPU memory PyTorch held during the run (0 on a CPU)


def _render(jobs: list[tuple[synthetic.Identity, int, int]]) -> list[Image.Image]:
    return [synthetic.render_face(identity, k, size) for identity, k, size in jobs]


def synthetic_people(n_people: int, per_person: int, size: int, workers: int):
    identities = synthetic.named_people(n_people, name_seed=100, face_seed=0)
    jobs = [(person, k, size) for person in identities for k in range(per_person)]
    chunks = [jobs[i :: workers] for i in range(workers)]
    with ProcessPoolExecutor(workers) as pool:
        rendered = list(pool.map(_render, chunks))
    images = [None] * len(jobs)
    for i, chunk in enumerate(rendered):
        images[i::workers] = chunk
    return {
        person.name: images[i * per_person : (i + 1) * per_person]
        for i, person in enumerate(identities)
    }


def folder_people(root: str, per_person: int) -> dict[str, list[Image.Image]]:
    from idia.audit import discover_people

    people, _ = discover_people(root)
    return {p.name: [load_image(path) for path in p.photos[:per_person]] for p in people}


def build_models(args: argparse.Namespace, precisions: list[str]) -> dict[str, object]:
    """One model per precision, sharing one set of weights."""
    torch.manual_seed(0)
    spec = args.model if ":" in args.model else f"open_clip:{args.model}:random"
    first = load_model(spec, device=args.device, precision=precisions[0],
                       image_batch_size=args.per_person)
    models = {precisions[0]: first}
    for precision in precisions[1:]:
        if isinstance(first, OpenCLIPModel):
            # a copy of the tokenizer: each precision tokenizes its prompts afresh (token ids are
            # remembered per tokenizer object), as a first audit does
            models[precision] = OpenCLIPModel(
                first.model, first.preprocess, copy.deepcopy(first.tokenizer), name=first.name,
                device=str(first.device), image_batch_size=args.per_person, precision=precision)
        else:
            models[precision] = load_model(spec, device=args.device, precision=precision,
                                           image_batch_size=args.per_person)
    return models


def run(model, people: dict[str, list[Image.Image]], names: int, precision: str) -> Outcome:
    idia = IdentityInferenceAttack(model, crop="none", num_names=max(names, len(people)),
                                   progress=False)
    candidates = idia.candidates(list(people))
    on_gpu = model.device.type == "cuda"
    synchronize = torch.cuda.synchronize if on_gpu else lambda: None
    if on_gpu:
        torch.cuda.reset_peak_memory_stats(model.device)
    # untimed warm-up (CUDA context, kernels, autotuning) on texts and photos not timed below
    model.encode_texts([f"warm-up {i}" for i in range(64)])
    model.encode_images(next(iter(people.values())))
    synchronize()
    t0 = time.perf_counter()
    idia.classifier.group_embeddings(
        [[t.replace("{}", n) for n in candidates.names] for t in idia.templates])
    synchronize()
    text_s = time.perf_counter() - t0
    per_person = max(len(photos) for photos in people.values())
    best = np.full((len(people), per_person, len(idia.templates)), attack.NO_PREDICTION)
    t1 = time.perf_counter()
    for i, (person, photos) in enumerate(people.items()):
        predictions = idia.predict(photos, candidates, candidates.index_of(person))
        best[i, : len(photos)] = predictions.best
    synchronize()
    photo_s = time.perf_counter() - t1
    winners, _ = attack.majority_votes(best)
    real = np.array([candidates.index_of(p) for p in people])
    peak = torch.cuda.max_memory_allocated(model.device) / 2**30 if on_gpu else 0.0
    return Outcome(precision, text_s, photo_s, best, winners, attack.score(winners, real), peak)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="ViT-L-14")
    parser.add_argument("--names", type=int, default=1000)
    parser.add_argument("--photos", type=int, default=6000)
    parser.add_argument("--per-person", type=int, default=30)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precisions", default="fp32,bf16,fp16")
    parser.add_argument("--people", help="Folder of person folders (default: synthetic faces).")
    parser.add_argument("--image-size", type=int, default=64, help="Synthetic photo size.")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    precisions = args.precisions.split(",")
    if precisions[0] != "fp32":
        parser.error("--precisions must start with fp32, the reference")

    start = time.perf_counter()
    models = build_models(args, precisions)
    device = models["fp32"].device
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"device {device} ({gpu}), model {args.model}, built in "
          f"{time.perf_counter() - start:.1f} s")
    start = time.perf_counter()
    if args.people:
        people = folder_people(args.people, args.per_person)
    else:
        people = synthetic_people(max(1, args.photos // args.per_person), args.per_person,
                                  args.image_size, args.workers)
    n_photos = sum(len(p) for p in people.values())
    print(f"photos: {n_photos} of {len(people)} people ("
          f"{args.people or f'synthetic, {args.image_size}px'}), ready in "
          f"{time.perf_counter() - start:.1f} s; {max(args.names, len(people))} candidate "
          "names x 21 templates")

    outcomes = [run(models[p], people, args.names, p) for p in precisions]
    reference = outcomes[0]
    valid = reference.best >= 0
    n_prompts = 21 * max(args.names, len(people))
    header = ("precision", "prompts/s", "photos/s", "total s", "top-1 agree", "winners agree",
              "scores agree", "verdicts agree", "members", "peak GiB")
    print("\n" + "".join(f"{h:>15}" for h in header))
    for o in outcomes:
        members, reference_members = o.scores >= 1, reference.scores >= 1
        cells = (
            o.precision,
            f"{n_prompts / o.text_s:,.1f}",
            f"{n_photos / o.photo_s:,.1f}",
            f"{o.text_s + o.photo_s:.1f}",
            f"{(o.best == reference.best)[valid].mean():.4%}",
            f"{(o.winners == reference.winners).mean():.4%}",
            f"{(o.scores == reference.scores).mean():.2%}",
            f"{(members == reference_members).mean():.2%}",
            f"{int(members.sum())}/{len(members)}",
            f"{o.peak_gib:.2f}",
        )
        print("".join(f"{c:>15}" for c in cells))
    print("(agreement with fp32 on the same photos and prompts; verdict: member if score >= 1)")


if __name__ == "__main__":
    main()
