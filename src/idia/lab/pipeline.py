"""`idia lab`: the paper's controlled experiment, end to end and offline.

Synthetic people are rendered; some are injected into a synthetic image-caption corpus at
1, 5, 10, 25, 50 or 75 pairs each, the others kept out; a small CLIP is trained on CPU with
open_clip's own trainer; every person is then attacked with held-out photos through the same
``idia audit`` / ``evaluate`` / ``report`` path a real audit takes.

DIR/data/         rendered people (all photos) and background corpus
DIR/trainset/     the mixed training set (open_clip CSV), injected pairs, plan.json
DIR/model/        the model config JSON, checkpoint (loads as open_clip:CONFIG:CKPT) and its
                  card (checkpoint.card.json: whole photos, the training plan, DIR's files)
DIR/people/       held-out attack photos, one folder per person
DIR/membership.csv name,member,count,name_count,sex
DIR/people.csv    name,sex (f/m: the sex of each person's first name and face)[,group]
DIR/name_parts.csv with --familiar-name-parts: each person's namesakes and kind of name
DIR/run/          the audit run folder (+ evaluation)
DIR/report.html   the report;  DIR/summary.json  the headline figures
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from idia import synthetic
from idia.errors import IdiaError
from idia.fullname import DEFAULT_DECOYS
from idia.lab import controls, train
from idia.people import find_people
from idia.run_folder import RunFolder


@dataclass(frozen=True)
class LabPreset:
    """Everything that shapes one lab experiment (the seed comes separately)."""

    named_people: int
    members: int
    inject: tuple[int, ...]
    attack_photos: int
    background_people: int
    background_photos: int
    objects: int
    lookalikes: int
    image_size: int
    model: str
    epochs: int
    batch_size: int
    lr: float
    warmup: int
    num_names: int = 1000
    draws: int = 20
    name_decoys: int = DEFAULT_DECOYS  # per person, for the name and text-only tests


PRESETS: dict[str, LabPreset] = {
    # CI-sized: trains in about a minute on 2 cores; shows the effect only at high counts.
    "quick": LabPreset(
        named_people=24,
        members=12,
        inject=(1, 5, 10, 25, 50, 75),
        attack_photos=6,
        background_people=600,
        background_photos=1,
        objects=100,
        lookalikes=0,
        image_size=32,
        model="idia-micro-vit",
        epochs=6,
        batch_size=64,
        lr=2e-3,
        warmup=20,
        num_names=300,
        draws=10,
        name_decoys=200,
    ),
    # The main job: about 12-16 minutes on 2 cores (measurements in docs/lab.md).
    "standard": LabPreset(
        named_people=240, members=120, inject=(1, 5, 10, 25, 50, 75), attack_photos=10,
        background_people=3000, background_photos=1, objects=600, lookalikes=0, image_size=64,
        model="idia-tiny-vit", epochs=8, batch_size=128, lr=2e-3, warmup=100,
        # 200 full-name decoys per person (p floor 1/201): with 2,000, seed 3's attack stage
        # ran 50 minutes on 2 shared cores without finishing its text-only tests (each
        # person's 2,001 names scored in their own set); a cost choice, made before any
        # figure of the standard lab with the full-name null was seen
        name_decoys=200,
    ),
}

PAPER_CC3M = {  # the paper's CC3M results (ResNet-50 CLIP, 30 attack photos), for comparison
    "tpr_by_count": {"1": 0.249, "10": 0.667, "75": 0.95},
    "fpr_below": 0.018,
}


class Preset(Protocol):
    """What the stages every lab shares read from its preset (a dataclass: the summary
    records all of it): :class:`LabPreset`, or the real-faces lab's
    (:class:`idia.lab.faces.FacesPreset`)."""

    attack_photos: int
    num_names: int
    draws: int
    name_decoys: int


class LabError(IdiaError, ValueError):
    """The lab cannot run with these settings."""


def run_lab(
    out: str | Path,
    preset: str | LabPreset = "standard",
    seed: int = 0,
    overrides: dict[str, Any] | None = None,
    log: Callable[[str], None] = print,
    workers: int | None = None,
    familiar_non_members: bool = False,
    familiar_name_parts: bool = False,
    demographic_groups: bool = False,
) -> dict[str, Any]:
    """Run the whole experiment into ``out`` and return (and write) its summary.

    ``familiar_non_members``: the confound control (see
    :func:`idia.lab.train.compose_training_set`): non-members' names also occur in the
    captions, with photos of unrelated people, so only the face-name link separates the groups.
    ``familiar_name_parts``: the corpus also names namesakes of the people under test (one
    part of a name shared, or both parts with two namesakes, never together); the summary's
    ``familiar_name_parts`` gives the name tests per kind of name (:mod:`idia.lab.controls`).
    ``demographic_groups``: people, their names and the corpus come in groups with their own
    face traits and names; the summary's ``demographic_groups`` gives the face test per group
    against sex-only and trait-matched references.
    """
    settings = _resolve(preset, overrides)
    if familiar_name_parts and demographic_groups:
        raise LabError("--familiar-name-parts and --demographic-groups are separate controls; "
                       "run one lab for each")
    out = new_lab_folder(out)
    timings: dict[str, float] = {}

    start = time.perf_counter()
    log(f"[1/5] rendering {settings.named_people} synthetic people and a corpus")
    if demographic_groups:
        identities = synthetic.grouped_people(
            settings.named_people, name_seed=seed + 100, face_seed=seed
        )
    else:
        identities = synthetic.named_people(
            settings.named_people, name_seed=seed + 100, face_seed=seed
        )
    photos_each = settings.attack_photos + max(settings.inject)
    synthetic.write_people_folder(
        identities, photos_each, out / "data" / "people", settings.image_size, workers=workers
    )
    people = find_people(out / "data" / "people")[0]
    # the membership compose_training_set will deal (the same call, the same seed)
    counts = train.assign_counts([p.name for p in people], settings.inject, settings.members,
                                 seed)
    named: list[tuple[synthetic.Identity, int]] = []
    unnamed = settings.background_people
    namesakes: list[synthetic.Namesake] = []
    if familiar_name_parts:
        namesakes = synthetic.make_namesakes(
            synthetic.people_rows(identities), controls.deal_part_kinds(counts, seed), seed=seed
        )
        pairs = train.assign_counts([n.person.name for n in namesakes], settings.inject,
                                    len(namesakes), seed + 1)
        named = [(n.person, pairs[n.person.name]) for n in namesakes]
        log(f"      familiar name parts: {len(namesakes)} namesakes of the people under test "
            f"in {sum(pairs.values())} captions")
    if demographic_groups:
        background = synthetic.grouped_people(
            int(settings.background_people * controls.GROUP_NAMED_SHARE),
            name_seed=seed + 200, face_seed=seed + 201, exclude=[p.name for p in people],
        )
        named = [(person, settings.background_photos) for person in background]
        unnamed -= len(background)
        log(f"      demographic groups {', '.join(g.group or '' for g in synthetic.GROUPS)}: "
            f"{len(background)} of the corpus's people named from their group's names")
    records = synthetic.background_corpus(
        unnamed,
        settings.background_photos,
        settings.objects,
        seed=seed + 1,
        lookalike_of=identities if settings.lookalikes else (),
        lookalikes_per_person=settings.lookalikes,
        profiles=synthetic.GROUPS if demographic_groups else (),
        named=named,
    )
    log(f"      corpus: {len(records)} images")
    corpus_csv = synthetic.write_corpus(
        records, out / "data" / "corpus", settings.image_size, workers=workers
    )
    timings["render_s"] = time.perf_counter() - start

    start = time.perf_counter()
    log(
        f"[2/5] composing the training set: {settings.members} members injected at "
        f"{', '.join(map(str, settings.inject))} pairs, {settings.named_people - settings.members}"
        " kept out"
    )
    base = train.read_caption_csv(corpus_csv)
    training_set, files = train.prepare_training_set(
        base,
        people,
        out / "trainset",
        train.Composition(
            inject=settings.inject,
            members=settings.members,
            attack_photos=settings.attack_photos,
            seed=seed,
            familiar_non_members=familiar_non_members,
        ),
        unrelated_photos=[
            pair.filepath
            for pair, record in zip(base, records, strict=True)
            if record.identity is not None and record.identity.name is None
        ],
    )
    if {row.name: row.count for row in training_set.membership} != counts:
        raise RuntimeError("the membership dealt differs from the one the corpus was made for")
    shutil.copytree(files.attack_people, out / "people")
    synthetic.write_people_table(identities, out / "people.csv")
    membership = pd.read_csv(files.membership_csv).merge(
        pd.DataFrame(synthetic.people_rows(identities), columns=["name", "sex"]),
        on="name", how="left", validate="one_to_one",
    )
    membership.to_csv(out / "membership.csv", index=False)
    if familiar_non_members:
        log(
            f"      non-members' names also in {training_set.plan['unrelated_name_pairs']} "
            "captions, with photos of unrelated people (familiarity held equal)"
        )
    log(
        f"      {len(training_set.pairs)} training pairs; attack photos held out: "
        f"{settings.attack_photos} per person"
    )

    log(f"[3/5] training {settings.model} on CPU with open_clip_train ({settings.epochs} epochs)")
    trained = train.train_and_card(
        files,
        out / "trainset" / "logs",
        "lab",
        train.TrainSettings(
            model=settings.model,
            epochs=settings.epochs,
            batch_size=settings.batch_size,
            lr=settings.lr,
            warmup=settings.warmup,
            seed=seed,
            log_every_n_steps=20,
            predecode=True,
        ),
        train.TrainingCard(
            name=f"idia lab model ({settings.model}, seed {seed})", made_by="idia lab",
            crop="none", membership=out / "membership.csv", people=out / "people",
            audit_run=out / "run", synthetic=True,
        ),
        model_dir=out / "model",
        on_line=lambda line: _log_training_line(line, log),
    )
    timings["train_s"] = time.perf_counter() - start

    summary = attack_and_summarize(out, trained.model_spec, settings, seed, timings, log,
                                   settings.named_people)
    summary["familiar_non_members"] = familiar_non_members
    summary["familiar_name_parts"] = None
    summary["demographic_groups"] = None
    if familiar_name_parts:
        summary["familiar_name_parts"] = name_parts_summary(
            out, [p.name for p in people],
            [row.name for row in training_set.membership if row.name_count > 0]
            + [person.name for person, _ in named],
            counts, namesakes, sum(photos for _, photos in named), seed,
        )
    if demographic_groups:
        summary["demographic_groups"] = {
            "seed": seed,
            "named_background_people": len(named),
            "group_sizes": {
                label: sum(p.group == label for p in identities)
                for label in sorted({p.group for p in identities})
            },
            **controls.group_face_figures(
                RunFolder(out / "run"),
                {p.name: p.group for p in identities},
                {p.name: p.traits for p in identities},
            ),
        }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def attack_and_summarize(
    out: Path,
    spec: str,
    settings: Preset,
    seed: int,
    timings: dict[str, float],
    log: Callable[[str], None],
    n_people: int,
) -> dict[str, Any]:
    """The last stages every lab shares: attack everyone in ``out/people`` with the trained
    model (``spec``) through ``idia audit`` (the run in ``out/run``, whole photos, embeddings
    cached in ``out/cache``), evaluate by repeated sampling, write the report; returns the
    summary (:func:`lab_summary`; ``timings`` gains ``attack_s`` and ``evaluate_s``)."""
    from idia.audit import run_audit
    from idia.engine import create_attack
    from idia.evaluation import EvaluationSettings, evaluate_run
    from idia.report import write_report

    start = time.perf_counter()
    log(f"[4/5] attacking all {n_people} people ({settings.num_names} candidate names, "
        f"21 templates; up to {settings.name_decoys} full-name decoys each for the name tests)")
    attacker = create_attack(
        spec,
        num_names=settings.num_names,
        name_decoys=settings.name_decoys,
        seed=seed,
        crop="none",
        cache_dir=out / "cache",
        progress=False,
    )
    run_audit(attacker, out / "people", out / "run", out / "membership.csv", log=log)
    timings["attack_s"] = time.perf_counter() - start

    start = time.perf_counter()
    log("[5/5] evaluating (repeated sampling) and writing the report")
    sizes = sorted({1, *range(3, settings.attack_photos + 1, 2), settings.attack_photos})
    evaluation = evaluate_run(
        out / "run", EvaluationSettings(sizes=sizes, draws=settings.draws, seed=seed)
    )
    write_report([out / "run"], out / "report.html")
    timings["evaluate_s"] = time.perf_counter() - start
    return lab_summary(out / "run", settings, seed, spec, timings, evaluation)


def name_parts_summary(
    out: Path,
    names: list[str],
    corpus_names: list[str],
    counts: dict[str, int],
    namesakes: list[synthetic.Namesake],
    namesake_captions: int,
    seed: int,
) -> dict[str, Any]:
    """The familiar-name-parts control of a finished lab in ``out``: each person under test
    (``names``) gets the kind of name the training captions' named people (``corpus_names``)
    give it, written to ``out/name_parts.csv``; returns the summary's ``familiar_name_parts``
    (the name tests per kind, :func:`controls.part_kind_figures`)."""
    exposure = controls.part_exposure(names, corpus_names)
    _write_name_parts(out / "name_parts.csv", exposure, counts, namesakes)
    return {
        "seed": seed,
        "namesakes": len(namesakes),
        "namesake_captions": namesake_captions,
        "kind_rule": controls.PART_KIND_RULE,
        "by_kind": controls.part_kind_figures(
            RunFolder(out / "run").results,
            dict(zip(exposure["name"], exposure["kind"], strict=True)), seed,
        ),
    }


def _write_name_parts(
    path: Path,
    exposure: pd.DataFrame,
    counts: dict[str, int],
    namesakes: list[synthetic.Namesake],
) -> None:
    """Per person under test: membership, the kind of name (by exposure) and their namesakes."""
    of: dict[str, list[str]] = {}
    for namesake in namesakes:
        of.setdefault(namesake.shares_with, []).append(namesake.person.name or "")
    table = exposure.assign(
        member=exposure["name"].map(lambda n: counts[n] > 0),
        count=exposure["name"].map(counts),
        namesakes=exposure["name"].map(lambda n: "; ".join(of.get(n, []))),
    )
    table[["name", "member", "count", "kind", "first_familiar", "surname_familiar",
           "namesakes"]].to_csv(path, index=False)


_EPOCH_LINE = re.compile(r"Train Epoch: (\d+) \[\s*(\d+)/(\d+) \((\d+)%\)\].*?Loss: ([\d.]+)")


def _log_training_line(line: str, log: Callable[[str], None]) -> None:
    """open_clip_train's progress lines, shortened to epoch, progress and loss."""
    match = _EPOCH_LINE.search(line)
    if match:
        epoch, done, total, percent, loss = match.groups()
        log(f"      epoch {int(epoch) + 1}: {done}/{total} pairs ({percent}%), loss {loss}")


