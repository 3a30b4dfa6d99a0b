"""Many people with known membership -> a run folder of predictions, verdicts and metrics.

The work is done one person at a time; each person's predictions are written atomically
(temporary file, then rename), so a run killed at any moment resumes with the same command and
loses nothing. Everything later steps need is in the folder; nothing is recomputed.

RUN/config.json         settings, model identity, seed, templates, people, version
RUN/candidates.parquet  the candidate names (real ones flagged)
RUN/parts/              per-person units while the run is under way
RUN/photos.parquet      per photo: person, path, status (ok / no_face / unreadable), box
RUN/predictions.parquet per (person, photo, template): predicted candidate, real name's rank
RUN/responses.parquet   per (person, photo): the responses of idia.claims (see audit_claims)
RUN/text_only.parquet   per real name: the text-only test
RUN/results.parquet/csv per person: the paper's score and verdict; p, q and verdict of the
                        name-familiarity, face-association and text-only tests; truth, count
RUN/summary.json        per rule (paper, name familiarity, face association, text only):
                        tp fp fn tn, tpr fpr with 95% intervals, auc; and the settings
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from idia import __version__, attack, audit_claims, claims
from idia.engine import IdentityInferenceAttack, photo_record
from idia.faces import usable
from idia.membership import read_membership
from idia.metrics import confusion_counts, rates, to_json_number
from idia.names import CandidateSet, normalize_name
from idia.people import PeopleFolderError, Person, find_people, sample_photos


class AuditError(ValueError):
    """The audit cannot start; the message says what to change."""


def discover_people(people_dir: str | Path) -> tuple[list[Person], list[str]]:
    """The people under audit (see :func:`idia.people.find_people`)."""
    try:
        return find_people(people_dir)
    except PeopleFolderError as err:
        raise AuditError(str(err)) from err


def write_atomic(path: Path, write: Callable[[Path], Any]) -> None:
    """Write through a temporary file in the same folder, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_json(path: Path, data: Any) -> None:
    write_atomic(path, lambda p: p.write_text(json.dumps(data, indent=2, ensure_ascii=False)))


def write_parquet(path: Path, frame: pd.DataFrame) -> None:
    write_atomic(path, lambda p: frame.to_parquet(p, index=False))


def write_arrow(path: Path, table: pa.Table) -> None:
    write_atomic(path, lambda p: pq.write_table(table, p))


def run_audit(
    attacker: IdentityInferenceAttack,
    people_dir: str | Path,
    out: str | Path,
    membership: str | Path | None = None,
    photos_per_person: int | None = None,
    overwrite: bool = False,
    log: Callable[[str], None] = print,
    alpha: float = claims.DEFAULT_ALPHA,
) -> dict[str, Any]:
    """Attack every person under ``people_dir``; write and return the run's summary.

    ``alpha``: the level of the calibrated tests' verdicts (Benjamini-Hochberg across the
    audit's people)."""
    out = Path(out)
    if photos_per_person is not None and photos_per_person < 1:
        raise AuditError(f"photos per person must be at least 1, got {photos_per_person}")
    people, warnings = discover_people(people_dir)
    for warning in warnings:
        log(f"warning: {warning}")
    truth = read_membership(membership) if membership else None
    if truth is not None:
        known = {normalize_name(p.name) for p in people}
        absent = truth.loc[~truth["key"].isin(known), "name"].tolist()
        if absent:
            log(
                f"warning: {len(absent)} people in the membership table have no photos "
                f"(ignored): {', '.join(absent[:10])}{' ...' if len(absent) > 10 else ''}"
            )
    candidates = attacker.candidates([p.name for p in people])
    config = {
        "idia_version": __version__,
        "model": attacker.model_name,
        "model_identity": attacker.classifier.identity,
        "seed": attacker.seed,
        "num_names": len(candidates),
        "candidate_source": candidates.source,
        "templates": list(attacker.templates),
        "threshold": attacker.threshold,
        "alpha": alpha,
        "crop": attacker.crop,
        "detector": None if attacker.detector is None else attacker.detector.name,
        "face_margin": attacker.face_margin,
        "photos_per_person": photos_per_person,
        "people_dir": str(Path(people_dir).resolve()),
        "membership": None if membership is None else str(Path(membership).resolve()),
        "people": [p.name for p in people],
    }
    _prepare_run_folder(out, config, overwrite)
    write_parquet(out / "candidates.parquet", candidates.to_frame())
    text = audit_claims.text_only_table(attacker.text_statistics(candidates), candidates)
    if text is not None:
        write_parquet(out / "text_only.parquet", text)
    parts = out / "parts"
    todo = [p for p in people if not (parts / f"{p.index:06d}.predictions.parquet").exists()]
    if len(todo) < len(people):
        log(f"resuming: {len(people) - len(todo)} of {len(people)} people already done")
    for person in tqdm(todo, desc="people", unit="person", disable=not attacker.progress):
        _attack_person(attacker, person, candidates, photos_per_person, parts)
    return finalize_run(
        out, people, candidates, truth, attacker.threshold, alpha=alpha, seed=attacker.seed
    )


