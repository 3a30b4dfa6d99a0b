"""Run folders: their layout (one home for the file names) and :class:`RunFolder`, the reader
every later step uses. :mod:`idia.audit` writes them; evaluate and report add their files.

RUN/.idia-run           marker: idia deletes (``--overwrite``) only folders that carry it
RUN/config.json         settings, model identity, seed, templates, people, version
RUN/candidates.parquet  the candidate names (real ones flagged)
RUN/parts/              per-person units while the run is under way (with a public face
                        reference, NNNNNN.face.parquet: the person's face test against it)
RUN/photos.parquet      per photo: person, path, status (ok / no_face / unreadable), box
RUN/predictions.parquet per (person, photo, template): predicted candidate, real name's rank
RUN/responses.parquet   per (person, photo): the responses of idia.claims (see audit_claims);
                        absent for a closed-box model
RUN/text_only.parquet   per real name: the text-only test against the paper's decoys (a
                        comparison); absent for a closed-box model
RUN/name_null.parquet   per person: the null of the name and text-only tests (full-name
                        decoys, or why not tested: idia.name_null), with the decoy names
RUN/name_responses.parquet per (person, photo): the person's name and each of its full-name
                        decoys on the photo (the name test's responses) and the top answer
                        among them per template; absent for a closed-box model
RUN/results.parquet/csv per person: the paper's score and verdict; p, q and verdict of the
                        name-familiarity, face-association and text-only tests; the null of
                        the name tests (null, origin, n_decoys, ...); truth, count
RUN/summary.json        per rule (paper, name familiarity, face association, text only):
                        tp fp fn tn, tpr fpr with 95% intervals, auc; and the settings
RUN/evaluation.json     ``idia evaluate`` (and its evaluation*.parquet tables)
RUN/report.html         ``idia report`` (figures under report_figures/)
"""

from __future__ import annotations

import json
import re
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from idia.errors import IdiaError
from idia.names import CandidateSet

MARKER = ".idia-run"
RUN_FORMAT = 1
CONFIG = "config.json"
CANDIDATES = "candidates.parquet"
PARTS = "parts"
PHOTOS = "photos.parquet"
PREDICTIONS = "predictions.parquet"
RESPONSES = "responses.parquet"
TEXT_ONLY = "text_only.parquet"
NAME_NULL = "name_null.parquet"
NAME_RESPONSES = "name_responses.parquet"
RESULTS = "results.parquet"
RESULTS_CSV = "results.csv"
SUMMARY = "summary.json"
EVALUATION = "evaluation.json"
EVALUATION_TABLES = ("evaluation", "evaluation_draws", "evaluation_bins")  # + ".parquet"
REPORT = "report.html"
REPORT_FIGURES = "report_figures"

# Everything idia writes into a run folder (audit, evaluate, report): only folders holding
# nothing else are ever deleted.
RUN_FILES = frozenset({
    MARKER, CONFIG, CANDIDATES, PHOTOS, PREDICTIONS, RESULTS, RESULTS_CSV, SUMMARY, EVALUATION,
    *(f"{name}.parquet" for name in EVALUATION_TABLES), REPORT, RESPONSES, TEXT_ONLY,
    NAME_NULL, NAME_RESPONSES,
})
RUN_FOLDERS = {
    PARTS: re.compile(
        r"\d{6}\.(photos|predictions|responses|name_responses|face)\.parquet|\..+\.tmp"
    ),
    REPORT_FIGURES: re.compile(r"[\w-]+\.(png|pdf)"),
}
STARTED = (CONFIG, CANDIDATES)  # written before the first person is attacked
FINISHED = (*STARTED, PREDICTIONS, RESULTS)  # what the later steps need


def part_name(person: int, kind: str) -> str:
    """The file of one person's unit under ``parts/``; ``kind``: photos, predictions,
    responses, name_responses, or face (the face test against a public reference)."""
    return f"{person:06d}.{kind}.parquet"