def new_lab_folder(out: str | Path) -> Path:
    """``out`` resolved; a :class:`LabError` when it exists and holds anything."""
    out = Path(out).resolve()
    if out.exists() and any(out.iterdir()):
        raise LabError(f"{out} exists and is not empty; choose another --out")
    return out


def _resolve(preset: str | LabPreset, overrides: dict[str, Any] | None) -> LabPreset:
    if isinstance(preset, str):
        if preset not in PRESETS:
            raise LabError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
        preset = PRESETS[preset]
    settings = replace(preset, **(overrides or {}))
    if not 0 < settings.members < settings.named_people:
        raise LabError("members must be between 1 and the number of people minus one")
    return settings


def lab_summary(
    run: Path,
    settings: Preset,
    seed: int,
    spec: str,
    timings: dict[str, float],
    evaluation: dict[str, Any],
) -> dict[str, Any]:
    """Headline figures at the largest attack size (all held-out photos of each person):
    the paper's rule as before, and under ``rules`` every rule side by side (the paper's, the
    calibrated tests, the one verdict over all claims, the face-blind baseline) with people,
    intervals, AUC, TPR by count and the tests' pre-set operating points; ``null_calibration``:
    whether each test's p-values on non-members fit a valid test (shares at p <= 0.05 and 0.01
    with exact intervals, randomized-PIT uniformity)."""
    folder = RunFolder(run)
    results, audit = folder.results, folder.summary
    members = results[results["truth"] == True]  # noqa: E712
    non_members = results[results["truth"] == False]  # noqa: E712
    by_count = members.groupby("count")["member"].mean()
    calibration = evaluation.get("claims", {}).get("null_calibration", {})
    return {
        "preset": asdict(settings),
        "seed": seed,
        "model": spec,
        "attack_photos": settings.attack_photos,
        "tpr_by_count": {str(int(c)): float(v) for c, v in by_count.items()},
        "tpr": float(members["member"].mean()),
        "fpr": float(non_members["member"].mean()),
        "n_members": int(len(members)),
        "n_non_members": int(len(non_members)),
        "mean_score_by_count": {
            str(int(c)): float(v) for c, v in members.groupby("count")["score"].mean().items()
        },
        "alpha": audit.get("alpha"),
        "rules": audit.get("rules", {}),
        "null_calibration": {
            claim: {key: value for key, value in fit.items() if key != "qq"}
            for claim, fit in calibration.items()
        },
        "paper_cc3m": PAPER_CC3M,
        "seconds": {k: round(v, 1) for k, v in timings.items()},
        "synthetic": True,
    }
