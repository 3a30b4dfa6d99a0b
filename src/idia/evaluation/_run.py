"""A finished ``idia audit`` run folder, read into arrays aligned by person index."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from idia import audit_claims
from idia.audit import predictions_grid
from idia.claims import reference_mask
from idia.errors import IdiaError
from idia.names import CandidateSet


class EvaluationError(IdiaError, ValueError):
    """The evaluation cannot run; the message says what to change."""


@dataclass(frozen=True)
class ClaimData:
    """What the calibrated tests need per draw (from RUN/responses.parquet).

    ``name[i]``: (P_i, 1 + D) responses of person i's own name and every decoy on i's photos
    (None without photos). ``cross``: (people, max photos, people): entry (j, p, i) is person
    i's name's response on photo p of person j (NaN where j has no photo p). ``same_sex``:
    (people, D) which decoys are the name test's null for each person; ``reference``:
    (people, people) who serves as a face-test reference for whom.
    """

    name: list[np.ndarray | None]
    cross: np.ndarray
    same_sex: np.ndarray
    reference: np.ndarray


@dataclass(frozen=True)
class RunData:
    """What a run folder holds, as arrays aligned by person index."""

    path: Path
    config: dict[str, Any]
    results: pd.DataFrame
    grid: np.ndarray  # (people, max photos, templates) candidate index, -1 = no photo
    n_photos: np.ndarray  # (people,)
    real_index: np.ndarray  # (people,); -2 for people without usable photos
    n_candidates: int
    photo_probability: np.ndarray  # (people, max photos) real name's probability, NaN if none
    photo_rank: np.ndarray  # (people, max photos) real name's mean rank over templates
    claims: ClaimData | None = None  # None for a closed-box model (no scores) or an old run

    @property
    def n_templates(self) -> int:
        return self.grid.shape[2]

    @property
    def truth(self) -> pd.Series:
        return self.results["truth"]

    @property
    def has_truth(self) -> bool:
        return bool(self.truth.notna().any())

    @property
    def has_counts(self) -> bool:
        return bool(self.results["count"].notna().any())


REQUIRED_FILES = ("config.json", "candidates.parquet", "predictions.parquet", "results.parquet")


def load_run(run_dir: str | Path) -> RunData:
    """Read a finished ``idia audit`` run folder; EvaluationError if it is not one."""
    path = Path(run_dir)
    if not path.exists():
        raise EvaluationError(f"run folder not found: {path}")
    if not path.is_dir():
        raise EvaluationError(f"{path} is not a folder; give an 'idia audit' run folder")
    missing = [name for name in REQUIRED_FILES if not (path / name).is_file()]
    if missing:
        what = (
            "not an idia run folder"
            if "config.json" in missing
            else "an unfinished run (rerun the same 'idia audit' command to finish it)"
        )
        raise EvaluationError(f"{path} is {what}: missing {', '.join(missing)}")
    try:
        config = json.loads((path / "config.json").read_text())
        predictions = pd.read_parquet(path / "predictions.parquet")
        results = pd.read_parquet(path / "results.parquet")
        n_candidates = len(pd.read_parquet(path / "candidates.parquet"))
    except (OSError, ValueError) as err:
        raise EvaluationError(f"{path}: cannot read the run folder ({err})") from err
    results = results.sort_values("person").reset_index(drop=True)
    n_people = len(results)
    if not np.array_equal(results["person"].to_numpy(), np.arange(n_people)):
        raise EvaluationError(f"{path}/results.parquet: person indices are not 0..n-1")
    n_templates = len(config.get("templates") or []) or int(predictions["template"].max()) + 1
    grid, n_photos = predictions_grid(predictions, n_people, n_templates)
    real_index = np.full(n_people, -2, dtype=np.int64)
    if len(predictions):
        first = predictions.groupby("person")["real_index"].first()
        real_index[first.index.to_numpy()] = first.to_numpy()
    return RunData(
        path=path,
        config=config,
        results=results,
        grid=grid.astype(np.int32),
        n_photos=n_photos,
        real_index=real_index,
        n_candidates=n_candidates,
        photo_probability=_per_photo_mean(predictions, "real_probability", grid.shape[:2]),
        photo_rank=_per_photo_mean(predictions, "real_rank", grid.shape[:2]),
        claims=_claim_data(path, results, n_photos, grid.shape[1]),
    )


def _claim_data(
    path: Path, results: pd.DataFrame, n_photos: np.ndarray, width: int
) -> ClaimData | None:
    responses_file = path / "responses.parquet"
    if not responses_file.is_file() or "sex" not in results:
        return None
    candidates = CandidateSet.from_frame(pd.read_parquet(path / "candidates.parquet"), 0, "")
    n = len(results)
    names, cross = audit_claims.split_responses(pq.read_table(responses_file), n)
    if any(names[i] is None for i in np.flatnonzero(n_photos > 0)):
        return None
    real = np.array([candidates.index_of(name) for name in results["name"]])
    stacked = np.full((n, max(width, 1), n), np.nan, dtype=np.float32)
    for j, values in enumerate(cross):
        if values is not None:
            stacked[j, : len(values)] = values[:, real]
    decoy_sexes = candidates.decoy_sexes
    same_sex = np.stack(
        [
            np.ones(len(decoy_sexes), bool)
            if candidates.sexes[r] is None
            else decoy_sexes == candidates.sexes[r]
            for r in real
        ]
    )
    face_sexes = [None if pd.isna(s) else s for s in results["sex"]]
    return ClaimData(
        name=names,
        cross=stacked,
        same_sex=same_sex,
        reference=reference_mask(face_sexes, n_photos > 0),
    )


def _per_photo_mean(predictions: pd.DataFrame, column: str, shape: tuple[int, int]) -> np.ndarray:
    """Mean of a per-(photo, template) column over templates, as (people, photos)."""
    out = np.full(shape, np.nan)
    if len(predictions) and column in predictions:
        means = predictions.groupby(["person", "photo"])[column].mean()
        people, photos = (means.index.get_level_values(i).to_numpy() for i in (0, 1))
        out[people, photos] = means.to_numpy()
    return out
