"""Embeddings -> zero-shot answers: an :class:`EmbeddingModel` seen as a
:class:`ClosedBoxModel`.

Each unique prompt and each image is encoded once (memory, then the on-disk cache); the
answers for all prompt groups (templates) come from one matrix product.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
from PIL import Image

from idia.cache import EmbeddingCache, image_key, text_key
from idia.models.base import EmbeddingModel, ZeroShotResult


class EmbeddingZeroShot:
    """Answers zero-shot questions from embeddings, caching them by model identity."""

    def __init__(self, model: EmbeddingModel, cache: EmbeddingCache | None = None) -> None:
        self.model = model
        self.cache = cache
        self.name = model.name
        self.identity = model.identity
        self.logit_scale = model.logit_scale
        self._groups: dict[str, np.ndarray] = {}
        self.encoded_texts = 0  # how many prompts actually went through the text tower
        self.encoded_images = 0

    def text_embeddings(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(
            list(texts), [text_key(t) for t in texts], "text", self.model.encode_texts
        )

    def image_embeddings(self, images: Sequence[Image.Image]) -> np.ndarray:
        return self._embed(
            list(images), [image_key(i) for i in images], "image", self.model.encode_images
        )

    def group_embeddings(self, text_groups: Sequence[Sequence[str]]) -> np.ndarray:
        """(G, K, D) embeddings of equally sized text groups, kept in memory once built."""
        sizes = {len(group) for group in text_groups}
        if len(sizes) != 1:
            raise ValueError(f"text groups must have equal sizes, got {sorted(sizes)}")
        digest = hashlib.blake2b(digest_size=16)
        for group in text_groups:
            digest.update("\x1f".join(group).encode() + b"\x1e")
        key = digest.hexdigest()
        if key not in self._groups:
            flat = [text for group in text_groups for text in group]
            self._groups[key] = self.text_embeddings(flat).reshape(
                len(text_groups), sizes.pop(), -1
            )
        return self._groups[key]

    def zero_shot(
        self, images: Sequence[Image.Image], text_groups: Sequence[Sequence[str]]
    ) -> ZeroShotResult:
        texts = self.group_embeddings(text_groups)
        scores = np.einsum("nd,gkd->ngk", self.image_embeddings(images), texts)
        return ZeroShotResult(best=scores.argmax(axis=-1), scores=scores)

    def _embed(self, items: list, keys: list[str], kind: str, encode) -> np.ndarray:
        found = self.cache.get(self.identity, kind, keys) if self.cache else {}
        missing = [i for i, key in enumerate(keys) if key not in found]
        missing_unique = list({keys[i]: i for i in missing}.values())
        if missing_unique:
            vectors = encode([items[i] for i in missing_unique])
            new_keys = [keys[i] for i in missing_unique]
            if self.cache:
                self.cache.put(self.identity, kind, new_keys, vectors)
            found.update(zip(new_keys, vectors, strict=True))
            if kind == "text":
                self.encoded_texts += len(missing_unique)
            else:
                self.encoded_images += len(missing_unique)
        if not keys:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([found[key] for key in keys]).astype(np.float32, copy=False)
