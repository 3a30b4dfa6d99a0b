"""``idia lab --faces``: the controlled experiment on real people, in minutes on 2 cores.

Real people take the synthetic people's place: Labeled Faces in the Wild (``lfw`` or
``lfw:DIR``, :mod:`idia.lfw`) or any people folder (:func:`idia.people.find_people`). Those
with enough photos are the people under test: members are injected at the preset's counts
(the paper's 1 to 75 pairs), the others kept out, and every person's attack photos are held
out. The rest of the corpus is other real people captioned with their names, as LAION is:
the model learns many names, not only the members'. A tiny CLIP trained from scratch hardly
learns real faces from a few thousand pairs, so the model is a LiT model
(:mod:`idia.models.lit`): dlib's face encoder locked, a projection and a text tower trained
in this process (:mod:`idia.lab.lit`), each photo's descriptor computed once. Then the same
attack, evaluation and summary as the synthetic lab (:func:`idia.lab.pipeline.
attack_and_summarize`).

The people under test and the corpus are a fixed draw (:data:`SELECTION_SEED`), the same for
every lab seed: LFW has few people with enough photos (143 with 11 or more), so a seed changes
who is injected, which photos are held out, the captions and the training, not the people.
LFW's descriptors are cached (:mod:`idia.reference_faces`: public photos), so later seeds
skip that stage; a user's own people folder is described in memory, never cached.

Sex (for the face test's same-sex references): declared where the people folder has a
``people.csv`` (``name,sex``), else from the name tables (:func:`idia.origins.sex_of_name`),
else unknown.

DIR/trainset/       the training set as ``idia train`` writes it (train.csv, membership.csv,
                    injected.csv, attack_people/, plan.json)
DIR/model/          lit.json, checkpoint.pt (loads as ``lit:DIR/model``) and its card,
                    which names the locked face encoder
DIR/people/         held-out attack photos, one folder per person
DIR/membership.csv  name,member,count,name_count,sex
DIR/people.csv      name,sex,sex_from (declared, name tables or unknown)
DIR/run/, DIR/report.html, DIR/summary.json   as the synthetic lab's
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from idia import synthetic
from idia.face_descriptors import FULL_IMAGE, LFW_FUNNELED_BOX, FaceBox, describe_paths
from idia.fullname import DEFAULT_DECOYS
from idia.lab import controls, train
from idia.lab.lit import LiTSettings, torch_threads, train_lit
from idia.lab.pipeline import (
    PRESETS,
    LabError,
    attack_and_summarize,
    name_parts_summary,
    new_lab_folder,
)
from idia.lfw import folder_key, is_lfw_spec, load_lfw
from idia.membership import read_sex_table
from idia.models.card import write_training_card
from idia.models.lit import LiTConfig, face_encoder_record, save_lit
from idia.models.spec import LIT_CONFIG
from idia.names import SEXES, normalize_name
from idia.people import Person, find_people
from idia.progress import progress
from idia.reference_faces import reference_faces

SELECTION_SEED = 0
"""Seeds the draw of the people under test and of the corpus: fixed, not the lab's seed."""
SEX_TABLE = "people.csv"
DEFAULT_THREADS = 1
"""PyTorch's CPU threads for the LiT training and the attack. One: the model is small, and
on cores shared with other jobs two threads that wait on each other made a training step 5 to
18 times slower (0.2 s a step with one thread, 1.1 to 3.6 s with two, measured beside other
jobs on 2 cores); the face encoder runs in its own worker processes anyway."""
PHOTOS_SHOWN = False
"""Whether a real-faces lab's photos may be shown as examples (``idia web``): no. LFW's photos
are news photos from the web, published for research without a licence to show them again,
and a people folder's licence is unknown; the page uses them only inside the face test."""


