"""Folders of people: one subfolder per person, named after them (``Jane_Doe/`` or
``Jane Doe/``), holding that person's photos. The one reader of them, for the people under
audit, the reference people of the face-association test, and the people a training set is
composed of (``idia train``, ``idia lab``), so that all see the same people and photos."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from idia.errors import IdiaError
from idia.faces import list_images
from idia.names import display_name, normalize_name


class PeopleFolderError(IdiaError, ValueError):
    """A people folder cannot be used; the message says what to change."""


@dataclass(frozen=True)
class Person:
    """A person of a people folder: their position in it, their name (from the folder's
    name), the folder, and their photos (sorted by file name)."""

    index: int
    name: str
    folder: Path
    photos: tuple[Path, ...]


def find_people(people_dir: str | Path, what: str = "people") -> tuple[list[Person], list[str]]:
    """One person per subfolder (folder name = the name; hidden folders are not people).
    Returns people with at least one image file (:func:`idia.faces.list_images`: every
    format idia decodes, hidden files left out), and warnings for folders that were
    skipped."""
    root = Path(people_dir)
    if not root.exists():
        raise PeopleFolderError(f"{what} folder not found: {root}")
    if not root.is_dir():
        raise PeopleFolderError(f"{root} is not a folder: give a folder of person folders")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise PeopleFolderError(
            f"{root} has no person folders (one subfolder per person, named after them)"
        )
    by_key: dict[str, list[Path]] = {}
    for folder in folders:
        by_key.setdefault(normalize_name(display_name(folder.name)), []).append(folder)
    duplicates = [[f.name for f in fs] for fs in by_key.values() if len(fs) > 1]
    if duplicates:
        raise PeopleFolderError(f"the same person has several folders: {duplicates}; merge them")
    people, warnings = [], []
    for folder in folders:
        images = list_images(folder)
        if not images:
            warnings.append(f"{folder.name}: no image files; skipped")
            continue
        people.append(Person(len(people), display_name(folder.name), folder, tuple(images)))
    if not people:
        raise PeopleFolderError(f"no person folder under {root} holds image files")
    return people, warnings


def person_folder_name(name: str) -> str:
    """The folder a person's photos go in: the name with underscores for spaces (shell
    friendly); :func:`find_people` reads the name back from it."""
    return "_".join(name.split())


def name_key(name: str) -> int:
    """A stable integer from a person's name, for per-person random streams."""
    return int.from_bytes(normalize_name(name).encode()[:8].ljust(8, b"\0"), "little")


def sample_photos(person: Person, k: int | None, seed: int) -> tuple[Path, ...]:
    """``k`` of a person's photos, drawn with a seed that depends on the person's name."""
    if k is None or k >= len(person.photos):
        return person.photos
    rng = np.random.default_rng([seed, name_key(person.name)])
    picks = np.sort(rng.choice(len(person.photos), size=k, replace=False))
    return tuple(person.photos[i] for i in picks)
