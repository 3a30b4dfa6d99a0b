"""Many people with known membership -> a run folder of predictions, verdicts and metrics.

The work is done one person at a time; each person's predictions are written atomically
(temporary file, then rename), so a run killed at any moment resumes with the same command and
loses nothing. Everything later steps need is in the folder; nothing is recomputed.

RUN/config.json         settings, model identity, seed, templates, people, version
RUN/candidates.parquet  the candidate names (real ones flagged)
RUN/parts/              per-person units while the run is under way
RUN/photos.parquet      per photo: person, path, status (ok / no_face / unreadable), box
RUN/predictions.parquet per (person, photo, template): predicted candidate, real name's rank
RUN/results.parquet/csv per person: score, verdict, truth, count, p-value
RUN/summary.json        tp fp fn tn tpr fpr accuracy, and the settings
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from idia import __version__, attack
from idia.engine import IdentityInferenceAttack, photo_record
from idia.faces import list_images, usable
from idia.membership import read_membership
from idia.metrics import confusion_counts, rates, to_json_number
from idia.names import CandidateSet, display_name, normalize_name
from idia.progress import track


class AuditError(ValueError):
    """The audit cannot start; the message says what to change."""


@dataclass(frozen=True)
class Person:
    index: int
    name: str
    folder: Path
    photos: tuple[Path, ...]


def discover_people(people_dir: str | Path) -> tuple[list[Person], list[str]]:
    """One person per subfolder (folder name = the name). Returns people with at least one
    image file, and warnings for folders that were skipped."""
    root = Path(people_dir)
    if not root.exists():
        raise AuditError(f"people folder not found: {root}")
    if not root.is_dir():
        raise AuditError(f"{root} is not a folder: --people wants a folder of person folders")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise AuditError(
            f"{root} has no person folders (one subfolder per person, named after them)"
        )
    by_key: dict[str, list[Path]] = {}
    for folder in folders:
        by_key.setdefault(normalize_name(display_name(folder.name)), []).append(folder)
    duplicates = [[f.name for f in fs] for fs in by_key.values() if len(fs) > 1]
    if duplicates:
        raise AuditError(f"the same person has several folders: {duplicates}; merge them")
    people, warnings = [], []
    for folder in folders:
        images = list_images(folder)
        if not images:
            warnings.append(f"{folder.name}: no image files; skipped")
            continue
        people.append(Person(len(people), display_name(folder.name), folder, tuple(images)))
    if not people:
        raise AuditError(f"no person folder under {root} holds image files")
    return people, warnings


def sample_photos(person: Person, k: int | None, seed: int) -> tuple[Path, ...]:
    """``k`` of a person's photos, drawn with a seed that depends on the person's name."""
    if k is None or k >= len(person.photos):
        return person.photos
    key = int.from_bytes(normalize_name(person.name).encode()[:8].ljust(8, b"\0"), "little")
    rng = np.random.default_rng([seed, key])
    picks = np.sort(rng.choice(len(person.photos), size=k, replace=False))
    return tuple(person.photos[i] for i in picks)


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


def run_audit(
    attacker: IdentityInferenceAttack,
    people_dir: str | Path,
    out: str | Path,
    membership: str | Path | None = None,
    photos_per_person: int | None = None,
    overwrite: bool = False,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Attack every person under ``people_dir``; write and return the run's summary."""
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
    parts = out / "parts"
    todo = [p for p in people if not (parts / f"{p.index:06d}.predictions.parquet").exists()]
    if len(todo) < len(people):
        log(f"resuming: {len(people) - len(todo)} of {len(people)} people already done")
    for person in track(todo, "people", "person", enabled=attacker.progress):
        _attack_person(attacker, person, candidates, photos_per_person, parts)
    return finalize_run(out, people, candidates, truth, attacker.threshold)


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
    else:
        results["truth"] = pd.array([pd.NA] * len(results), dtype="boolean")
        results["count"] = pd.array([pd.NA] * len(results), dtype="Int64")
    results["outcome"] = _outcomes(results)
    write_parquet(out / "predictions.parquet", predictions)
    write_parquet(out / "photos.parquet", photos)
    write_parquet(out / "results.parquet", results)
    write_atomic(out / "results.csv", lambda p: results.to_csv(p, index=False))
    summary = summarize(results, threshold)
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
            "p_value": [
                attack.decoy_p_value(winners[i], real[i], len(candidates)) if n_photos[i] else 1.0
                for i in range(len(people))
            ],
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


def summarize(results: pd.DataFrame, threshold: int) -> dict[str, Any]:
    """Confusion counts and rates over the people with known truth and usable photos."""
    judged = results[results["truth"].notna() & (results["n_photos"] > 0)]
    counts = confusion_counts(judged["member"].to_numpy(bool), judged["truth"].to_numpy(bool))
    summary: dict[str, Any] = {k: int(v) for k, v in counts.items()}
    summary.update({k: to_json_number(v) for k, v in rates(counts).items()})
    summary.update(
        {
            "threshold": threshold,
            "n_people": int(len(results)),
            "n_judged": int(len(judged)),
            "n_without_truth": int(results["truth"].isna().sum()),
            "n_without_usable_photos": int((results["n_photos"] == 0).sum()),
            "n_predicted_members": int(results["member"].sum()),
        }
    )
    return summary
