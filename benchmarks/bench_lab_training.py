"""Lab training: images decoded from disk every epoch vs decoded once (``--predecode``).

    python benchmarks/bench_lab_training.py [--people 60] [--background 800] [--epochs 3]
                                            [--model idia-tiny-vit] [--image-size 64]
                                            [--batch-size 128] [--workers 1] [--repeats 1]

Renders a reduced lab plan (synthetic people injected at 1-75 pairs, a background corpus),
then trains the same plan with open_clip_train both ways, through the launcher ``idia lab``
uses (``train_clip``), alternating the two ways ``--repeats`` times. Prints, side by side:
seconds per epoch (epochs after the first; each includes the checkpoint save), start-up
(process start to the first logged step: imports, model, and for the second way the
decoding), and the share of step time spent waiting for data (open_clip_train's Data (t)
over Batch (t)). Then profiles one training step in-process, part by part: producing a batch
(disk decode + augmentation + tokenizing, vs pre-decoded), image tower, text tower, loss,
backward, optimizer step.

Timings depend on the machine and on whatever else runs on it; the script prints the torch
thread count and the CPU count it saw.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from idia import synthetic
from idia.lab import train
from idia.people import find_people

BF16 = "the same step under bf16 autocast"
LINE = re.compile(
    r"Train Epoch: (\d+) \[\s*(\d+)/(\d+) \((\d+)%\)\] Data \(t\): ([\d.]+) Batch \(t\): ([\d.]+)"
)


@dataclass
class Run:
    way: str
    launched: float
    lines: list[tuple[float, str]] = field(default_factory=list)
    finished: float = 0.0

    def epoch_ends(self) -> list[float]:
        return [t for t, line in self.lines if (m := LINE.search(line)) and m.group(4) == "100"]

    def startup(self) -> float:
        first = next(t for t, line in self.lines if LINE.search(line))
        return first - self.launched

    def epoch_seconds(self) -> list[float]:
        ends = self.epoch_ends()
        return [b - a for a, b in zip(ends, ends[1:], strict=False)]

    def data_share(self, batch_size: int) -> float:
        """Data wait over step time, each log line's averages weighted by its steps."""
        waited = total = 0.0
        previous: dict[int, int] = {}
        for _, line in self.lines:
            m = LINE.search(line)
            if not m:
                continue
            epoch, done = int(m.group(1)), int(m.group(2))
            steps = (done - previous.get(epoch, 0)) / batch_size
            previous[epoch] = done
            waited += steps * float(m.group(5))
            total += steps * float(m.group(6))
        return waited / total if total else float("nan")


