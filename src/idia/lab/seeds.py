"""Several independent lab runs (one per seed: other people, other corpus, another model),
pooled: a headline that survives reruns.

OUT/seed-N/      one complete lab per seed (see :mod:`idia.lab.pipeline`); a seed whose
                 summary.json exists is kept when the command runs again
OUT/summary.json the seeds, each seed's summary, the pooled rules (people from all seeds,
                 95% intervals on the pooled counts, each seed's figures and seed-aware
                 intervals and heterogeneity tests beside them) and the trend of detection
                 with the number of injected pairs
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from idia.audit import rule_table
from idia.audit_claims import rule_verdicts
from idia.lab.faces import FacesPreset, run_faces_lab
from idia.lab.pipeline import LabError, LabPreset, run_lab
from idia.lab.pooling import CI_METHOD, seed_mean, seed_rate
from idia.lab.trend import METHOD as TREND_METHOD
from idia.lab.trend import detection_trend
from idia.run_folder import RunFolder

# what run_lab writes into a seed folder: an unfinished one holding only these is redone
LAB_ENTRIES = frozenset(
    {"data", "trainset", "model", "people", "people.csv", "membership.csv", "run", "cache",
     "report.html", "report_figures", "summary.json", "name_parts.csv"}
)


def run_seeds(
    out: str | Path,
    preset: str | LabPreset | FacesPreset,
    seeds: Sequence[int],
    log: Callable[[str], None] = print,
    familiar_non_members: bool = False,
    familiar_name_parts: bool = False,
    demographic_groups: bool = False,
    faces: str | None = None,
    threads: int | None = None,
) -> dict[str, Any]:
    """One lab per seed under ``out`` (resumable per seed), then the pooled summary; the
    controls as in :func:`idia.lab.pipeline.run_lab` (each seed's figures in ``per_seed``).
    ``faces``: real people instead of synthetic ones (:func:`idia.lab.faces.run_faces_lab`;
    ``preset`` then names one of its presets; ``threads``: its PyTorch threads)."""
    if len(set(seeds)) != len(seeds) or not seeds:
        raise LabError(f"give distinct seeds, e.g. 0,1,2 (got {list(seeds)})")
    out = Path(out).resolve()
    summaries = []
    for seed in seeds:
        folder = out / f"seed-{seed}"
        done = folder / "summary.json"
        if done.is_file():
            log(f"seed {seed}: finished earlier ({done}); kept")
            summaries.append(json.loads(done.read_text()))
            continue
        if folder.exists():
            stray = sorted(p.name for p in folder.iterdir() if p.name not in LAB_ENTRIES)
            if stray:
                raise LabError(f"{folder} holds files a lab does not write ({stray[:5]}); "
                               "move them or choose another --out")
            log(f"seed {seed}: an unfinished run is redone")
            shutil.rmtree(folder)
        log(f"=== seed {seed} ({len(summaries) + 1} of {len(seeds)}) ===")
        start = time.perf_counter()
        if faces is None:
            summary = run_lab(folder, preset, seed, log=log,
                              familiar_non_members=familiar_non_members,
                              familiar_name_parts=familiar_name_parts,
                              demographic_groups=demographic_groups)
        else:
            summary = run_faces_lab(folder, faces, preset, seed, log=log,
                                    familiar_non_members=familiar_non_members, threads=threads,
                                    familiar_name_parts=familiar_name_parts)
        summary["seconds"]["wall_s"] = round(time.perf_counter() - start, 1)
        done.write_text(json.dumps(summary, indent=2))
        summaries.append(summary)
    alpha = float(summaries[0].get("alpha") or 0.05)
    pooled = pooled_summary([out / f"seed-{s}" / "run" for s in seeds], list(seeds), alpha)
    document = {
        "seeds": list(seeds),
        "preset": summaries[0]["preset"],
        "familiar_non_members": familiar_non_members,
        "familiar_name_parts": familiar_name_parts,
        "demographic_groups": demographic_groups,
        **pooled,
        "per_seed": summaries,
        "seconds": {
            "wall_s_per_seed": [s["seconds"].get("wall_s") for s in summaries],
            "train_s_per_seed": [s["seconds"].get("train_s") for s in summaries],
        },
        "synthetic": faces is None,
        **({} if faces is None else {"faces": summaries[0]["faces"]}),
    }
    (out / "summary.json").write_text(json.dumps(document, indent=2))
    return document


def pooled_results(runs: Sequence[Path], seeds: Sequence[int]) -> pd.DataFrame:
    """The people of every run (its results), with their seed, who have photos and truth."""
    frames = []
    for run, seed in zip(runs, seeds, strict=True):
        frame = RunFolder(run).results
        frame["seed"] = seed
        frames.append(frame)
    results = pd.concat(frames, ignore_index=True)
    return results[results["truth"].notna() & (results["n_photos"] > 0)].reset_index(drop=True)


def pooled_summary(
    runs: Sequence[Path], seeds: Sequence[int], alpha: float = 0.05, seed: int = 0
) -> dict[str, Any]:
    """The audit's rules (:func:`idia.audit.rule_table`) over the people of all seeds (the
    tests' verdicts as each audit gave them, after Benjamini-Hochberg, ``unadjusted``: each
    person's p <= alpha, and the pre-set ``at_p_*`` points), beside each seed's own figures
    (``per_seed``, ``auc_per_seed``) and the seed-aware intervals and heterogeneity tests of
    :mod:`idia.lab.pooling` (``seed_aware``), and the trend of detection with the count
    (:mod:`idia.lab.trend`). ``seed`` seeds the Monte Carlo and permutation draws."""
    results = pooled_results(runs, seeds)
    rules = rule_table(results, alpha)
    per_seed = {s: rule_table(part, alpha) for s, part in results.groupby("seed")}
    found = rule_verdicts(results, alpha)
    truth = results["truth"].to_numpy(bool)
    groups = results["seed"].to_numpy()
    counts = results["count"].to_numpy(dtype=float, na_value=np.nan)
    members = results[truth].copy()
    trend: dict[str, Any] = {}
    for rule, summary in rules.items():
        summary["per_seed"] = {
            str(s): {key: per_seed[s][rule].get(key) for key in SEED_KEYS if key in summary}
            for s in seeds
        }
        summary["auc_per_seed"] = [per_seed[s][rule].get("auc") for s in seeds]
        summary["seed_aware"] = {"auc": seed_mean(summary["auc_per_seed"])}
        verdict = found[rule]["verdict"]
        if verdict is None:
            continue
        for point, values in [("", verdict), *((k, v) for k, v in found[rule].items()
                                               if k not in ("verdict", "score"))]:
            target = summary[point] if point else summary
            target.setdefault("seed_aware", {}).update(
                _seed_rates(values, truth, groups, counts, seeds, target, seed)
            )
        members[f"{rule}_verdict"] = verdict[truth]
        trend[rule] = detection_trend(members, f"{rule}_verdict", seed)
        if "unadjusted" in found[rule]:
            members[f"{rule}_unadjusted"] = found[rule]["unadjusted"][truth]
            trend[f"{rule}_unadjusted"] = detection_trend(members, f"{rule}_unadjusted", seed)
    return {
        "n_members": int(truth.sum()),
        "n_non_members": int((~truth).sum()),
        "pooled_rules": rules,
        "trend": trend,
        "seed_statistics": {"seed": seed, "interval": CI_METHOD, "trend": TREND_METHOD},
    }


# a seed's own figures kept beside the pooled ones
SEED_KEYS = ("n_members", "n_non_members", "tpr", "tpr_ci", "fpr", "fpr_ci", "auc")


def _seed_rates(
    verdict: np.ndarray,
    truth: np.ndarray,
    groups: np.ndarray,
    counts: np.ndarray,
    seeds: Sequence[int],
    summary: dict[str, Any],
    seed: int,
) -> dict[str, Any]:
    """TPR and FPR of one rule's verdicts with seed-aware intervals; the same for its TPR by
    count, written into ``summary["tpr_by_count"]``."""
    for count, cell in summary.get("tpr_by_count", {}).items():
        rows = truth & (counts == float(count))
        cell["seed_aware"] = seed_rate(verdict[rows], groups[rows], seeds, seed)
    return {
        "tpr": seed_rate(verdict[truth], groups[truth], seeds, seed),
        "fpr": seed_rate(verdict[~truth], groups[~truth], seeds, seed),
    }
