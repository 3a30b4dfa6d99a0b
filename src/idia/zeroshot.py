"""Embeddings -> zero-shot answers: an :class:`EmbeddingModel` seen as a
:class:`ClosedBoxModel`.

Each unique prompt and each image is encoded once (memory, then the on-disk cache); the
answers for all prompt groups (templates) come from one matrix product. Photos are faces:
their embeddings reach the on-disk cache only when ``cache_images`` is set.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from idia.cache import EmbeddingCache, image_key, text_key
from idia.models.base import EmbeddingModel, ZeroShotResult


@dataclass(frozen=True)
class _HeldSet:
    """A candidate set's prompt embeddings kept in memory, (G, K, D), and each prompt's row
    in them flattened to (G * K, D)."""

    embeddings: np.ndarray
    rows: dict[str, int]


class EmbeddingZeroShot:
    """Answers zero-shot questions from embeddings, caching them by model identity.

    ``cache_images``: also store photo embeddings in ``cache`` (prompt embeddings always are).
    Prompt embeddings of recent candidate sets stay in memory (photo embeddings never do):
    ``max_groups`` sets at most (None: no limit by count), holding ``max_texts`` prompts at
    most (None: no limit; the latest set always stays), least recently used dropped first;
    1,000 names x 21 templates is about 43 MB at 512 dimensions. A new set takes the prompts
    it shares with the sets in memory from them (one person's decoys are the next one's), so
    only its new prompts are encoded. One instance can serve several threads.
    """

    def __init__(
        self,
        model: EmbeddingModel,
        cache: EmbeddingCache | None = None,
        cache_images: bool = False,
        max_groups: int | None = 4,
        max_texts: int | None = None,
    ) -> None:
        if max_groups is not None and max_groups < 1:
            raise ValueError(f"max_groups must be at least 1, got {max_groups}")
        self.model = model
        self.cache = cache
        self.cache_images = cache_images
        self.max_groups = max_groups
        self.max_texts = max_texts
        self.name = model.name
        self.identity = model.identity
        self.logit_scale = model.logit_scale
        self._groups: OrderedDict[str, _HeldSet] = OrderedDict()
        self._lock = threading.Lock()
        self.encoded_texts = 0  # how many prompts actually went through the text tower
        self.encoded_images = 0

    @property
    def texts_in_memory(self) -> int:
        """How many prompt embeddings the candidate sets in memory hold."""
        return sum(held.embeddings[..., 0].size for held in self._groups.values())

    def text_embeddings(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(
            list(texts), [text_key(t) for t in texts], "text", self.model.encode_texts, self.cache
        )

    def image_embeddings(self, images: Sequence[Image.Image]) -> np.ndarray:
        cache = self.cache if self.cache_images else None
        return self._embed(
            list(images), [image_key(i) for i in images], "image", self.model.encode_images, cache
        )

    def group_embeddings(self, text_groups: Sequence[Sequence[str]]) -> np.ndarray:
        """(G, K, D) embeddings of equally sized text groups, kept in memory (see the class)."""
        sizes = {len(group) for group in text_groups}
        if len(sizes) != 1:
            raise ValueError(f"text groups must have equal sizes, got {sorted(sizes)}")
        digest = hashlib.blake2b(digest_size=16)
        for group in text_groups:
            digest.update("\x1f".join(group).encode() + b"\x1e")
        key = digest.hexdigest()
        with self._lock:
            if key in self._groups:
                self._groups.move_to_end(key)
                return self._groups[key].embeddings
            flat = [text for group in text_groups for text in group]
            embeddings = self._remembered_or_encoded(flat)
            embeddings = embeddings.reshape(len(text_groups), sizes.pop(), -1)
            self._groups[key] = _HeldSet(embeddings, {text: i for i, text in enumerate(flat)})
            while len(self._groups) > 1 and (
                (self.max_groups is not None and len(self._groups) > self.max_groups)
                or (self.max_texts is not None and self.texts_in_memory > self.max_texts)
            ):
                self._groups.popitem(last=False)
            return embeddings

    def _remembered_or_encoded(self, texts: list[str]) -> np.ndarray:
        """(N, D) embeddings of ``texts``: those a set in memory holds from it, the others
        encoded (or read from the cache), each unique text once."""
        unique = list(dict.fromkeys(texts))
        found: dict[str, np.ndarray] = {}
        for held in reversed(self._groups.values()):
            rows = held.embeddings.reshape(-1, held.embeddings.shape[-1])
            for text in unique:
                row = held.rows.get(text)
                if row is not None and text not in found:
                    found[text] = rows[row]
        missing = [text for text in unique if text not in found]
        if missing:
            found.update(zip(missing, self.text_embeddings(missing), strict=True))
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([found[text] for text in texts])

    def zero_shot(
        self, images: Sequence[Image.Image], text_groups: Sequence[Sequence[str]]
    ) -> ZeroShotResult:
        return self.zero_shot_embedded(self.image_embeddings(images), text_groups)

    def zero_shot_embedded(
        self, image_embeddings: np.ndarray, text_groups: Sequence[Sequence[str]]
    ) -> ZeroShotResult:
        """:meth:`zero_shot` for images already encoded by this model (e.g. reference photos
        kept in memory)."""
        texts = self.group_embeddings(text_groups)
        scores = np.einsum("nd,gkd->ngk", image_embeddings, texts)
        return ZeroShotResult(best=scores.argmax(axis=-1), scores=scores)

    def _embed(
        self, items: list, keys: list[str], kind: str, encode, cache: EmbeddingCache | None
    ) -> np.ndarray:
        found = cache.get(self.identity, kind, keys) if cache is not None else {}
        missing = [i for i, key in enumerate(keys) if key not in found]
        missing_unique = list({keys[i]: i for i in missing}.values())
        if missing_unique:
            vectors = encode([items[i] for i in missing_unique])
            new_keys = [keys[i] for i in missing_unique]
            if cache is not None:
                cache.put(self.identity, kind, new_keys, vectors)
            found.update(zip(new_keys, vectors, strict=True))
            if kind == "text":
                self.encoded_texts += len(missing_unique)
            else:
                self.encoded_images += len(missing_unique)
        if not keys:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([found[key] for key in keys]).astype(np.float32, copy=False)
