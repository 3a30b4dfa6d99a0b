"""Face descriptors of a public reference set (LFW), computed once and cached on disk.

Describing LFW's 13,233 photos takes minutes; choosing a person's lookalikes needs them at
every check. They are computed once per reference set and encoder and kept in idia's cache
folder (:func:`idia.cache.default_cache_dir`, under ``reference-faces/``; folder 0700, files
0600), keyed by the set's identity (a digest of its file list and sizes) and the encoder's
(weights and box rule), so a changed copy or encoder never reuses old vectors. Only public
reference photos go here: a user's own photos are described in memory and never cached.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from idia.cache import default_cache_dir
from idia.face_descriptors import DESCRIPTOR_DIM, FaceBox, describe_paths, encoder_identity
from idia.files import write_atomic
from idia.people import Person
from idia.progress import Progress

log = logging.getLogger(__name__)

CACHE_SUBDIR = "reference-faces"


@dataclass(frozen=True)
class ReferenceFaces:
    """Descriptors of every photo of a reference set, grouped by person.

    ``names`` (R,) in the people's order; ``owner`` (N,): the person of each photo, photos
    in the people's order and each person's photo order; ``vectors`` (N, 128) float32 with
    NaN rows where ``found`` (N,) is false (no face); ``set_key`` and ``encoder`` say what
    they are descriptors of and by what.
    """

    names: tuple[str, ...]
    owner: np.ndarray
    vectors: np.ndarray
    found: np.ndarray
    set_key: str
    encoder: str

    @property
    def counts(self) -> np.ndarray:
        """(R,) photos with a face per person."""
        return np.bincount(self.owner[self.found], minlength=len(self.names))

    def means(self) -> np.ndarray:
        """(R, 128) each person's mean descriptor over photos with a face (NaN without)."""
        sums = np.zeros((len(self.names), DESCRIPTOR_DIM))
        rows, owners = self.vectors[self.found].astype(np.float64), self.owner[self.found]
        if len(rows):  # photos come grouped by person: sum each run of rows
            starts = np.flatnonzero(np.r_[True, owners[1:] != owners[:-1]])
            sums[owners[starts]] = np.add.reduceat(rows, starts, axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (sums / self.counts[:, None]).astype(np.float32)

    def of(self, person: int) -> np.ndarray:
        """(n, 128) descriptors of one person's photos with a face."""
        return self.vectors[(self.owner == person) & self.found]


def cache_path(set_key: str, encoder: str, cache_dir: str | Path | None = None) -> Path:
    name = hashlib.blake2b(f"{set_key}\0{encoder}".encode(), digest_size=12).hexdigest()
    return (Path(cache_dir) if cache_dir else default_cache_dir()) / CACHE_SUBDIR / f"{name}.npz"


def _save(faces: ReferenceFaces, path: Path) -> None:
    folder_existed = path.parent.exists()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not folder_existed:
        os.chmod(path.parent, 0o700)

    def write(tmp: Path) -> None:  # mkstemp made it 0600; opening it keeps the mode
        with open(tmp, "wb") as handle:
            np.savez(handle, names=np.array(faces.names, dtype=str), owner=faces.owner,
                     vectors=faces.vectors, found=faces.found,
                     set_key=np.array(faces.set_key), encoder=np.array(faces.encoder))

    write_atomic(path, write)


def _load(path: Path, people: Sequence[Person], set_key: str, encoder: str) -> ReferenceFaces:
    with np.load(path, allow_pickle=False) as stored:
        faces = ReferenceFaces(
            names=tuple(str(n) for n in stored["names"]),
            owner=stored["owner"].astype(np.int64),
            vectors=stored["vectors"].astype(np.float32),
            found=stored["found"].astype(bool),
            set_key=str(stored["set_key"]),
            encoder=str(stored["encoder"]),
        )
    expected_owner = np.repeat(np.arange(len(people)), [len(p.photos) for p in people])
    if (faces.set_key, faces.encoder) != (set_key, encoder) or faces.names != tuple(
        p.name for p in people
    ) or not np.array_equal(faces.owner, expected_owner) or faces.vectors.shape != (
        len(expected_owner), DESCRIPTOR_DIM
    ):
        raise ValueError("it describes another reference set or encoder")
    return faces


def reference_faces(
    people: Sequence[Person],
    set_key: str,
    box: FaceBox | None = None,
    cache_dir: str | Path | None = None,
    workers: int = 1,
    progress: Progress | None = None,
    fallback: FaceBox | None = None,
    store: bool = True,
) -> ReferenceFaces:
    """Descriptors of every photo of a public reference set (``set_key``: its identity, e.g.
    :attr:`idia.lfw.LFWReference.key`), from the cache or computed in ``workers`` processes
    and cached (``store=False``: the cache is neither read nor written). Never pass a user's
    own photos with ``store``: they would be stored. ``box`` and ``fallback``: the rule that
    places the face (see ``FaceDescriptorEncoder``)."""
    encoder = encoder_identity(box, fallback)
    path = cache_path(set_key, encoder, cache_dir)
    if store and path.is_file():
        try:
            return _load(path, people, set_key, encoder)
        except (OSError, ValueError, KeyError) as err:
            log.warning("warning: reference descriptors %s are unusable (%s); recomputing",
                        path, err)
    photos = [photo for person in people for photo in person.photos]
    described = describe_paths(photos, box=box, workers=workers, progress=progress,
                               fallback=fallback)
    faces = ReferenceFaces(
        names=tuple(p.name for p in people),
        owner=np.repeat(np.arange(len(people)), [len(p.photos) for p in people]),
        vectors=described.vectors,
        found=described.found,
        set_key=set_key,
        encoder=encoder,
    )
    if not store:
        return faces
    try:
        _save(faces, path)
    except OSError as err:
        log.warning("warning: could not cache reference descriptors in %s (%s)", path, err)
    return faces
