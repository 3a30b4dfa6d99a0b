"""People folders of synthetic people, as :func:`idia.people.find_people` reads them
(``<First_Last>/<k>.png``), and the table of their names and sexes."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

from idia.people import person_folder_name
from idia.synthetic.corpus import CorpusRecord, default_workers, render_jobs
from idia.synthetic.drawing import DEFAULT_SIZE
from idia.synthetic.identities import Identity, people_rows


def write_people_folder(
    identities: Iterable[Identity],
    photos_per_person: int,
    out_dir: str | Path,
    size: int = DEFAULT_SIZE,
    strength: float = 1.0,
    workers: int | None = None,
) -> Path:
    """Write ``out_dir/<First_Last>/<k>.png``, photos 0..photos_per_person-1 of each person."""
    out_dir = Path(out_dir).resolve()
    jobs = []
    for identity in identities:
        if not identity.name:
            raise ValueError("people written to a people folder need names")
        folder = out_dir / person_folder_name(identity.name)
        folder.mkdir(parents=True, exist_ok=True)
        jobs += [
            (CorpusRecord("", identity, k), folder / f"{k:03d}.png", size, strength)
            for k in range(photos_per_person)
        ]
    render_jobs(jobs, workers or default_workers())
    return out_dir


def write_people_table(identities: Iterable[Identity], path: str | Path) -> Path:
    """:func:`people_rows` as a ``name,sex`` CSV file, with a ``group`` column when people
    were drawn in demographic groups (:mod:`idia.synthetic.groups`)."""
    path = Path(path)
    identities = list(identities)
    grouped = any(person.group is not None for person in identities)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["name", "sex", "group"] if grouped else ["name", "sex"])
        for person, row in zip(identities, people_rows(identities), strict=True):
            writer.writerow([*row, person.group or ""] if grouped else row)
    return path