class RunFolderError(IdiaError, ValueError):
    """A folder is not a (finished) run folder, or one of its files cannot be read; the
    message names the folder and what is missing."""


class RunFolder:
    """A run folder written by ``idia audit``, opened for reading.

    Opening checks that ``path`` is a run folder (its config and candidates exist) and, with
    ``finished`` (the default), that the audit finished (its merged predictions and results
    exist). Each table is read on first access and kept; a missing or unreadable file raises
    :class:`RunFolderError` naming it. ``responses``, ``text_only``, ``name_nulls``,
    ``name_responses`` and ``evaluation`` are None when the folder has none (a closed-box
    model, an older run, not evaluated yet).
    """

    def __init__(self, path: str | Path, *, finished: bool = True) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise RunFolderError(f"run folder not found: {self.path}")
        if not self.path.is_dir():
            raise RunFolderError(f"{self.path} is not a folder; give an 'idia audit' run folder")
        missing = [name for name in STARTED if not (self.path / name).is_file()]
        if missing:
            raise RunFolderError(
                f"{self.path} is not an idia run folder: missing {', '.join(missing)} (give "
                "the --out folder of 'idia audit')"
            )
        missing = [name for name in FINISHED if not (self.path / name).is_file()]
        if finished and missing:
            raise RunFolderError(
                f"{self.path} is an unfinished run (rerun the same 'idia audit' command to "
                f"finish it): missing {', '.join(missing)}"
            )

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    @cached_property
    def config(self) -> dict[str, Any]:
        """The run's settings (config.json)."""
        config = self._read(CONFIG, _read_json)
        if not isinstance(config, dict):
            raise RunFolderError(f"{self.path / CONFIG} is not a JSON object")
        return config

    @cached_property
    def candidates(self) -> CandidateSet:
        """The candidate names, with the run's seed and a source naming this run."""
        frame = self._read(CANDIDATES, pd.read_parquet)
        source = f"audit run {self.path} ({self.config.get('candidate_source', 'unknown source')})"
        return CandidateSet.from_frame(frame, int(self.config.get("seed", 0)), source)

    @cached_property
    def photos(self) -> pd.DataFrame:
        return self._read(PHOTOS, pd.read_parquet)

    @cached_property
    def predictions(self) -> pd.DataFrame:
        return self._read(PREDICTIONS, pd.read_parquet)

    @cached_property
    def results(self) -> pd.DataFrame:
        return self._read(RESULTS, pd.read_parquet)

    @cached_property
    def summary(self) -> dict[str, Any]:
        return self._read(SUMMARY, _read_json)

    @cached_property
    def responses(self) -> pa.Table | None:
        return self._read(RESPONSES, pq.read_table, optional=True)

    @cached_property
    def text_only(self) -> pd.DataFrame | None:
        return self._read(TEXT_ONLY, pd.read_parquet, optional=True)

    @cached_property
    def name_nulls(self) -> pd.DataFrame | None:
        """Per person, the null of the name tests (idia.name_null.nulls_frame)."""
        return self._read(NAME_NULL, pd.read_parquet, optional=True)

    @cached_property
    def name_responses(self) -> pa.Table | None:
        return self._read(NAME_RESPONSES, pq.read_table, optional=True)

    @cached_property
    def evaluation(self) -> dict[str, Any] | None:
        """What ``idia evaluate`` wrote (evaluation.json); None before it ran."""
        return self._read(EVALUATION, _read_json, optional=True)

    def _read(self, name: str, reader: Any, optional: bool = False) -> Any:
        file = self.path / name
        if not file.is_file():
            if optional:
                return None
            raise RunFolderError(
                f"{self.path} is an unfinished run (rerun the same 'idia audit' command to "
                f"finish it): missing {name}"
            )
        try:
            return reader(file)
        except (OSError, ValueError, pa.ArrowException) as err:
            first = (str(err).splitlines() or [type(err).__name__])[0]
            raise RunFolderError(f"cannot read {file}: {first[:200]}") from err


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))