@dataclass(frozen=True)
class FacesPreset:
    """Everything that shapes a real-faces lab (the seed comes separately): the people under
    test (at most ``named_people``: fewer when the source has fewer with ``attack_photos`` + 1
    photos; ``members`` scaled with them), photos per person kept (``attack_photos`` held out,
    up to ``train_photos`` to inject, cycled for larger counts), the named corpus
    (``corpus_photos`` photos of other people, at most ``corpus_photos_per_person`` each), the
    LiT model and its training, and the attack's candidate names and evaluation draws."""

    named_people: int
    members: int
    inject: tuple[int, ...]
    attack_photos: int
    train_photos: int
    corpus_photos: int
    corpus_photos_per_person: int
    epochs: int
    batch_size: int
    lr: float
    warmup: int
    model: LiTConfig = LiTConfig()  # the architecture; its face box is the source's
    num_names: int = 1000
    draws: int = 20
    name_decoys: int = DEFAULT_DECOYS  # per person, for the name and text-only tests

    def architecture(self, fallback: FaceBox) -> LiTConfig:
        return replace(self.model, fallback_box=(fallback.left, fallback.top, fallback.right,
                                                 fallback.bottom))


FACES_PRESETS: dict[str, FacesPreset] = {
    # CI-sized: about 1,100 pairs; under 3 minutes on 2 cores with LFW's descriptors to compute.
    "quick": FacesPreset(
        named_people=24, members=12, inject=PRESETS["quick"].inject, attack_photos=6,
        train_photos=8, corpus_photos=800, corpus_photos_per_person=5, epochs=10,
        batch_size=128, lr=1e-3, warmup=20, num_names=300, draws=10, name_decoys=200,
    ),
    # The main job: 132 people (66 members, 11 per count), about 5,800 pairs; sized to 15
    # minutes on 2 cores with LFW's descriptors to compute, about half that once cached.
    "standard": FacesPreset(
        named_people=132, members=66, inject=PRESETS["standard"].inject, attack_photos=10,
        train_photos=20, corpus_photos=4000, corpus_photos_per_person=5, epochs=10,
        batch_size=128, lr=1e-3, warmup=50,
        name_decoys=200,  # as the synthetic standard lab's, for the same cost reason
    ),
}


@dataclass(frozen=True)
class FacesSource:
    """Where the real people come from: their folder's people, whether their photos are a
    public set (descriptors cached), the face box taken where dlib finds no face, and the
    sexes the folder declares (normalised name -> f/m)."""

    spec: str
    kind: str
    description: str
    folder: Path
    people: tuple[Person, ...]
    public: bool
    fallback: FaceBox
    declared_sexes: dict[str, str]


def faces_source(spec: str) -> FacesSource:
    """``lfw``, ``lfw:DIR`` or a people folder (with an optional ``people.csv`` of
    ``name,sex``)."""
    if is_lfw_spec(spec):
        lfw = load_lfw(spec)
        return FacesSource(spec, "lfw", lfw.describe(), lfw.folder, lfw.people, True,
                           LFW_FUNNELED_BOX, {})
    folder = Path(spec).expanduser()
    people, _ = find_people(folder, what="--faces people")
    table = folder / SEX_TABLE
    declared = read_sex_table(table) if table.is_file() else {}
    return FacesSource(spec, "people folder", f"the people folder {folder}", folder,
                       tuple(people), False, FULL_IMAGE, declared)


@dataclass(frozen=True)
class Selection:
    """The people under test (photos capped), how many become members, and the corpus:
    other people's photos with their names."""

    tested: tuple[Person, ...]
    members: int
    corpus: tuple[Person, ...]
    eligible: int


def select_people(people: Sequence[Person], settings: FacesPreset) -> Selection:
    """The fixed draw (:data:`SELECTION_SEED`) of people under test among those with at least
    ``attack_photos`` + 1 photos, and the corpus from everyone else."""
    needed = settings.attack_photos + 1
    eligible = [p for p in people if len(p.photos) >= needed]
    if len(eligible) < 2:
        raise LabError(
            f"--faces needs at least 2 people with {needed} or more photos "
            f"({settings.attack_photos} held out for the attack, one or more to inject); "
            f"found {len(eligible)}"
        )
    rng = np.random.default_rng(SELECTION_SEED)
    if len(eligible) > settings.named_people:
        picks = np.sort(rng.choice(len(eligible), size=settings.named_people, replace=False))
        eligible_chosen = [eligible[i] for i in picks]
    else:
        eligible_chosen = eligible
    keep = settings.attack_photos + settings.train_photos
    tested = tuple(replace(p, index=i, photos=p.photos[:keep])
                   for i, p in enumerate(eligible_chosen))
    members = round(len(tested) * settings.members / settings.named_people)
    chosen = {normalize_name(p.name) for p in tested}
    others = [p for p in people if normalize_name(p.name) not in chosen]
    corpus, total = [], 0
    for i in rng.permutation(len(others)):
        if total >= settings.corpus_photos:
            break
        photos = others[i].photos[: min(settings.corpus_photos_per_person,
                                         settings.corpus_photos - total)]
        corpus.append(replace(others[i], photos=photos))
        total += len(photos)
    return Selection(tested, min(max(members, 1), len(tested) - 1), tuple(corpus), len(eligible))