def _prepare_run_folder(out: Path, config: dict[str, Any], overwrite: bool) -> None:
    config_path = out / "config.json"
    if config_path.exists():
        previous = json.loads(config_path.read_text())
        settings = {k: v for k, v in config.items() if k not in ("idia_version", "created")}
        changed = [k for k, v in settings.items() if previous.get(k) != v]
        if changed and not overwrite:
            raise AuditError(
                f"{out} holds a run with other settings ({', '.join(changed)}); use another "
                "--out, or --overwrite to start it again"
            )
        if changed:
            shutil.rmtree(out)
    elif out.exists() and any(out.iterdir()) and not overwrite:
        raise AuditError(f"{out} exists and is not an idia run folder; choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    if not config_path.exists():
        write_json(config_path, {**config, "created": datetime.now(UTC).isoformat()})


def _attack_person(
    attacker: IdentityInferenceAttack,
    person: Person,
    candidates: CandidateSet,
    photos_per_person: int | None,
    parts: Path,
) -> None:
    chosen = sample_photos(person, photos_per_person, attacker.seed)
    prepared = attacker.prepare(chosen)
    photo_rows = pd.DataFrame(
        [{"person": person.index, "name": person.name, **photo_record(p)} for p in prepared]
    )
    photo_rows["box"] = photo_rows["box"].map(lambda b: None if b is None else list(b))
    good = usable(prepared)
    real = candidates.index_of(person.name)
    rows: dict[str, Any]
    if good:
        predictions = attacker.predict([p.image for p in good], candidates, real)
        n_photos, n_templates = predictions.best.shape
        photo_index = np.repeat(np.arange(n_photos), n_templates)
        rows = {
            "person": np.full(n_photos * n_templates, person.index),
            "photo": photo_index,
            "path": np.array([p.path for p in good])[photo_index],
            "template": np.tile(np.arange(n_templates), n_photos),
            "predicted": predictions.best.reshape(-1),
            "real_index": np.full(n_photos * n_templates, real),
            "real_rank": _flat_or_nan(predictions.rank, n_photos * n_templates),
            "real_probability": _flat_or_nan(predictions.probability, n_photos * n_templates),
        }
        if predictions.responses is not None:
            write_arrow(
                parts / f"{person.index:06d}.responses.parquet",
                audit_claims.responses_table(person.index, predictions.responses),
            )
    else:
        rows = {
            k: []
            for k in (
                "person",
                "photo",
                "path",
                "template",
                "predicted",
                "real_index",
                "real_rank",
                "real_probability",
            )
        }
    write_parquet(parts / f"{person.index:06d}.photos.parquet", photo_rows)
    write_parquet(parts / f"{person.index:06d}.predictions.parquet", pd.DataFrame(rows))


def _flat_or_nan(values: np.ndarray | None, size: int) -> np.ndarray:
    return np.full(size, np.nan) if values is None else values.reshape(-1).astype(float)


def finalize_run(
    out: Path,
    people: list[Person],
    candidates: CandidateSet,
    truth: pd.DataFrame | None,
    threshold: int,
    alpha: float = claims.DEFAULT_ALPHA,
    seed: int = 0,
) -> dict[str, Any]:
    """Merge the per-person parts and compute verdicts and metrics from them."""
    parts = out / "parts"
    predictions = pd.concat(
        [pd.read_parquet(parts / f"{p.index:06d}.predictions.parquet") for p in people],
        ignore_index=True,
    )
    photos = pd.concat(
        [pd.read_parquet(parts / f"{p.index:06d}.photos.parquet") for p in people],
        ignore_index=True,
    )
    predictions = predictions.astype(
        {
            "person": "int64",
            "photo": "int64",
            "template": "int64",
            "predicted": "int64",
            "real_index": "int64",
        }
    )
    responses = audit_claims.read_responses(
        [parts / f"{p.index:06d}.responses.parquet" for p in people]
    )
    text_file = out / "text_only.parquet"
    text = pd.read_parquet(text_file) if text_file.exists() else None
    results = person_results(predictions, people, candidates, threshold)
    results["n_skipped"] = (
        photos[photos["status"] != "ok"]
        .groupby("person")
        .size()
        .reindex(results["person"], fill_value=0)
        .to_numpy()
    )
    if truth is not None:
        table = truth.set_index("key")
        keys = results["name"].map(normalize_name)
        results["truth"] = keys.map(table["member"]).astype("boolean")
        results["count"] = keys.map(table["count"]).astype("Int64")
        declared = keys.map(table["sex"]) if "sex" in table else None
    else:
        results["truth"] = pd.array([pd.NA] * len(results), dtype="boolean")
        results["count"] = pd.array([pd.NA] * len(results), dtype="Int64")
        declared = None
    real = np.array([candidates.index_of(p.name) for p in people])
    inferred = [candidates.sexes[r] for r in real]
    results["sex"] = pd.array(
        [
            inferred[i] if declared is None or pd.isna(declared.iloc[i]) else declared.iloc[i]
            for i in range(len(people))
        ],
        dtype="string",
    )
    n_templates = int(predictions["template"].max()) + 1 if len(predictions) else 0
    grid, n_photos = predictions_grid(predictions, len(people), n_templates)
    names, cross = audit_claims.split_responses(responses, len(people))
    tests = audit_claims.claim_columns(
        grid, n_photos, real, people, candidates,
        [None if pd.isna(s) else s for s in results["sex"]],
        names, cross, text, seed, alpha,
    )  # fmt: skip
    results = pd.concat([results, tests], axis=1)
    results["outcome"] = _outcomes(results)
    write_parquet(out / "predictions.parquet", predictions)
    if responses is not None:
        write_arrow(out / "responses.parquet", responses)
    write_parquet(out / "photos.parquet", photos)
    write_parquet(out / "results.parquet", results)
    write_atomic(out / "results.csv", lambda p: results.to_csv(p, index=False))
    summary = summarize(results, threshold, alpha, tests.attrs["method"])
    write_json(out / "summary.json", summary)
    return summary



def person_results(
    predictions: pd.DataFrame, people: list[Person], candidates: CandidateSet, threshold: int
) -> pd.DataFrame:
    """Per person: majority votes over all their photos -> score, verdict, p-value."""
    n_templates = int(predictions["template"].max()) + 1 if len(predictions) else 0
    grid, n_photos = predictions_grid(predictions, len(people), n_templates)
    winners, _ = attack.majority_votes(grid)
    real = np.array([candidates.index_of(p.name) for p in people])
    scores = attack.score(winners, real)
    grouped = predictions.groupby("person")
    return pd.DataFrame(
        {
            "person": [p.index for p in people],
            "name": [p.name for p in people],
            "n_photos": n_photos,
            "score": scores,
            "member": np.where(n_photos > 0, attack.is_member(scores, threshold), False),
            "mean_real_rank": grouped["real_rank"].mean().reindex(range(len(people))).to_numpy(),
            "mean_real_probability": grouped["real_probability"]
            .mean()
            .reindex(range(len(people)))
            .to_numpy(),
        }
    )


def predictions_grid(
    predictions: pd.DataFrame, n_people: int, n_templates: int
) -> tuple[np.ndarray, np.ndarray]:
    """Predictions as an array (people, max photos, templates), -1 where a person has fewer
    photos; and the number of photos per person."""
    n_photos = np.zeros(n_people, dtype=int)
    if len(predictions):
        counts = predictions.groupby("person")["photo"].max() + 1
        n_photos[counts.index.to_numpy()] = counts.to_numpy()
    grid = np.full((n_people, max(1, n_photos.max()), n_templates), attack.NO_PREDICTION)
    if len(predictions):
        grid[
            predictions["person"].to_numpy(),
            predictions["photo"].to_numpy(),
            predictions["template"].to_numpy(),
        ] = predictions["predicted"].to_numpy()
    return grid, n_photos


def _outcomes(results: pd.DataFrame) -> list[str | None]:
    labels = []
    for member, truth, n in zip(
        results["member"], results["truth"], results["n_photos"], strict=True
    ):
        if n == 0:
            labels.append("no_photos")
        elif pd.isna(truth):
            labels.append(None)
        else:
            labels.append(
                {
                    (True, True): "TP",
                    (True, False): "FP",
                    (False, True): "FN",
                    (False, False): "TN",
                }[(bool(member), bool(truth))]
            )
    return labels


def summarize(
    results: pd.DataFrame,
    threshold: int,
    alpha: float = claims.DEFAULT_ALPHA,
    method: str = "response",
) -> dict[str, Any]:
    """Confusion counts and rates over the people with known truth and usable photos: the
    paper's rule at the top level (as before), every rule under ``rules``."""
    judged = results[results["truth"].notna() & (results["n_photos"] > 0)]
    counts = confusion_counts(judged["member"].to_numpy(bool), judged["truth"].to_numpy(bool))
    summary: dict[str, Any] = {k: int(v) for k, v in counts.items()}
    summary.update({k: to_json_number(v) for k, v in rates(counts).items()})
    summary.update(
        {
            "threshold": threshold,
            "alpha": alpha,
            "tests": method,
            "n_people": int(len(results)),
            "n_judged": int(len(judged)),
            "n_without_truth": int(results["truth"].isna().sum()),
            "n_without_usable_photos": int((results["n_photos"] == 0).sum()),
            "n_predicted_members": int(results["member"].sum()),
            "n_verdicts": {
                claim: int(results[f"{short}_verdict"].sum())
                for claim, short in audit_claims.TEST_COLUMNS.items()
            },
        }
    )
    if len(judged) and judged["truth"].nunique() == 2:
        summary["rules"] = rule_table(judged)
    return summary


def rule_table(judged: pd.DataFrame) -> dict[str, Any]:
    """Each rule's TPR/FPR (with 95% intervals and people), AUC of its continuous score and
    TPR at low FPR, TPR by training count: the paper's rule, the three tests, the face-blind
    baseline (the name's response on other people's photos) and the top-1 versions."""
    truth = judged["truth"].to_numpy(bool)
    counts = judged["count"].to_numpy(dtype=object) if judged["count"].notna().any() else None

    def column(name: str) -> np.ndarray | None:
        return judged[name].to_numpy(float) if name in judged else None

    rules = {
        "paper": audit_claims.rule_summary(
            judged["member"].to_numpy(bool), column("score"), truth, counts
        )
    }
    for claim, short in audit_claims.TEST_COLUMNS.items():
        if judged[f"p_{short}"].notna().any():
            rules[claim] = audit_claims.rule_summary(
                judged[f"{short}_verdict"].to_numpy(bool), column(f"z_{short}"), truth, counts
            )
    if "face_blind" in judged:
        rules["face_blind"] = audit_claims.rule_summary(None, column("face_blind"), truth, None)
    return rules
