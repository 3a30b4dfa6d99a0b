"""Training-frequency bins: how often a person occurs in the training data, grouped."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd

from idia.errors import IdiaError
from idia.membership import PAPER_BIN_EDGES

BinMode = Literal["auto", "exact", "paper"]
BIN_MODES: tuple[str, ...] = ("auto", "exact", "paper")
# Up to this many distinct counts (e.g. injected 1, 5, 10, 25, 50, 75) get a bin each.
MAX_EXACT_BINS = 12


class BinError(IdiaError, ValueError):
    """Bins were asked for in a way that cannot work."""


def paper_bin_labels(edges: Sequence[int] = PAPER_BIN_EDGES) -> list[str]:
    """``0-24``, ``25-49``, ..., ``150-199``, ..., ``300+``: left-closed, by lower edge."""
    labels = [f"{low}-{high - 1}" for low, high in zip(edges[:-1], edges[1:], strict=True)]
    return [*labels, f"{edges[-1]}+"]


def paper_bin_of(counts: np.ndarray, edges: Sequence[int] = PAPER_BIN_EDGES) -> np.ndarray:
    """The position of each count's bin: the last lower edge that is <= the count."""
    return np.searchsorted(np.asarray(edges), np.asarray(counts), side="right") - 1


def frequency_bins(counts: pd.Series, mode: BinMode = "auto") -> tuple[pd.Series, list[str]]:
    """Bin label per person (None without a count) and the labels in order.

    ``exact``: one bin per distinct count (injection experiments: 1, 5, 10, ...). ``paper``:
    the paper's left-closed bins (:data:`PAPER_BIN_EDGES`). ``auto``: exact when there are at
    most MAX_EXACT_BINS distinct counts.
    """
    if mode not in BIN_MODES:
        raise BinError(f"bins must be one of {', '.join(BIN_MODES)}, not {mode!r}")
    known = counts.dropna().astype(int)
    if (known < 0).any():
        raise BinError("training counts must not be negative")
    if mode == "auto":
        mode = "exact" if known.nunique() <= MAX_EXACT_BINS else "paper"
    labels = pd.Series([None] * len(counts), index=counts.index, dtype=object)
    if mode == "exact":
        values = sorted(known.unique())
        labels[known.index] = known.astype(str).to_numpy()
        return labels, [str(v) for v in values]
    ordered = paper_bin_labels()
    labels[known.index] = np.asarray(ordered, dtype=object)[paper_bin_of(known.to_numpy())]
    return labels, ordered