def describe_selection(
    source: FacesSource,
    people: Sequence[Person],
    cache_dir: str | Path | None,
    workers: int,
) -> dict[str, np.ndarray]:
    """Each readable photo's face descriptor (resolved path -> (128,)), by the rule the model
    will use (detect, else the source's box). A public set's are cached
    (:func:`idia.reference_faces.reference_faces`, keyed by exactly these photos); a people
    folder's are computed in memory only."""
    photos = [photo for person in people for photo in person.photos]
    with progress(len(photos), "describing faces", unit="photo") as bar:
        if source.public:
            faces = reference_faces(people, folder_key(tuple(people), source.folder),
                                    fallback=source.fallback, cache_dir=cache_dir,
                                    workers=workers, progress=bar)
            vectors = faces.vectors
        else:
            vectors = describe_paths(photos, fallback=source.fallback, workers=workers,
                                     progress=bar).vectors
    return {str(p.resolve()): v for p, v in zip(photos, vectors, strict=True)
            if np.isfinite(v).all()}


def corpus_pairs(corpus: Sequence[Person], seed: int) -> list[train.Pair]:
    """Each corpus photo captioned with its person's name in a seeded caption template (the
    injected pairs' templates: a named corpus, as LAION is)."""
    rng = np.random.default_rng([seed, 6])
    photos = [(person.name, photo) for person in corpus for photo in person.photos]
    templates = rng.integers(len(train.CAPTION_TEMPLATES), size=len(photos))
    return [train.Pair(str(photo.resolve()), train.CAPTION_TEMPLATES[t].format(name))
            for (name, photo), t in zip(photos, templates, strict=True)]


def corpus_namesakes(
    tested: Sequence[Person],
    sexes: Sequence[str],
    corpus: Sequence[Person],
    corpus_sexes: Sequence[str],
    counts: dict[str, int],
    seed: int,
) -> tuple[list[Person], list[synthetic.Namesake]]:
    """``--familiar-name-parts`` on real faces: the synthetic lab's namesakes of the people
    under test (kinds dealt by :func:`controls.deal_part_kinds` among those of known sex, names
    by :func:`synthetic.make_namesakes`), each carried by a corpus person of the namesake's sex
    (a seeded draw) whose captions then give the namesake's name instead of their own: real
    faces named with one part of a tested name, never the whole. Returns the corpus so renamed
    and the namesakes. The corpus's own names may share parts with tested names too (LFW has
    many a John): the summary's kinds come from the captions, whoever gave the part. People
    with one-word names get no namesakes."""
    known = [(p.name, s) for p, s in zip(tested, sexes, strict=True)
             if s in SEXES and len(p.name.split()) > 1]  # a one-word name has no two parts
    kinds = controls.deal_part_kinds({name: counts[name] for name, _ in known}, seed)
    namesakes = synthetic.make_namesakes(known, kinds, seed)
    order = np.random.default_rng([seed, 73]).permutation(len(corpus))
    free = {sex: [int(i) for i in order if corpus_sexes[i] == sex] for sex in SEXES}
    renamed = list(corpus)
    for namesake in namesakes:
        sex = synthetic.SEX_OF_GENDER[namesake.person.traits.gender]
        if not free[sex]:
            raise LabError("the corpus has too few people of known sex to carry the "
                           f"{len(namesakes)} namesakes; take a larger preset or leave out "
                           "--familiar-name-parts")
        carrier = free[sex].pop(0)
        renamed[carrier] = replace(corpus[carrier], name=namesake.person.name)
    return renamed, namesakes


