"""A finished ``idia audit`` run folder, read into arrays aligned by person index."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from idia import audit_claims
from idia.audit import predictions_grid
from idia.claims import reference_mask
from idia.errors import IdiaError
from idia.names import CandidateSet
from idia.run_folder import RESULTS, RunFolder, RunFolderError


class EvaluationError(IdiaError, ValueError):
    """The evaluation cannot run; the message says what to change."""


@dataclass(frozen=True)
class ClaimData:
    """What the calibrated tests need per draw (from the run's responses).

    ``name[i]``: (P_i, 1 + D_i) responses of person i's own name and every decoy of the name
    test on i's photos (None without photos, or for a name not tested): the person's own
    full-name decoys (idia.name_null), or in runs older than them the paper's candidates.
    ``cross``: (people, max photos, people): entry (j, p, i) is person i's name's response on
    photo p of person j (NaN where j has no photo p). ``same_sex[i]``: (D_i,) which decoys are
    the name test's null for person i (all full-name decoys; the paper's decoys of i's sex);
    ``reference``: (people, people) who serves as a face-test reference for whom.
    """

    name: list[np.ndarray | None]
    cross: np.ndarray
    same_sex: list[np.ndarray | None]
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


def load_run(run_dir: str | Path | RunFolder) -> RunData:
    """Read a finished ``idia audit`` run folder; EvaluationError if it is not one."""
    try:
        folder = run_dir if isinstance(run_dir, RunFolder) else RunFolder(run_dir)
        config, predictions, results = folder.config, folder.predictions, folder.results
        candidates = folder.candidates
        responses = folder.responses if "sex" in results else None  # older runs: no tests
        name_responses = folder.name_responses
    except RunFolderError as err:
        raise EvaluationError(str(err)) from err
    path = folder.path
    results = results.sort_values("person").reset_index(drop=True)
    n_people = len(results)
    if not np.array_equal(results["person"].to_numpy(), np.arange(n_people)):
        raise EvaluationError(f"{path / RESULTS}: person indices are not 0..n-1")
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
        n_candidates=len(candidates),
        photo_probability=_per_photo_mean(predictions, "real_probability", grid.shape[:2]),
        photo_rank=_per_photo_mean(predictions, "real_rank", grid.shape[:2]),
        claims=_claim_data(responses, name_responses, candidates, results, n_photos,
                           grid.shape[1], public_face="face_reference" in config),
    )


def _claim_data(
    responses: pa.Table | None,
    name_responses: pa.Table | None,
    candidates: CandidateSet,
    results: pd.DataFrame,
    n_photos: np.ndarray,
    width: int,
    public_face: bool = False,
) -> ClaimData | None:
    """The tables the draws recompute the tests from. A run whose face test used a public
    reference (``idia audit --reference lfw``) gets no face-test references here: its draws
    leave the face test out rather than redo it against the audited people."""
    if responses is None:
        return None
    n = len(results)
    names, cross = audit_claims.split_responses(responses, n)
    if any(names[i] is None for i in np.flatnonzero(n_photos > 0)):
        return None
    real = np.array([candidates.index_of(name) for name in results["name"]])
    if name_responses is not None or "null" in results:  # the full-name null
        names, _ = audit_claims.split_name_responses(name_responses, n)
        same_sex = [None if t is None else np.ones(t.shape[1] - 1, bool) for t in names]
    else:
        decoy_sexes = candidates.decoy_sexes
        same_sex = [
            np.ones(len(decoy_sexes), bool) if candidates.sexes[r] is None
            else decoy_sexes == candidates.sexes[r]
            for r in real
        ]
    stacked = np.full((n, max(width, 1), n), np.nan, dtype=np.float32)
    for j, values in enumerate(cross):
        if values is not None:
            stacked[j, : len(values)] = values[:, real]
    face_sexes = [None if pd.isna(s) else s for s in results["sex"]]
    return ClaimData(
        name=names,
        cross=stacked,
        same_sex=same_sex,
        reference=np.zeros((n, n), bool) if public_face
        else reference_mask(face_sexes, n_photos > 0),
    )


def _per_photo_mean(predictions: pd.DataFrame, column: str, shape: tuple[int, int]) -> np.ndarray:
    """Mean of a per-(photo, template) column over templates, as (people, photos)."""
    out = np.full(shape, np.nan)
    if len(predictions) and column in predictions:
        means = predictions.groupby(["person", "photo"])[column].mean()
        people, photos = (means.index.get_level_values(i).to_numpy() for i in (0, 1))
        out[people, photos] = means.to_numpy()
    return out
