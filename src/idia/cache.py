"""On-disk embedding cache: a re-run or a second audit over the same candidates re-encodes
nothing.

Entries are keyed by the model's identity (a digest of its weights, architecture,
preprocessing and numerics) and a digest of the input (the prompt text, or the pixels of the
exact image given to the model). One SQLite file holds them; reads and writes go in chunks,
so memory stays bounded by what one call asks for.

Faces are biometric data: which kinds are stored is decided by the caller
(:class:`idia.zeroshot.EmbeddingZeroShot` stores image embeddings only when asked). The folder
is made private (0700) and the database and its SQLite side files are 0600. A cache that
cannot be used (corrupt, read-only, locked) is reported once as a warning and the run goes on
without it: a cache must never stop an attack.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from idia.errors import IdiaError

log = logging.getLogger(__name__)

CACHE_FILE = "embeddings.sqlite"
SIDE_SUFFIXES = ("-wal", "-shm", "-journal")  # files SQLite keeps beside the database
_CHUNK = 500  # SQLite caps the number of bound parameters per statement
REFERENCE_IMAGE_KIND = "reference-image"
"""The kind of the model's embeddings of public reference photos (:mod:`idia.face_reference`),
stored whatever ``cache_images`` says: they are no user's photos."""


class CacheError(IdiaError, ValueError):
    """The cache cannot be read; the message says what to do."""


def default_cache_dir() -> Path:
    """``$IDIA_CACHE_DIR``, else ``$XDG_CACHE_HOME/idia``, else ``~/.cache/idia``."""
    if os.environ.get("IDIA_CACHE_DIR"):
        return Path(os.environ["IDIA_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "idia"


def text_key(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


def image_key(image: Image.Image) -> str:
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"{image.mode}{image.size}".encode())
    digest.update(image.tobytes())
    return digest.hexdigest()


def purge_hint(directory: Path) -> str:
    """The command that deletes this cache."""
    if directory == default_cache_dir():
        return "'idia cache purge' deletes it"
    return f"'idia cache purge --cache-dir {directory}' deletes it"


def cache_files(directory: str | Path | None = None) -> list[Path]:
    """The database and whichever SQLite side files exist beside it."""
    path = (Path(directory) if directory else default_cache_dir()) / CACHE_FILE
    candidates = [path, *(path.with_name(path.name + s) for s in SIDE_SUFFIXES)]
    return [p for p in candidates if p.is_file()]


class EmbeddingCache:
    """Vectors by (model identity, kind, key), in one SQLite file; inert once it has failed."""

    def __init__(self, directory: str | Path | None = None) -> None:
        self.directory = Path(directory) if directory else default_cache_dir()
        self.path = self.directory / CACHE_FILE
        self._db: sqlite3.Connection | None = None
        try:
            self._db = self._open()
        except (sqlite3.Error, OSError) as err:
            self._give_up(err)

    @property
    def usable(self) -> bool:
        return self._db is not None

    def _open(self) -> sqlite3.Connection:
        created = not self.directory.exists()
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if created or self.path.exists():  # a folder someone else chose is left as it is
            os.chmod(self.directory, 0o700)
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))  # private from birth
        db = sqlite3.connect(self.path, timeout=60, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS vectors (model TEXT, kind TEXT, key TEXT, "
                "dim INTEGER, vec BLOB, PRIMARY KEY (model, kind, key))"
            )
            db.commit()
            for file in cache_files(self.directory):  # an older idia left them 0644
                os.chmod(file, 0o600)
        except BaseException:
            db.close()
            raise
        return db

    def _give_up(self, err: Exception) -> None:
        log.warning(
            "warning: embedding cache %s is unusable (%s); going on without it (%s)",
            self.path,
            err,
            purge_hint(self.directory),
        )
        if self._db is not None:
            self._db.close()
        self._db = None

    def get(self, model: str, kind: str, keys: Sequence[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(keys))
        try:
            for start in range(0, len(unique), _CHUNK):
                if self._db is None:
                    break
                chunk = unique[start : start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT key, vec FROM vectors WHERE model=? AND kind=? AND key IN ({marks})",
                    (model, kind, *chunk),
                )
                for key, blob in rows:
                    found[key] = np.frombuffer(blob, dtype=np.float32)
        except sqlite3.Error as err:
            self._give_up(err)
            return {}
        return found

    def put(self, model: str, kind: str, keys: Sequence[str], vectors: np.ndarray) -> None:
        if self._db is None:
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        rows = [
            (model, kind, key, vectors.shape[1], vectors[i].tobytes()) for i, key in enumerate(keys)
        ]
        try:
            with self._db:
                self._db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?, ?, ?)", rows)
        except sqlite3.Error as err:
            self._give_up(err)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def cache_info(directory: str | Path | None = None) -> dict[str, Any]:
    """Where the cache is, its size on disk (side files included) and how many prompt, image
    (a user's photos, only with ``cache_images``) and public reference photo embeddings it
    holds; opened read-only, nothing is created."""
    path = (Path(directory) if directory else default_cache_dir()) / CACHE_FILE
    counts: dict[str, int] = {}
    if path.is_file() and path.stat().st_size:
        try:
            db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
            try:
                counts = dict(db.execute("SELECT kind, COUNT(*) FROM vectors GROUP BY kind"))
            finally:
                db.close()
        except sqlite3.Error as err:
            raise CacheError(
                f"{path} is not a readable idia embedding cache ({err}); "
                f"{purge_hint(path.parent)}"
            ) from err
    return {
        "path": str(path),
        "bytes": sum(f.stat().st_size for f in cache_files(path.parent)),
        "texts": int(counts.get("text", 0)),
        "images": int(counts.get("image", 0)),
        "reference_images": int(counts.get(REFERENCE_IMAGE_KIND, 0)),
    }


def purge_cache(directory: str | Path | None = None) -> tuple[list[Path], int]:
    """Delete the database and its side files (nothing else in the folder); returns what was
    deleted and how many bytes."""
    files = cache_files(directory)
    total = 0
    for file in files:
        total += file.stat().st_size
        file.unlink()
    return files, total