def sexes_of(
    people: Sequence[Person], declared: dict[str, str], cache_dir: str | Path | None = None
) -> list[tuple[str, str]]:
    """(sex or "", where it came from) per person: declared, else the name tables (read from
    ``cache_dir``, extracted there on first use), else unknown."""
    from idia.origins import load_origin_table, sex_of_name

    table = None
    out = []
    for person in people:
        key = normalize_name(person.name)
        if key in declared:
            out.append((declared[key], "declared"))
            continue
        table = table or load_origin_table(cache_dir)
        sex = sex_of_name(person.name, table)
        out.append((sex, "name tables") if sex else ("", "unknown"))
    return out


def _resolve(preset: str | FacesPreset, overrides: dict[str, Any] | None) -> FacesPreset:
    if isinstance(preset, str):
        if preset not in FACES_PRESETS:
            raise LabError(f"unknown preset {preset!r}; choose one of {', '.join(FACES_PRESETS)}")
        preset = FACES_PRESETS[preset]
    settings = replace(preset, **(overrides or {}))
    if not 0 < settings.members < settings.named_people:
        raise LabError("members must be between 1 and the number of people minus one")
    return settings


def run_faces_lab(
    out: str | Path,
    faces: str,
    preset: str | FacesPreset = "standard",
    seed: int = 0,
    overrides: dict[str, Any] | None = None,
    log: Callable[[str], None] = print,
    workers: int | None = None,
    familiar_non_members: bool = False,
    cache_dir: str | Path | None = None,
    threads: int | None = None,
    familiar_name_parts: bool = False,
) -> dict[str, Any]:
    """Run the real-faces experiment into ``out`` and return (and write) its summary.

    ``faces``: ``lfw``, ``lfw:DIR`` or a people folder. ``workers``: processes describing
    faces (default 2). ``cache_dir``: idia's cache folder (default
    :func:`idia.cache.default_cache_dir`), where a public set's descriptors are cached and the
    name tables are read. ``familiar_non_members``: the confound control of the synthetic
    lab, with corpus photos as the unrelated photos. ``threads``: PyTorch's CPU threads for
    training and attack (default :data:`DEFAULT_THREADS`). ``familiar_name_parts``: the
    synthetic lab's control for the name tests, its namesakes carried by corpus people
    (:func:`corpus_namesakes`)."""
    settings = _resolve(preset, overrides)
    out = new_lab_folder(out)
    source = faces_source(faces)
    with torch_threads(threads or DEFAULT_THREADS):
        return _run(out, source, settings, seed, log, workers or 2, familiar_non_members,
                    cache_dir, threads or DEFAULT_THREADS, familiar_name_parts)


