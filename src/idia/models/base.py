"""The two things the attack may ask of a model, and what some models offer beyond them.

``ClosedBoxModel`` is all the attack needs: for each image and each group of texts, which text
fits best (and, where the model is willing to say, the scores). ``EmbeddingModel`` is what an
in-process model offers; :class:`idia.zeroshot.EmbeddingZeroShot` turns one into a
``ClosedBoxModel`` with one matrix product and an embedding cache. A backend that can only be
queried over HTTP implements ``ClosedBoxModel`` directly, and the attack does not change.

Callers that use more than ``zero_shot`` ask with ``isinstance`` against the narrower
protocols: ``ScoredModel`` (CLIP's temperature, for the real name's probability),
``EmbeddedClassifier`` (embeddings in reach: the text-only test, reference photos encoded
once) and ``MeteredModel`` (a model behind an API that counts its queries).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
from PIL import Image

from idia.errors import IdiaError

# How an in-process model computes: auto = fp32 on CPU, bf16 (else fp16) autocast on CUDA.
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


class ModelLoadError(IdiaError, RuntimeError):
    """A model spec could not be turned into a model; the message says what to do."""


class PrecisionError(IdiaError, ValueError):
    """A precision that is not one of :data:`PRECISIONS`."""


@dataclass(frozen=True)
class ZeroShotResult:
    """Per image and text group: the index of the best text, and all scores when known.

    ``best``: int array (N, G). ``scores``: float array (N, G, K) of image-text similarities,
    or None for a closed-box model that reveals only its top answer.
    """

    best: np.ndarray
    scores: np.ndarray | None = None


@runtime_checkable
class ClosedBoxModel(Protocol):
    """Answers "which of these texts fits this image best?" and nothing more."""

    name: str
    identity: str

    def zero_shot(
        self, images: Sequence[Image.Image], text_groups: Sequence[Sequence[str]]
    ) -> ZeroShotResult: ...


@runtime_checkable
class ScoredModel(ClosedBoxModel, Protocol):
    """A ClosedBoxModel that tells its temperature: scores times ``logit_scale`` are the
    logits of its softmax (without it, CLIP's 100 is assumed)."""

    logit_scale: float


@runtime_checkable
class EmbeddedClassifier(ScoredModel, Protocol):
    """A ClosedBoxModel whose embeddings are in reach (:class:`idia.zeroshot.EmbeddingZeroShot`):
    the text-only test reads its prompt embeddings, and photos encoded once (reference people)
    are answered from their embeddings."""

    def image_embeddings(self, images: Sequence[Image.Image]) -> np.ndarray: ...

    def text_embeddings(self, texts: Sequence[str]) -> np.ndarray:
        """(N, D) embeddings of texts (through the disk cache; not kept in memory)."""
        ...

    def group_embeddings(self, text_groups: Sequence[Sequence[str]]) -> np.ndarray:
        """(G, K, D) embeddings of G equally sized text groups."""
        ...

    def zero_shot_embedded(
        self, image_embeddings: np.ndarray, text_groups: Sequence[Sequence[str]]
    ) -> ZeroShotResult:
        """``zero_shot`` for images already encoded by this model."""
        ...


@runtime_checkable
class MeteredModel(ClosedBoxModel, Protocol):
    """A ClosedBoxModel whose answers cost queries (a model behind an API)."""

    def usage(self) -> dict[str, Any]:
        """What was asked so far: ``url``, ``queries`` (photo x template), ``requests``,
        ``retries``, ``possibly_duplicated_queries``."""
        ...


@runtime_checkable
class EmbeddingModel(Protocol):
    """A CLIP-style model with both towers in reach.

    Embeddings are float32 and L2-normalised. ``identity`` must change whenever the weights,
    the architecture or the preprocessing change: it keys the embedding cache.
    ``preprocess_id`` names the image preprocessing, for the same reason.
    """

    name: str
    identity: str
    logit_scale: float

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray: ...

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray: ...


def l2_normalize(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32)
