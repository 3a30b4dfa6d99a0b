"""On-disk embedding cache: a re-run or a second audit over the same candidates re-encodes
nothing.

Entries are keyed by the model's identity (a digest of its weights, architecture,
preprocessing and numerics) and a digest of the input (the prompt text, or the pixels of the
exact image given to the model). One SQLite file holds them; reads and writes go in chunks,
so memory stays bounded by what one call asks for.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

_CHUNK = 500  # SQLite caps the number of bound parameters per statement


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


class EmbeddingCache:
    """Vectors by (model identity, kind, key), in one SQLite file."""

    def __init__(self, directory: str | Path | None = None) -> None:
        self.directory = Path(directory) if directory else default_cache_dir()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / "embeddings.sqlite"
        self._db = sqlite3.connect(self.path, timeout=60, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS vectors (model TEXT, kind TEXT, key TEXT, dim INTEGER, "
            "vec BLOB, PRIMARY KEY (model, kind, key))"
        )
        self._db.commit()

    def get(self, model: str, kind: str, keys: Sequence[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), _CHUNK):
            chunk = unique[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT key, vec FROM vectors WHERE model=? AND kind=? AND key IN ({marks})",
                (model, kind, *chunk),
            )
            for key, blob in rows:
                found[key] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put(self, model: str, kind: str, keys: Sequence[str], vectors: np.ndarray) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        rows = [
            (model, kind, key, vectors.shape[1], vectors[i].tobytes()) for i, key in enumerate(keys)
        ]
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?, ?, ?)", rows)

    def close(self) -> None:
        self._db.close()
