"""The two things the attack may ask of a model.

``ClosedBoxModel`` is all the attack needs: for each image and each group of texts, which text
fits best (and, where the model is willing to say, the scores). ``EmbeddingModel`` is what an
in-process model offers; :class:`idia.zeroshot.EmbeddingZeroShot` turns one into a
``ClosedBoxModel`` with one matrix product and an embedding cache. A backend that can only be
queried over HTTP implements ``ClosedBoxModel`` directly, and the attack does not change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

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
