"""Many people with known membership -> a run folder of predictions, verdicts and metrics.

The work is done one person at a time; each person's predictions are written atomically
(temporary file flushed to disk, then renamed), so a run killed at any moment, even by a power
loss, resumes with the same command and loses nothing; on resume each finished person's parts
are checked and a damaged one is redone. Everything later steps need is in the folder; nothing
is recomputed. The folder's layout, and :class:`~idia.run_folder.RunFolder` that reads it, are
in :mod:`idia.run_folder`.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from idia import attack, audit_claims, claims
from idia.engine import IdentityInferenceAttack, Predictions, photo_record
from idia.errors import IdiaError
from idia.face_reference import AUDITED_REFERENCE, PublicReference
from idia.faces import Photo, usable
from idia.files import write_atomic
from idia.lfw import is_lfw_spec
from idia.membership import read_membership
from idia.metrics import confusion_counts, rates, to_json_number
from idia.models import EmbeddedClassifier
from idia.name_null import NameNull, null_from_row, null_summary, null_table_rows, nulls_frame
from idia.names import CandidateSet, normalize_name
from idia.people import PeopleFolderError, Person, find_people, sample_photos
from idia.progress import track
from idia.run_folder import (
    CANDIDATES,
    CONFIG,
    MARKER,
    NAME_NULL,
    NAME_RESPONSES,
    PARTS,
    PHOTOS,
    PREDICTIONS,
    RESPONSES,
    RESULTS,
    RESULTS_CSV,
    RUN_FILES,
    RUN_FOLDERS,
    RUN_FORMAT,
    SUMMARY,
    TEXT_ONLY,
    part_name,
)
from idia.version import __version__

TEMP_FILE = re.compile(r"\..+\.tmp")  # what write_atomic leaves behind when killed
PHOTO_COLUMNS = ("person", "name", "path", "status", "reason", "n_faces", "box")
PREDICTION_COLUMNS = (
    "person", "photo", "path", "template", "predicted", "real_index", "real_rank",
    "real_probability",
)


class AuditError(IdiaError, ValueError):
    """The audit cannot start or measures nothing; the message says what to change."""


def discover_people(people_dir: str | Path) -> tuple[list[Person], list[str]]:
    """The people under audit (see :func:`idia.people.find_people`)."""
    try:
        return find_people(people_dir)
    except PeopleFolderError as err:
        raise AuditError(str(err)) from err


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
    reference: str | PublicReference = AUDITED_REFERENCE,
) -> dict[str, Any]:
    """Attack every person under ``people_dir``; write and return the run's summary.

    ``alpha``: the level of the calibrated tests' verdicts (Benjamini-Hochberg across the
    audit's people). The paper's rule takes the attack's candidates; the name-familiarity and
    text-only tests each person's own full-name decoys (:meth:`idia.name_null.NameNulls.
    for_people`: recombinations of the audited people's parts, else their origin's pools; of
    the sex and origin the membership table declares, else the ones inferred), written to
    ``name_null.parquet``. ``reference``: the face test's other people: ``audited`` (the other
    audited people of the same sex) or a public reference (``lfw``, ``lfw:DIR`` or a loaded
    :class:`~idia.face_reference.PublicReference`: each person's 1,000 lookalikes there, none
    of them an audited person)."""
    out = Path(out)
    if photos_per_person is not None and photos_per_person < 1:
        raise AuditError(f"photos per person must be at least 1, got {photos_per_person}")
    public = _public_reference(attacker, reference)
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
    declared = declared_sexes(people, truth)
    origins = declared_origins(people, truth)
    for origin in {o for o in origins if o is not None}:
        attacker.name_nulls.origin_code(origin)  # a code no pool knows: one line, before work
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
        "name_decoys": attacker.name_decoys,
        "declared_sexes": declared,
        "declared_origins": origins,
        "origin_table": f"names-dataset {attacker.name_nulls.table.version}",
    }
    if public is not None:  # absent for the audited people: older runs resume as they were
        config["face_reference"] = {"set": public.describe(), "key": public.key}
    _prepare_run_folder(out, config, overwrite)
    write_parquet(out / CANDIDATES, candidates.to_frame())
    nulls = _name_nulls(attacker, people, declared, origins, out)
    text = audit_claims.text_only_table(
        attacker.text_statistics(candidates), candidates,
        {candidates.index_of(p.name): attacker.text_only_test(n)
         for p, n in zip(people, nulls, strict=True)},
    )
    if text is not None:
        write_parquet(out / TEXT_ONLY, text)
    parts = out / PARTS
    todo = _unfinished(people, nulls, parts, photos_per_person, attacker, log, public is not None)
    lookalikes = None if public is None else LookalikeTests(
        attacker, public, candidates, [p.name for p in people],
        {normalize_name(p.name): sex for p, sex in zip(people, declared, strict=True)
         if sex in ("f", "m")},
    )
    for person in track(todo, "people", "person", enabled=attacker.progress):
        _attack_person(attacker, person, candidates, photos_per_person, parts,
                       nulls[person.index], lookalikes)
    _require_a_usable_photo(people, parts, attacker.crop)
    return finalize_run(
        out, people, candidates, truth, attacker.threshold, alpha=alpha, seed=attacker.seed
    )


def declared_sexes(people: list[Person], truth: pd.DataFrame | None) -> list[str | None]:
    """Per person, the sex the membership table declares ("f", "m"), None where it does not."""
    return _declared(people, truth, "sex")


def declared_origins(people: list[Person], truth: pd.DataFrame | None) -> list[str | None]:
    """Per person, the origin the membership table declares (a country code), None where it
    does not."""
    return _declared(people, truth, "origin")


def _declared(people: list[Person], truth: pd.DataFrame | None, column: str) -> list[str | None]:
    if truth is None or column not in truth:
        return [None] * len(people)
    table = truth.set_index("key")[column]
    found = [table.get(normalize_name(p.name)) for p in people]
    return [None if s is None or pd.isna(s) else str(s) for s in found]


def _name_nulls(
    attacker: IdentityInferenceAttack,
    people: list[Person],
    sexes: list[str | None],
    origins: list[str | None],
    out: Path,
) -> list[NameNull]:
    """The null of every person's name tests: read from the run folder when a run is resumed
    (the config that made them is the run's), else built and written."""
    path = out / NAME_NULL
    if path.is_file():
        frame = pd.read_parquet(path).sort_values("person")
        if frame["name"].tolist() == [p.name for p in people]:
            return [null_from_row(row) for _, row in frame.iterrows()]
    nulls = attacker.name_nulls.for_people(
        [p.name for p in people], sexes, attacker.templates, attacker.seed,
        total=attacker.name_decoys, origins=origins,
    )
    write_parquet(path, nulls_frame(nulls, [p.index for p in people]))
    return nulls


def _public_reference(
    attacker: IdentityInferenceAttack, reference: str | PublicReference
) -> PublicReference | None:
    """The public reference an audit's face test uses, loaded once; None for the audited
    people."""
    if isinstance(reference, PublicReference):
        return reference
    if reference == AUDITED_REFERENCE:
        return None
    loaded = attacker.load_reference(reference) if is_lfw_spec(reference) else None
    if not isinstance(loaded, PublicReference):
        raise AuditError(f"an audit's face reference is '{AUDITED_REFERENCE}' (the other "
                         f"audited people) or a public one ('lfw', 'lfw:DIR'), not {reference!r}")
    return loaded


class LookalikeTests:
    """The face test of an audit's people against a public reference: each person's
    lookalikes there (:meth:`IdentityInferenceAttack.lookalike_plan`; no audited person among
    them), asked with the audit's candidates, the same as the person's own photos (no
    candidate name is a reference person's own). The answers on each reference photo are
    kept for the next people."""

    def __init__(
        self,
        attacker: IdentityInferenceAttack,
        reference: PublicReference,
        candidates: CandidateSet,
        audited: list[str],
        declared: dict[str, str],
    ) -> None:
        self.attacker, self.reference, self.candidates = attacker, reference, candidates
        self.audited, self.declared = audited, declared
        self.memo: dict[Path, tuple[np.ndarray | None, np.ndarray] | None] = {}

    def row(self, person: Person, good: Sequence[Photo], own: Predictions) -> pd.DataFrame:
        """The person's face test (continuous where the model gives scores, and top-1) as one
        row of the ``face`` part."""
        attacker, key = self.attacker, normalize_name(person.name)
        real = self.candidates.index_of(person.name)
        sex, source = self.declared.get(key), "membership table"
        if sex is None:
            sex, source = self.candidates.sexes[real], "first name"
        plan = attacker.lookalike_plan(self.reference, good, person.name, sex, source,
                                       exclude=self.audited)
        row: dict[str, Any] = {"person": person.index, "face_reason": None}
        if isinstance(plan, str):
            return pd.DataFrame([row | {"face_reason": plan}])
        answers = attacker.lookalike_answers(self.reference, plan, self.candidates, self.memo)
        continuous, hits = answers.statistics(real)
        top1 = claims.face_test(
            float((own.best[plan.own_photos] == real).sum(axis=1).mean()), hits,
            tie_break=claims.tie_break_draw(attacker.seed, key, "face_top1"),
        )
        row |= {"p_face_top1": top1.p_value, "z_face_top1": top1.z,
                "p_face_top1_conservative": top1.p_conservative}
        if own.responses is not None and continuous is not None:
            face = claims.face_test(
                float(own.responses.cross[plan.own_photos, real].mean()), continuous)
            row |= {"face_statistic": face.statistic, "p_face": face.p_value, "z_face": face.z,
                    "face_blind": float(continuous.mean()) if len(continuous) else None}
        row |= {"n_face_reference": len(answers.used), "face_photos": plan.n_photos,
                "face_sex": plan.sex, "face_matching": plan.rule(answers.used)}
        return pd.DataFrame([row])


def _prepare_run_folder(out: Path, config: dict[str, Any], overwrite: bool) -> None:
    """Start or resume the run in ``out``; with ``overwrite``, restart one with other settings.

    Only a folder carrying the run marker, and holding nothing but what idia writes, is ever
    emptied: ``--out .`` in a project must never delete the project.
    """
    if out.exists() and not out.is_dir():
        raise AuditError(f"{out} is a file, not a folder; choose another --out")
    marker, config_path = out / MARKER, out / CONFIG
    entries = [e.name for e in out.iterdir()] if out.exists() else []
    previous = _read_config(config_path) if config_path.is_file() else None
    settings = {k: v for k, v in config.items() if k not in ("idia_version", "created")}
    changed = [] if previous is None else [k for k, v in settings.items() if previous.get(k) != v]
    if entries and not marker.is_file() and not (previous and not changed):
        # the exception (same settings, no marker) is a run begun by idia 0.1: resumed
        raise AuditError(
            f"{out} is not empty and not an idia run folder (it has no {MARKER} file); "
            "choose another --out (idia deletes only run folders it created)"
        )
    if previous is None and set(entries) - {MARKER}:
        changed = [f"{CONFIG} is missing or unreadable"]
    if changed and not overwrite:
        raise AuditError(
            f"{out} holds a run with other settings ({', '.join(changed)}); use another "
            "--out, or --overwrite to start it again"
        )
    if changed:
        _empty_run_folder(out)
    out.mkdir(parents=True, exist_ok=True)
    if not marker.is_file():
        write_json(marker, {"idia_run_format": RUN_FORMAT, "idia_version": __version__})
    if not config_path.exists():
        write_json(config_path, {**config, "created": datetime.now(UTC).isoformat()})


def _read_config(path: Path) -> dict[str, Any] | None:
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return config if isinstance(config, dict) and "idia_version" in config else None


def _empty_run_folder(out: Path) -> None:
    """Delete what a run wrote, keeping the marker; refuse (deleting nothing) if the folder
    holds anything else."""
    unexpected = []
    for entry in sorted(out.iterdir()):
        if entry.is_symlink() or (entry.is_dir() and entry.name not in RUN_FOLDERS):
            unexpected.append(entry.name)
        elif entry.is_dir():
            pattern = RUN_FOLDERS[entry.name]
            unexpected += [
                f"{entry.name}/{child.name}"
                for child in sorted(entry.iterdir())
                if child.is_symlink() or not child.is_file() or not pattern.fullmatch(child.name)
            ]
        elif entry.name not in RUN_FILES and not TEMP_FILE.fullmatch(entry.name):
            unexpected.append(entry.name)
    if unexpected:
        raise AuditError(
            f"{out} holds files an idia run does not write ({', '.join(unexpected[:5])}"
            f"{' ...' if len(unexpected) > 5 else ''}); nothing deleted: move them away or "
            "choose another --out"
        )
    for entry in out.iterdir():
        if entry.is_dir():
            for child in entry.iterdir():
                child.unlink()
            entry.rmdir()
        elif entry.name != MARKER:
            entry.unlink()


def _unfinished(
    people: list[Person],
    nulls: list[NameNull],
    parts: Path,
    photos_per_person: int | None,
    attacker: IdentityInferenceAttack,
    log: Callable[[str], None],
    public: bool = False,
) -> list[Person]:
    """The people still to attack: no parts yet, or parts a crash or a full disk damaged."""
    todo = []
    for person in people:
        if not (parts / part_name(person.index, "predictions")).exists():
            todo.append(person)
            continue
        n_photos = len(sample_photos(person, photos_per_person, attacker.seed))
        problem = _part_problem(parts, person, n_photos, len(attacker.templates),
                                nulls[person.index].tested, public)
        if problem:
            log(f"warning: redoing {person.name}: {problem}")
            todo.append(person)
    if len(todo) < len(people):
        log(f"resuming: {len(people) - len(todo)} of {len(people)} people already done")
    return todo


def _part_problem(
    parts: Path, person: Person, n_photos: int, n_templates: int, has_null: bool,
    public: bool = False,
) -> str | None:
    """Why a finished person's parts cannot be trusted, or None when they can (``has_null``:
    the person's name tests have decoys, so their responses must be there too; ``public``:
    the face test ran against a public reference, so its part must be there)."""
    tables, names = {}, {}
    for kind, columns in (("photos", PHOTO_COLUMNS), ("predictions", PREDICTION_COLUMNS)):
        path = parts / part_name(person.index, kind)
        names[kind] = path.name
        try:
            tables[kind] = pd.read_parquet(path)
        except (OSError, ValueError, pa.ArrowException) as err:
            return f"{path.name} is unreadable ({str(err).splitlines()[0][:120]})"
        missing = [c for c in columns if c not in tables[kind]]
        if missing:
            return f"{path.name} lacks columns {', '.join(missing)}"
        if (tables[kind]["person"] != person.index).any():
            return f"{path.name} holds rows of another person"
    photos, predictions = tables["photos"], tables["predictions"]
    if len(photos) != n_photos:
        return f"{names['photos']} has {len(photos)} photos, the person now {n_photos}"
    n_usable = int((photos["status"] == "ok").sum())
    if public and n_usable:
        path = parts / part_name(person.index, "face")
        try:
            face = pd.read_parquet(path)
        except (OSError, ValueError, pa.ArrowException) as err:
            return f"{path.name} is missing or unreadable ({str(err).splitlines()[0][:120]})"
        if face["person"].tolist() != [person.index]:
            return f"{path.name} does not hold this person's face test"
    expected = n_usable * n_templates
    if len(predictions) != expected:
        return f"{names['predictions']} has {len(predictions)} rows, not {expected}"
    if n_usable and predictions["real_rank"].notna().all():  # the model gave scores
        for kind in ("responses", "name_responses") if has_null else ("responses",):
            path = parts / part_name(person.index, kind)
            try:
                responses = pq.read_table(path, columns=["person", "photo"])
            except (OSError, ValueError, pa.ArrowException) as err:
                return f"{path.name} is missing or unreadable ({str(err).splitlines()[0][:120]})"
            if responses.num_rows != n_usable or set(responses["person"].to_pylist()) != {
                person.index
            }:
                return f"{path.name} does not hold this person's {n_usable} photos"
    return None


def _require_a_usable_photo(people: list[Person], parts: Path, crop: str) -> None:
    """An audit without a single usable photo measures nothing: say why, as one line (the run
    folder stays as it is, resumable)."""
    statuses: Counter[str] = Counter()
    for person in people:
        status = pd.read_parquet(parts / part_name(person.index, "photos"))["status"]
        if (status == "ok").any():
            return
        statuses.update(status)
    labels = {"no_face": "no face found", "unreadable": "unreadable"}
    detail = ", ".join(f"{n} {labels.get(s, s)}" for s, n in statuses.most_common())
    hint = "; try --crop none" if crop == "face" and statuses["no_face"] else ""
    who = "the one person has no" if len(people) == 1 else f"none of the {len(people)} people has a"
    raise AuditError(f"{who} usable photo ({sum(statuses.values())} photos: {detail}){hint}")


def _attack_person(
    attacker: IdentityInferenceAttack,
    person: Person,
    candidates: CandidateSet,
    photos_per_person: int | None,
    parts: Path,
    null: NameNull,
    lookalikes: LookalikeTests | None = None,
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
        images = [p.image for p in good]
        embeddings = (  # encoded once for both candidate sets
            attacker.classifier.image_embeddings(images)
            if isinstance(attacker.classifier, EmbeddedClassifier) else None
        )
        predictions = attacker.predict(images, candidates, real, embeddings)
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
                parts / part_name(person.index, "responses"),
                audit_claims.responses_table(person.index, predictions.responses),
            )
        if null.tested:  # the name test against the person's full-name decoys
            write_arrow(
                parts / part_name(person.index, "name_responses"),
                audit_claims.name_responses_table(
                    person.index, attacker.predict(images, null.candidates(), 0, embeddings)
                ),
            )
        if lookalikes is not None:
            write_parquet(parts / part_name(person.index, "face"),
                          lookalikes.row(person, good, predictions))
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
    write_parquet(parts / part_name(person.index, "photos"), photo_rows)
    write_parquet(parts / part_name(person.index, "predictions"), pd.DataFrame(rows))


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
    parts = out / PARTS
    predictions = pd.concat(
        [pd.read_parquet(parts / part_name(p.index, "predictions")) for p in people],
        ignore_index=True,
    )
    photos = pd.concat(
        [pd.read_parquet(parts / part_name(p.index, "photos")) for p in people],
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
        [parts / part_name(p.index, "responses") for p in people]
    )
    name_responses = audit_claims.read_responses(
        [parts / part_name(p.index, "name_responses") for p in people]
    )
    nulls = (
        [null_from_row(row) for _, row in pd.read_parquet(out / NAME_NULL)
         .sort_values("person").iterrows()]
        if (out / NAME_NULL).is_file() else None
    )
    face_parts = [parts / part_name(p.index, "face") for p in people]
    public_face = (pd.concat([pd.read_parquet(f) for f in face_parts if f.exists()],
                             ignore_index=True)
                   if any(f.exists() for f in face_parts) else None)
    text_file = out / TEXT_ONLY
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
    full_names, full_best = (  # None: a run older than the full-name null
        audit_claims.split_name_responses(name_responses, len(people)) if nulls is not None
        else (None, None)
    )
    tests = audit_claims.claim_columns(
        grid, n_photos, real, people, candidates,
        [None if pd.isna(s) else s for s in results["sex"]],
        names, cross, text, seed, alpha, full_names, full_best, public_face,
    )  # fmt: skip
    if nulls is not None:
        results = pd.concat([results, pd.DataFrame(null_table_rows(nulls))], axis=1)
    results = pd.concat([results, tests], axis=1)
    results["outcome"] = _outcomes(results)
    write_parquet(out / PREDICTIONS, predictions)
    if responses is not None:
        write_arrow(out / RESPONSES, responses)
    if name_responses is not None:
        write_arrow(out / NAME_RESPONSES, name_responses)
    write_parquet(out / PHOTOS, photos)
    write_parquet(out / RESULTS, results)
    write_atomic(out / RESULTS_CSV, lambda p: results.to_csv(p, index=False))
    summary = summarize(results, threshold, alpha, tests.attrs["method"], seed)
    if nulls is not None:
        summary["name_null"] = null_summary(nulls)
    write_json(out / SUMMARY, summary)
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
    seed: int | None = None,
) -> dict[str, Any]:
    """Confusion counts and rates over the people with known truth and usable photos: the
    paper's rule at the top level (as before), every rule under ``rules``; ``seed``: the
    audit's seed, which also drew the top-1 tests' tie breaks."""
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
            "n_people_with_a_claim": int(results["verdict"].notna().sum()),
            "verdict_procedure": claims.VERDICT_PROCEDURE,
            "tie_breaking": {"tests": ["name_top1", "face_top1"], "seed": seed,
                             "rule": claims.TIE_BREAKING},
        }
    )
    if len(judged) and judged["truth"].nunique() == 2:
        summary["rules"] = rule_table(judged, alpha)
    return summary


def rule_table(judged: pd.DataFrame, alpha: float = claims.DEFAULT_ALPHA) -> dict[str, Any]:
    """Each rule's TPR/FPR (with 95% intervals and people), AUC of its continuous score and
    the empirical TPR at low FPR, TPR by training count (the rules of
    :func:`idia.audit_claims.rule_verdicts`): the paper's rule, the three tests (verdicts after
    Benjamini-Hochberg across the audit; under ``unadjusted`` each person's own p <= alpha,
    what a single check says, and under ``at_p_0.01`` / ``at_p_0.001`` the pre-set operating
    points), the one verdict over all claims (``any_claim``), and the face-blind baseline (how
    far the name's response on other people's photos departs from the decoys', in either
    direction)."""
    truth = judged["truth"].to_numpy(bool)
    counts = judged["count"].to_numpy(dtype=object) if judged["count"].notna().any() else None
    rules = {}
    for rule, found in audit_claims.rule_verdicts(judged, alpha).items():
        verdict = found.pop("verdict")
        score = found.pop("score")
        rules[rule] = audit_claims.rule_summary(
            verdict, score, truth, None if verdict is None else counts
        )
        for point, verdicts in found.items():
            rules[rule][point] = audit_claims.rule_summary(verdicts, None, truth, counts)
    return rules
