"""Benchmark of ``idia evaluate``'s repeated sampling against a pandas loop like the paper's.

Both work on the same stored predictions (the columns of RUN/predictions.parquet): by default
500 people x 30 photos x 21 templates, 1,000 candidates, 16 attack sizes x 20 draws.

1. vectorised: idia.evaluation's draws (one batched vote count per size), scores, verdicts and
   confusion counts; and the whole ``evaluate()`` (CIs, ROC per draw, bins) for reference;
2. pandas: per size and draw, ``groupby("person").sample(k)`` of each person's photos, then
   groupby vote counts, the majority rule (a tie is no prediction), scores and verdicts;
3. agreement: the pandas vote path run on the vectorised draws' own photo indices must give
   the same TP/FP/FN/TN for every size and draw.

    python benchmarks/bench_evaluate.py
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from idia import attack
from idia import evaluation as ev
from idia.audit import predictions_grid
from idia.metrics import confusion_counts


def stored_predictions(
    people: int, photos: int, templates: int, candidates: int, seed: int
) -> tuple[pd.DataFrame, np.ndarray]:
    """Predictions like an audit's: members name themselves on a share of photos that varies
    from person to person, everything else is a random candidate. Returns (rows, truth)."""
    rng = np.random.default_rng(seed)
    truth = np.arange(people) % 2 == 0
    strength = np.where(truth, rng.uniform(0.0, 0.4, people), 0.0)
    predicted = rng.integers(0, candidates, (people, photos, templates))
    hit = rng.random((people, photos, templates)) < strength[:, None, None]
    predicted = np.where(hit, np.arange(people)[:, None, None], predicted)
    person, photo, template = np.indices(predicted.shape).reshape(3, -1)
    rows = pd.DataFrame(
        {
            "person": person,
            "photo": photo,
            "template": template,
            "predicted": predicted.reshape(-1),
            "real_index": person,
        }
    )
    return rows, truth


def pandas_confusion(
    sampled: pd.DataFrame, predictions: pd.DataFrame, truth: np.ndarray, threshold: int
) -> dict[str, int]:
    """The majority rule in pandas on the sampled (person, photo) pairs."""
    rows = predictions.merge(sampled, on=["person", "photo"])
    votes = rows.groupby(["person", "template", "predicted"]).size().rename("votes")
    votes = votes.reset_index()
    top = votes.groupby(["person", "template"])["votes"].transform("max")
    leaders = votes[votes["votes"] == top]
    unique = leaders.groupby(["person", "template"])["predicted"].transform("size") == 1
    winners = leaders[unique]
    correct = winners["predicted"].to_numpy() == winners["person"].to_numpy()
    scores = np.bincount(winners["person"].to_numpy()[correct], minlength=len(truth))
    judged = np.zeros(len(truth), bool)
    judged[sampled["person"].unique()] = True
    verdicts = attack.is_member(scores, threshold)
    counts = confusion_counts(verdicts[judged], truth[judged])
    return {k: int(v) for k, v in counts.items()}


def pandas_protocol(
    predictions: pd.DataFrame,
    truth: np.ndarray,
    sizes: list[int],
    draws: int,
    seed: int,
    threshold: int,
) -> dict[tuple[int, int], dict[str, int]]:
    """The paper's way: for every size and draw, sample each person's photos with pandas."""
    photos = predictions[["person", "photo"]].drop_duplicates()
    per_person = photos.groupby("person")["photo"].transform("size")
    out = {}
    for size in sizes:
        eligible = photos[per_person >= size]
        for draw in range(draws):
            sampled = eligible.groupby("person").sample(n=size, random_state=seed + draw)
            out[size, draw] = pandas_confusion(sampled, predictions, truth, threshold)
    return out


def vectorised_protocol(
    predictions: pd.DataFrame,
    truth: np.ndarray,
    sizes: list[int],
    draws: int,
    seed: int,
    threshold: int,
) -> tuple[dict[tuple[int, int], dict[str, int]], dict[int, np.ndarray]]:
    """idia.evaluation's way, from the same rows; also returns the photo indices drawn."""
    n_people = len(truth)
    n_templates = int(predictions["template"].max()) + 1
    grid, n_photos = predictions_grid(predictions, n_people, n_templates)
    real = predictions.groupby("person")["real_index"].first().to_numpy()
    tables = ev.vote_tables(grid.astype(np.int32), real)
    out, drawn = {}, {}
    for size in sizes:
        indices, included = ev.sample_photo_indices(n_photos, size, draws, ev.size_rng(seed, size))
        scores = ev.draw_scores(tables, ev.selection_mask(indices, grid.shape[1]))
        verdicts = attack.is_member(scores, threshold)
        counts = confusion_counts(verdicts[:, included], truth[included], axis=-1)
        for draw in range(draws):
            out[size, draw] = {k: int(v[draw]) for k, v in counts.items()}
        drawn[size] = indices
    return out, drawn


