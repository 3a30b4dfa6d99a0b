"""A background corpus: unnamed people with attribute captions and object pictures (and, for
the lab's controls, named background people), in a seeded order, rendered on demand or
written as an open_clip CSV of PNGs (in parallel)."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from idia.synthetic.captions import describe_photo
from idia.synthetic.drawing import DEFAULT_SIZE
from idia.synthetic.faces import render_face
from idia.synthetic.identities import Identity, lookalike, make_identities
from idia.synthetic.objects import ObjectScene, describe_object, make_object_scene, render_object
from idia.synthetic.randomness import seeded_rng
from idia.synthetic.traits import TraitProfile


@dataclass(frozen=True)
class CorpusRecord:
    """One image-caption pair of the background corpus, rendered on demand."""

    caption: str
    identity: Identity | None = None  # a face photo of this (unnamed) person ...
    photo_index: int = 0
    scene: ObjectScene | None = None  # ... or a picture of objects


def background_corpus(
    num_people: int,
    photos_per_person: int,
    num_objects: int,
    seed: int,
    strength: float = 1.0,
    lookalike_of: Sequence[Identity] = (),
    lookalikes_per_person: int = 0,
    closeness: float = 0.75,
    profiles: Sequence[TraitProfile] = (),
    named: Sequence[tuple[Identity, int]] = (),
) -> list[CorpusRecord]:
    """Unnamed people with attribute captions plus object pictures, in a seeded order.

    ``lookalike_of`` adds ``lookalikes_per_person`` unnamed look-alikes of each given person
    (e.g. the named people of an experiment), so that a face alone is not unique in the corpus.
    ``profiles``: unnamed person i's traits come from ``profiles[i % len(profiles)]`` (e.g.
    demographic groups; default: the shared population). ``named``: (person, photos) of named
    background people: photos 0..photos-1 of each, every caption naming them.
    """
    people = make_identities(
        [None] * num_people,
        seed,
        profiles=[profiles[i % len(profiles)] for i in range(num_people)] if profiles else None,
    )
    people += [
        lookalike(source, int(seeded_rng(seed, 11, i, k).integers(2**62)), closeness)
        for i, source in enumerate(lookalike_of)
        for k in range(lookalikes_per_person)
    ]
    records = [
        CorpusRecord(describe_photo(person, p, strength), person, p)
        for person in people
        for p in range(photos_per_person)
    ]
    records += [
        CorpusRecord(describe_photo(person, p, strength, named=True), person, p)
        for person, photos in named
        for p in range(photos)
    ]
    scenes = [
        make_object_scene(int(seeded_rng(seed, 12, i).integers(2**62))) for i in range(num_objects)
    ]
    records += [CorpusRecord(describe_object(scene), scene=scene) for scene in scenes]
    order = seeded_rng(seed, 13).permutation(len(records))
    return [records[i] for i in order]


def render_record(
    record: CorpusRecord, size: int = DEFAULT_SIZE, strength: float = 1.0
) -> Image.Image:
    """The record's picture: its person's photo, or its objects."""
    if record.identity is not None:
        return render_face(record.identity, record.photo_index, size, strength)
    if record.scene is None:
        raise ValueError("a corpus record needs an identity or a scene")
    return render_object(record.scene, size)


def _render_and_save(jobs: list[tuple[CorpusRecord, Path, int, float]]) -> None:
    for record, path, size, strength in jobs:
        render_record(record, size, strength).save(path)


def render_jobs(jobs: list[tuple[CorpusRecord, Path, int, float]], workers: int) -> None:
    """Render and save ``(record, path, size, strength)`` jobs, over ``workers`` processes
    when there are enough of them to pay for the processes."""
    if workers <= 1 or len(jobs) < 64:
        _render_and_save(jobs)
        return
    chunks = [jobs[i :: workers * 4] for i in range(workers * 4)]
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(_render_and_save, chunks))


def default_workers() -> int:
    """The CPUs this process may use."""
    return max(
        1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    )


def write_corpus(
    records: Sequence[CorpusRecord],
    out_dir: str | Path,
    size: int = DEFAULT_SIZE,
    strength: float = 1.0,
    workers: int | None = None,
) -> Path:
    """Render ``records`` as PNGs under ``out_dir/images`` and write ``out_dir/corpus.csv``.

    The CSV is open_clip's format (``filepath,caption``, absolute paths), usable directly as
    the base dataset of :mod:`idia.lab.train`.
    """
    out_dir = Path(out_dir).resolve()
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "images" / f"{i:07d}.png" for i in range(len(records))]
    render_jobs(
        [(r, p, size, strength) for r, p in zip(records, paths, strict=True)],
        workers or default_workers(),
    )
    csv_path = out_dir / "corpus.csv"
    with csv_path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["filepath", "caption"])
        writer.writerows((str(p), r.caption) for r, p in zip(records, paths, strict=True))
    return csv_path