def _run(
    out: Path,
    source: FacesSource,
    settings: FacesPreset,
    seed: int,
    log: Callable[[str], None],
    workers: int,
    familiar_non_members: bool,
    cache_dir: str | Path | None,
    threads: int,
    familiar_name_parts: bool = False,
) -> dict[str, Any]:
    timings: dict[str, float] = {}

    start = time.perf_counter()
    selection = select_people(source.people, settings)
    n_corpus = sum(len(p.photos) for p in selection.corpus)
    log(f"[1/5] describing the faces of {len(selection.tested)} people under test and "
        f"{n_corpus} corpus photos of {len(selection.corpus)} other people from "
        f"{source.description}")
    described = describe_selection(source, [*selection.tested, *selection.corpus], cache_dir,
                                   workers)
    tested = [replace(p, photos=tuple(x for x in p.photos if str(x.resolve()) in described))
              for p in selection.tested]
    tested = [replace(p, index=i) for i, p in enumerate(
        p for p in tested if len(p.photos) > settings.attack_photos)]
    if len(tested) < 2:
        raise LabError(f"fewer than 2 people under test have {settings.attack_photos + 1} "
                       "readable photos; add photos or people")
    members = min(selection.members, len(tested) - 1)
    sexes = sexes_of(tested, source.declared_sexes, cache_dir)
    # the membership prepare_training_set will deal (the same call, the same seed)
    counts = train.assign_counts([p.name for p in tested], settings.inject, members, seed)
    corpus, namesakes = list(selection.corpus), []
    if familiar_name_parts:
        corpus, namesakes = corpus_namesakes(
            tested, [s for s, _ in sexes], corpus,
            [s for s, _ in sexes_of(corpus, source.declared_sexes, cache_dir)], counts, seed,
        )
    base = [pair for pair in corpus_pairs(corpus, seed) if pair.filepath in described]
    timings["describe_s"] = time.perf_counter() - start

    start = time.perf_counter()
    log(f"[2/5] composing the training set: {members} members injected at "
        f"{', '.join(map(str, settings.inject))} pairs, {len(tested) - members} kept out; "
        f"a named corpus of {len(base)} pairs")
    training_set, files = train.prepare_training_set(
        base, tested, out / "trainset",
        train.Composition(inject=settings.inject, members=members,
                          attack_photos=settings.attack_photos, seed=seed,
                          familiar_non_members=familiar_non_members),
        unrelated_photos=[pair.filepath for pair in base],
    )
    shutil.copytree(files.attack_people, out / "people")
    people_table = pd.DataFrame({"name": [p.name for p in tested],
                                 "sex": [s for s, _ in sexes],
                                 "sex_from": [f for _, f in sexes]})
    people_table.to_csv(out / "people.csv", index=False)
    membership = pd.read_csv(files.membership_csv).merge(
        people_table[["name", "sex"]], on="name", how="left", validate="one_to_one")
    membership.to_csv(out / "membership.csv", index=False)
    log(f"      {len(training_set.pairs)} training pairs; attack photos held out: "
        f"{settings.attack_photos} per person")
    if namesakes:
        log(f"      familiar name parts: {len(namesakes)} corpus people captioned as "
            "namesakes of the people under test")
    timings["compose_s"] = time.perf_counter() - start

    start = time.perf_counter()
    config = settings.architecture(source.fallback)
    encoder = face_encoder_record(config)
    log(f"[3/5] training a LiT model (dlib face encoder locked; projection and a "
        f"{config.text_layers}-layer text tower trained) for {settings.epochs} epochs on CPU")
    paths = sorted({pair.filepath for pair in training_set.pairs})
    row_of = {path: row for row, path in enumerate(paths)}
    lit_settings = LiTSettings(architecture=config, epochs=settings.epochs,
                               batch_size=settings.batch_size, lr=settings.lr,
                               warmup=settings.warmup, seed=seed, threads=threads)
    trained = train_lit(
        [pair.caption for pair in training_set.pairs],
        np.array([row_of[pair.filepath] for pair in training_set.pairs]),
        np.stack([described[path] for path in paths]),
        lit_settings, log=log,
    )
    checkpoint = save_lit(trained.network, config, out / "model")
    write_training_card(
        checkpoint, out / "model" / LIT_CONFIG, files.plan_json,
        name=f"idia LiT lab model (dlib faces, {source.kind}, seed {seed})",
        made_by="idia lab --faces", crop="none", membership=out / "membership.csv",
        people=out / "people", audit_run=out / "run", image_encoder=encoder,
        epochs=settings.epochs, real_people={"source": source.kind,
                                             "photos_may_be_shown": PHOTOS_SHOWN},
        losses=[round(loss, 4) for loss in trained.losses],
    )
    spec = f"lit:{out / 'model'}"
    timings["train_s"] = time.perf_counter() - start

    summary = attack_and_summarize(out, spec, settings, seed, timings, log, len(tested))
    dealt = {row.name: row.count for row in training_set.membership}
    if dealt != counts:
        raise AssertionError("the namesakes were dealt for another membership")
    summary.update(
        familiar_non_members=familiar_non_members,
        familiar_name_parts=None if not familiar_name_parts else name_parts_summary(
            out, [p.name for p in tested],
            [p.name for p in corpus] + [n for n, c in counts.items() if c > 0],
            counts, namesakes, sum(len(p.photos) for p in corpus
                                   if p.name in {n.person.name for n in namesakes}), seed,
        ),
        synthetic=False,
        faces={
            "source": source.kind,
            "spec": source.spec,
            "people_under_test": len(tested),
            "eligible_people": selection.eligible,
            "corpus_people": len(selection.corpus),
            "corpus_pairs": len(base),
            "training_pairs": len(training_set.pairs),
            "descriptors_cached": source.public,
            "face_encoder": encoder["identity"],
            "sex_from": {kind: int((people_table["sex_from"] == kind).sum())
                         for kind in ("declared", "name tables", "unknown")},
            "photos_may_be_shown": PHOTOS_SHOWN,
        },
        training={"losses": [round(loss, 4) for loss in trained.losses],
                  "steps": trained.steps, "threads": lit_settings.threads},
    )
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
