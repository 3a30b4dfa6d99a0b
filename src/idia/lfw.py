"""Labeled Faces in the Wild: the public reference people of the face test.

LFW (University of Massachusetts Amherst; news photos of 5,749 public figures, 13,233
photos) is read in scikit-learn's layout, ``DIR/lfw_home/lfw_funneled/<Name>/<Name>_0001.jpg``,
as a people folder (one subfolder per person), without decoding a photo.

Two specs name it:

- ``lfw``: scikit-learn's data home (``$SCIKIT_LEARN_DATA``, else ``~/scikit_learn_data``),
  fetched there once through scikit-learn when absent (the funneled archive from figshare,
  scikit-learn's mirror of the UMass files; :data:`DOWNLOAD_URL`).
- ``lfw:DIR``: a local copy in that layout, read-only: nothing is written into DIR.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from idia.errors import IdiaError
from idia.people import PeopleFolderError, Person, find_people

SPEC = "lfw"
LFW_HOME = "lfw_home"
FUNNELED = "lfw_funneled"
DOWNLOAD_URL = "https://ndownloader.figshare.com/files/5976015"  # lfw-funneled.tgz, ~230 MB
ORIGINAL_URL = "http://vis-www.cs.umass.edu/lfw/lfw-funneled.tgz"
LAYOUT = f"DIR/{LFW_HOME}/{FUNNELED}/<Name>/<Name>_0001.jpg"
_NOBODY = 10**9  # more photos than anyone has: scikit-learn then decodes none of them


class LFWError(IdiaError, ValueError):
    """LFW cannot be found, fetched or read; the message says how to point at a copy."""


def is_lfw_spec(spec: str) -> bool:
    """Whether a reference spec names LFW (``lfw`` or ``lfw:DIR``) rather than a folder."""
    return spec == SPEC or spec.startswith(SPEC + ":")


def default_data_home() -> Path:
    """scikit-learn's data home, as ``sklearn.datasets.get_data_home`` finds it (without
    creating it)."""
    return Path(os.environ.get("SCIKIT_LEARN_DATA") or "~/scikit_learn_data").expanduser()


def _offline_help() -> str:
    return (
        f"download {ORIGINAL_URL} (or scikit-learn's mirror {DOWNLOAD_URL}) elsewhere, unpack "
        f"it so that it reads {LAYOUT}, and give the reference as lfw:DIR "
        "(or set SCIKIT_LEARN_DATA=DIR and give lfw)"
    )


def fetch_lfw(data_home: Path) -> Path:
    """Download and unpack LFW (funneled) into ``data_home`` through scikit-learn; returns
    the folder of people. Nothing is decoded: only the archive is fetched and extracted."""
    try:
        from sklearn.datasets import fetch_lfw_people
    except ImportError as err:
        raise LFWError(
            f"fetching LFW needs scikit-learn (pip install scikit-learn); or {_offline_help()}"
        ) from err
    folder = data_home / LFW_HOME / FUNNELED
    problem: Exception | None = None
    try:
        # with more photos required than anyone has, scikit-learn fetches and extracts the
        # archive, then stops ("too restrictive") before decoding any photo into its array
        fetch_lfw_people(
            data_home=str(data_home), funneled=True, min_faces_per_person=_NOBODY,
            download_if_missing=True,
        )
    except ValueError as err:
        problem = err
    except OSError as err:  # no network, HTTP errors, checksum mismatch, disk full
        problem = err
    if not folder.is_dir():
        raise LFWError(
            f"LFW is not in {data_home} and could not be fetched from {DOWNLOAD_URL} "
            f"({problem}); offline, {_offline_help()}"
        )
    return folder


def lfw_folder(spec: str = SPEC, fetch: bool = True) -> Path:
    """The folder of LFW's people named by ``spec`` (``lfw`` or ``lfw:DIR``); ``lfw`` is
    fetched into scikit-learn's data home when absent and ``fetch`` is true."""
    if spec == SPEC:
        home = default_data_home()
        folder = home / LFW_HOME / FUNNELED
        if folder.is_dir():
            return folder
        if not fetch:
            raise LFWError(f"LFW is not in {home}; {_offline_help()}")
        return fetch_lfw(home)
    if not is_lfw_spec(spec) or not spec[len(SPEC) + 1 :].strip():
        raise LFWError(f"{spec!r} is not an LFW reference: give 'lfw' or 'lfw:DIR' ({LAYOUT})")
    root = Path(spec[len(SPEC) + 1 :].strip()).expanduser()
    for folder in (root / LFW_HOME / FUNNELED, root / FUNNELED):
        if folder.is_dir():
            return folder
    raise LFWError(f"{root} does not hold LFW in scikit-learn's layout ({LAYOUT})")


def folder_key(people: tuple[Person, ...], folder: Path) -> str:
    """A digest of the people's photo files (paths under ``folder`` and sizes): the identity
    of a reference set, the same wherever the copy lies."""
    digest = hashlib.blake2b(digest_size=16)
    for person in people:
        for photo in person.photos:
            digest.update(f"{photo.relative_to(folder).as_posix()}\0{photo.stat().st_size}\n"
                          .encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class LFWReference:
    """LFW's people (folder name -> name with spaces, photos sorted) and the set's identity
    ``key`` (see :func:`folder_key`)."""

    spec: str
    folder: Path
    people: tuple[Person, ...]
    key: str

    @property
    def n_photos(self) -> int:
        return sum(len(p.photos) for p in self.people)

    def describe(self) -> str:
        return (f"Labeled Faces in the Wild ({len(self.people):,} people, "
                f"{self.n_photos:,} photos; {self.folder})")


def load_lfw(spec: str = SPEC, fetch: bool = True) -> LFWReference:
    """LFW's people, from ``lfw`` (scikit-learn's data home, fetched once) or ``lfw:DIR``."""
    folder = lfw_folder(spec, fetch)
    try:
        people, _ = find_people(folder, what="LFW")
    except PeopleFolderError as err:
        raise LFWError(f"{folder} is not a usable LFW copy: {err}") from err
    people = tuple(people)
    return LFWReference(spec, folder, people, folder_key(people, folder))
