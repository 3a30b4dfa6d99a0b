"""What the full-name null costs the name tests in power, and what it buys in validity: the
name-familiarity and text-only tests of finished lab runs against their full-name decoys
(``p_name``, ``p_text``) beside the same tests against the paper's random decoys
(``p_name_paper_null``, ``p_text_paper_null``), both stored by every audit.

    python benchmarks/compare_name_nulls.py LAB/seed-3/run LAB/seed-4/run ... [--level 0.05]

Prints, per test and null: members' share at p <= level by injected count (95% Wilson), all
members, non-members' share (95% Clopper-Pearson: a valid test keeps it at most the level),
and the AUC of -p (members vs non-members; ties count half). People a null leaves untested
(no comparable decoys) are left out of that null's figures and counted. Several runs are
pooled as people (seed-aware intervals are ``idia lab --seeds``'s business).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from idia.metrics import clopper_pearson_interval, roc_curve, wilson_interval
from idia.run_folder import RunFolder

TESTS = {"name familiarity": "p_name", "text only": "p_text"}
NULLS = {"full-name decoys": "", "paper's decoys": "_paper_null"}


def share(hits: np.ndarray, interval=wilson_interval) -> str:
    n, k = len(hits), int(hits.sum())
    if n == 0:
        return "n/a"
    low, high = interval(np.array([k]), np.array([n]))
    return f"{k / n:.1%} [{low[0]:.1%}, {high[0]:.1%}] of {n}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--level", type=float, default=0.05)
    args = parser.parse_args()
    results = pd.concat([RunFolder(run).results for run in args.runs], ignore_index=True)
    results = results[results["truth"].notna() & (results["n_photos"] > 0)]
    truth = results["truth"].astype(bool).to_numpy()
    counts = results["count"].to_numpy()
    print(f"{len(args.runs)} run(s): {truth.sum()} members, {(~truth).sum()} non-members; "
          f"share at p <= {args.level}")
    for test, column in TESTS.items():
        for null, suffix in NULLS.items():
            p = results[column + suffix].to_numpy(float)
            tested = ~np.isnan(p)
            hits = p <= args.level
            roc = roc_curve(-p[tested], truth[tested])
            print(f"\n{test}, {null}: {tested.sum()} tested, {(~tested).sum()} not tested; "
                  f"AUC {roc.auc:.3f}")
            for count in sorted(set(counts[truth & tested])):
                chosen = truth & tested & (counts == count)
                print(f"  members, {int(count):>2} pairs: {share(hits[chosen])}")
            print(f"  members, all:      {share(hits[truth & tested])}")
            print(f"  non-members:       "
                  f"{share(hits[~truth & tested], clopper_pearson_interval)}")


if __name__ == "__main__":
    main()
