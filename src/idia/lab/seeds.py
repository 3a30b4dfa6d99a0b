"""Several independent lab runs (one per seed: other people, other corpus, another model),
pooled: a headline that survives reruns.

OUT/seed-N/      one complete lab per seed (see :mod:`idia.lab.pipeline`); a seed whose
                 summary.json exists is kept when the command runs again
OUT/summary.json the seeds, each seed's summary, the pooled rules (people from all seeds,
                 95% intervals on the pooled counts) and the trend of detection with the
                 number of injected pairs
"""

from __future__ import annotations

import json
import shutil
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from idia.audit import rule_table
from idia.audit_claims import TEST_COLUMNS
from idia.lab.pipeline import LabError, LabPreset, run_lab
from idia.run_folder import RunFolder

# what run_lab writes into a seed folder: an unfinished one holding only these is redone
LAB_ENTRIES = frozenset(
    {"data", "trainset", "model", "people", "people.csv", "membership.csv", "run", "cache",
     "report.html", "report_figures", "summary.json"}
)


def run_seeds(
    out: str | Path,
    preset: str | LabPreset,
    seeds: Sequence[int],
    log: Callable[[str], None] = print,
    familiar_non_members: bool = False,
) -> dict[str, Any]:
    """One lab per seed under ``out`` (resumable per seed), then the pooled summary."""
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
        summary = run_lab(folder, preset, seed, log=log,
                          familiar_non_members=familiar_non_members)
        summary["seconds"]["wall_s"] = round(time.perf_counter() - start, 1)
        done.write_text(json.dumps(summary, indent=2))
        summaries.append(summary)
    alpha = float(summaries[0].get("alpha") or 0.05)
    pooled = pooled_summary([out / f"seed-{s}" / "run" for s in seeds], list(seeds), alpha)
    document = {
        "seeds": list(seeds),
        "preset": summaries[0]["preset"],
        "familiar_non_members": familiar_non_members,
        **pooled,
        "per_seed": summaries,
        "seconds": {
            "wall_s_per_seed": [s["seconds"].get("wall_s") for s in summaries],
            "train_s_per_seed": [s["seconds"].get("train_s") for s in summaries],
        },
        "synthetic": True,
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
    runs: Sequence[Path], seeds: Sequence[int], alpha: float = 0.05
) -> dict[str, Any]:
    """The audit's rules (:func:`idia.audit.rule_table`) over the people of all seeds (the
    tests' verdicts as each audit gave them, after Benjamini-Hochberg, and ``unadjusted``: each
    person's p <= alpha), each rule's AUC per seed, and the trend with the count."""
    results = pooled_results(runs, seeds)
    rules = rule_table(results, alpha)
    per_seed = {seed: rule_table(part, alpha) for seed, part in results.groupby("seed")}
    members = results[results["truth"]].copy()
    trend: dict[str, Any] = {}
    for rule in rules:
        rules[rule]["auc_per_seed"] = [per_seed[seed][rule]["auc"] for seed in seeds]
        if rule == "paper":
            trend[rule] = detection_trend(members, "member")
        elif rule in TEST_COLUMNS:
            short = TEST_COLUMNS[rule]
            trend[rule] = detection_trend(members, f"{short}_verdict")
            members[f"{rule}_unadjusted"] = members[f"p_{short}"] <= alpha
            trend[f"{rule}_unadjusted"] = detection_trend(members, f"{rule}_unadjusted")
    truth = results["truth"].to_numpy(bool)
    return {
        "n_members": int(truth.sum()),
        "n_non_members": int((~truth).sum()),
        "pooled_rules": rules,
        "trend": trend,
    }


def detection_trend(members: pd.DataFrame, verdict: str) -> dict[str, Any]:
    """Logistic regression of detection on log(injected pairs), with a fixed effect per seed:
    the slope (change in log-odds per e-fold more pairs), its 95% Wald interval and the
    likelihood-ratio p-value against no trend."""
    import statsmodels.formula.api as smf

    data = pd.DataFrame(
        {
            "detected": members[verdict].astype(int).to_numpy(),
            "log_count": np.log(members["count"].astype(float).to_numpy()),
            "seed": members["seed"].astype(str).to_numpy(),
        }
    )
    base = {"n": int(len(data)), "model": "logit(detected) ~ log(count) + seed"}
    if data["detected"].nunique() < 2 or data["log_count"].nunique() < 2:
        return {**base, "slope": None, "reason": "detection does not vary"}
    formula = "detected ~ log_count" + (" + C(seed)" if data["seed"].nunique() > 1 else "")
    null_formula = "detected ~ 1" + (" + C(seed)" if data["seed"].nunique() > 1 else "")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            fit = smf.logit(formula, data).fit(disp=False)
            null = smf.logit(null_formula, data).fit(disp=False)
    except Exception as err:  # separation or no convergence: say so instead of a number
        return {**base, "slope": None, "reason": f"not estimable ({type(err).__name__})"}
    from scipy.stats import chi2

    low, high = fit.conf_int().loc["log_count"]
    statistic = 2 * (fit.llf - null.llf)
    return {
        **base,
        "slope": float(fit.params["log_count"]),
        "ci": [float(low), float(high)],
        "p_value": float(chi2.sf(statistic, 1)),
    }