def pandas_on_the_same_draws(
    predictions: pd.DataFrame, truth: np.ndarray, drawn: dict[int, np.ndarray], threshold: int
) -> dict[tuple[int, int], dict[str, int]]:
    out = {}
    for size, indices in drawn.items():
        for draw in range(indices.shape[0]):
            people, slots = np.nonzero(indices[draw] >= 0)
            sampled = pd.DataFrame({"person": people, "photo": indices[draw][people, slots]})
            out[size, draw] = pandas_confusion(sampled, predictions, truth, threshold)
    return out


def timed(function: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    value = function()
    return value, time.perf_counter() - start


def full_evaluate_seconds(
    predictions: pd.DataFrame, truth: np.ndarray, sizes: list[int], draws: int, seed: int
) -> float:
    """The whole ``evaluate()`` (with CIs, ROC per draw and bins) on the same predictions."""
    n_people, n_templates = len(truth), int(predictions["template"].max()) + 1
    grid, n_photos = predictions_grid(predictions, n_people, n_templates)
    real = predictions.groupby("person")["real_index"].first().to_numpy()
    shape = grid.shape[:2]
    results = pd.DataFrame(
        {
            "person": np.arange(n_people),
            "name": [f"Person {i}" for i in range(n_people)],
            "n_photos": n_photos,
            "score": attack.score(attack.majority_votes(grid)[0], real),
            "p_value": 1.0,
            "mean_real_rank": np.nan,
            "mean_real_probability": np.nan,
            "truth": pd.array(truth, dtype="boolean"),
            "count": pd.array([pd.NA] * n_people, dtype="Int64"),
        }
    )
    run = ev.RunData(
        path=Path("benchmark"),
        config={"threshold": 1, "templates": [""] * n_templates},
        results=results,
        grid=grid.astype(np.int32),
        n_photos=n_photos,
        real_index=real,
        n_candidates=int(predictions["predicted"].max()) + 1,
        photo_probability=np.full(shape, np.nan),
        photo_rank=np.full(shape, np.nan),
    )
    settings = ev.EvaluationSettings(sizes=sizes, draws=draws, seed=seed)
    _, seconds = timed(lambda: ev.evaluate(run, settings))
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=500)
    parser.add_argument("--photos", type=int, default=30)
    parser.add_argument("--templates", type=int, default=21)
    parser.add_argument("--candidates", type=int, default=1000)
    parser.add_argument("--sizes", default=",".join(map(str, ev.DEFAULT_SIZES)))
    parser.add_argument("--draws", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threshold", type=int, default=1)
    args = parser.parse_args()
    sizes = ev.parse_sizes(args.sizes)
    predictions, truth = stored_predictions(
        args.people, args.photos, args.templates, args.candidates, args.seed
    )
    print(
        f"stored predictions: {args.people} people x {args.photos} photos x {args.templates} "
        f"templates ({len(predictions):,} rows), {args.candidates} candidates; "
        f"{len(sizes)} sizes x {args.draws} draws, tau {args.threshold}"
    )
    protocol = (truth, sizes, args.draws, args.seed, args.threshold)
    vectorised_protocol(
        predictions.head(args.templates * args.photos * 4), truth[:4], [1], 1, 0, 1
    )  # warm-up: imports and first-call allocations
    (fast, drawn), fast_seconds = timed(lambda: vectorised_protocol(predictions, *protocol))
    print(f"vectorised (idia.evaluation draws, votes, verdicts, counts): {fast_seconds:.2f} s")
    full_seconds = full_evaluate_seconds(predictions, truth, sizes, args.draws, args.seed)
    print(f"vectorised, whole evaluate() incl. CIs, ROC per draw, bins: {full_seconds:.2f} s")
    slow, slow_seconds = timed(lambda: pandas_protocol(predictions, *protocol))
    print(f"pandas groupby(...).sample(k) loop: {slow_seconds:.2f} s")
    print(
        f"speed-up: {slow_seconds / fast_seconds:.0f}x (target >= 50x); whole evaluate(): "
        f"{slow_seconds / full_seconds:.0f}x"
    )
    same, check_seconds = timed(
        lambda: pandas_on_the_same_draws(predictions, truth, drawn, args.threshold)
    )
    mismatches = [key for key in fast if fast[key] != same[key]]
    print(
        f"agreement on the same draws: {len(fast) - len(mismatches)} of {len(fast)} "
        f"(size, draw) pairs give identical TP/FP/FN/TN"
        + (f"; first mismatch {mismatches[0]}" if mismatches else "")
        + f" (pandas check: {check_seconds:.1f} s)"
    )
    largest = max(sizes)
    for name, table in (("vectorised", fast), ("pandas", slow)):
        rates = [
            (c["tp"] / (c["tp"] + c["fn"]), c["fp"] / (c["fp"] + c["tn"]))
            for (size, _), c in table.items()
            if size == largest
        ]
        tpr, fpr = np.mean(rates, axis=0)
        print(f"  {name:10s} size {largest}: mean TPR {tpr:.3f}, mean FPR {fpr:.3f}")
    if mismatches:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