def build_plan(root: Path, args: argparse.Namespace) -> Path:
    people = synthetic.named_people(args.people, name_seed=100, face_seed=0)
    inject = (1, 5, 10, 25, 50, 75)
    synthetic.write_people_folder(people, 10 + max(inject), root / "people", args.image_size)
    corpus = synthetic.background_corpus(args.background, 1, args.background // 5, seed=1)
    corpus_csv = synthetic.write_corpus(corpus, root / "corpus", args.image_size)
    training_set = train.compose_training_set(
        train.read_caption_csv(corpus_csv),
        find_people(root / "people")[0],
        inject=inject,
        members=args.people // 2,
        attack_photos=10,
        seed=0,
    )
    return train.write_training_set(training_set, root / "trainset").train_csv


def run_training(train_csv: Path, root: Path, way: str, index: int, args) -> Run:
    settings = train.TrainSettings(
        model=args.model,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=2e-3,
        warmup=20,
        workers=args.workers,
        log_every_n_steps=5,
        predecode=way == "decoded once",
    )
    run = Run(way, time.perf_counter())
    train.train_clip(
        train_csv,
        root / "logs",
        f"{way.replace(' ', '_')}_{index}",
        settings,
        on_line=lambda line: run.lines.append((time.perf_counter(), line)),
    )
    run.finished = time.perf_counter()
    return run


def profile_step(train_csv: Path, args: argparse.Namespace, steps: int = 8) -> dict[str, float]:
    """Milliseconds per training step, part by part, in this process."""
    import open_clip
    from open_clip_train.data import CsvDataset

    config = train.resolve_model_config(args.model)
    open_clip.add_model_config(config)
    torch.manual_seed(0)
    model, preprocess_train, _ = open_clip.create_model_and_transforms(config.stem)
    tokenizer = open_clip.get_tokenizer(config.stem)
    csv_args = (str(train_csv), preprocess_train, "filepath", "caption", ",", tokenizer)
    datasets = {
        "batch from disk (decode+augment+tokenize)": CsvDataset(*csv_args),
        "batch pre-decoded (augment only)": train.PredecodedCsvDataset(
            *csv_args, image_size=args.image_size
        ),
    }
    loss_fn = open_clip.ClipLoss()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model.train()
    parts: dict[str, list[float]] = {}

    @contextlib.contextmanager
    def timed(name: str):
        start = time.perf_counter()
        yield
        parts.setdefault(name, []).append((time.perf_counter() - start) * 1000)

    order = torch.randperm(len(datasets["batch pre-decoded (augment only)"]))
    for step in range(steps + 1):  # the first step warms up and is dropped
        ids = order[(torch.arange(args.batch_size) + step * args.batch_size) % len(order)]
        ids = ids.tolist()
        for name, dataset in datasets.items():
            with timed(name):
                items = [dataset[i] for i in ids]
        images = torch.stack([image for image, _ in items])
        texts = torch.stack([text for _, text in items])
        with timed("forward: image tower"):
            image_features = model.encode_image(images, normalize=True)
        with timed("forward: text tower"):
            text_features = model.encode_text(texts, normalize=True)
        with timed("forward: loss"):
            loss = loss_fn(image_features, text_features, model.logit_scale.exp())
        with timed("backward"):
            loss.backward()
        with timed("optimizer step"):
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        with timed(BF16), torch.autocast("cpu", dtype=torch.bfloat16):  # an idea, not used
            loss = loss_fn(model.encode_image(images, normalize=True),
                           model.encode_text(texts, normalize=True), model.logit_scale.exp())
            loss.backward()
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step == 0:
            parts.clear()
    return {name: statistics.median(values) for name, values in parts.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--people", type=int, default=60)
    parser.add_argument("--background", type=int, default=800)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--model", default="idia-tiny-vit")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--profile-steps", type=int, default=8)
    parser.add_argument("--out", type=Path, help="Keep the plan and logs here.")
    parser.add_argument("--profile-only", action="store_true",
                        help="Reuse the plan in --out and only profile one step.")
    args = parser.parse_args()
    root = args.out or Path(tempfile.mkdtemp(prefix="bench_lab_training_"))
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"{cpus} CPUs visible, torch threads {torch.get_num_threads()}, "
          f"dataloader workers {args.workers}; other jobs on the machine slow both ways alike "
          "only if they run throughout")
    start = time.perf_counter()
    if args.profile_only:
        train_csv = root / "trainset" / "train.csv"
        print_profile(train_csv, args)
        return
    train_csv = build_plan(root, args)
    n_pairs = sum(1 for _ in train_csv.open()) - 1
    print(f"plan: {args.people} people, {n_pairs} training pairs, {args.model} at "
          f"{args.image_size}px, batch {args.batch_size}, {args.epochs} epochs "
          f"(rendered in {time.perf_counter() - start:.0f} s, {root})")

    runs: dict[str, list[Run]] = {"from disk": [], "decoded once": []}
    for index in range(args.repeats):
        for way in runs:
            runs[way].append(run_training(train_csv, root, way, index, args))

    def row(label: str, values: list[str]) -> None:
        print(f"{label:<34}" + "".join(f"{v:>16}" for v in values))

    print()
    row("", list(runs))
    row("s per epoch (epochs 2..)", [
        f"{statistics.mean(s for r in rs for s in r.epoch_seconds()):.1f}" for rs in runs.values()
    ])
    row("start-up s", [f"{statistics.mean(r.startup() for r in rs):.1f}" for rs in runs.values()])
    row("total s", [
        f"{statistics.mean(r.finished - r.launched for r in rs):.1f}" for rs in runs.values()
    ])
    row("step time waiting for data", [
        f"{statistics.mean(r.data_share(args.batch_size) for r in rs):.1%}"
        for rs in runs.values()
    ])
    per_epoch = [statistics.mean(s for r in rs for s in r.epoch_seconds()) for rs in runs.values()]
    print(f"epoch speedup from decoding once: {per_epoch[0] / per_epoch[1]:.2f}x")

    print_profile(train_csv, args)


def print_profile(train_csv: Path, args: argparse.Namespace) -> None:
    print(f"\none training step, in-process, median of {args.profile_steps} "
          f"(batch {args.batch_size}):")
    parts = profile_step(train_csv, args, args.profile_steps)
    bf16 = parts.pop(BF16)
    compute = sum(v for k, v in parts.items() if not k.startswith("batch"))
    for name, ms in parts.items():
        share = "" if name.startswith("batch") else f"{ms / compute:6.1%} of compute"
        print(f"  {name:<44}{ms:8.1f} ms  {share}")
    print(f"  {'compute (forward + backward + step)':<44}{compute:8.1f} ms")
    print(f"  {BF16 + ' (an idea, not used)':<44}{bf16:8.1f} ms")


if __name__ == "__main__":
    main()
