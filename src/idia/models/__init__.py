"""Model specs and backends.

A spec is one string: ``open_clip:ARCH[:PRETRAINED]`` (ARCH an open_clip model name or a
model-config JSON; PRETRAINED a pretrained tag, a checkpoint file or ``random``) or
``hf:ID_OR_DIR`` (a transformers CLIP/SigLIP model id or a saved folder) or
``lit:DIR`` (a LiT model ``idia lab --faces`` trained: :mod:`idia.models.lit`) or
``http(s)://HOST:PORT`` (a model behind ``idia serve``'s API: closed-box, answers only).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from idia.models.base import (
    PRECISIONS,
    ClosedBoxModel,
    EmbeddedClassifier,
    EmbeddingModel,
    MeteredModel,
    ModelLoadError,
    ScoredModel,
    ZeroShotResult,
)
from idia.models.card import ModelCard, find_card
from idia.models.spec import SPEC_HELP, parse_spec


def load_model(
    spec: str, device: str | None = None, precision: str | None = None, **kwargs: Any
) -> EmbeddingModel | ClosedBoxModel:
    """Build the model a spec names; raises :class:`ModelLoadError` with what to do.

    ``precision`` (in-process models): ``auto`` (default: fp32 on CPU, bf16/fp16 autocast on
    CUDA), ``fp32``, ``bf16`` or ``fp16``; part of the model's identity.
    A URL gives a :class:`~idia.models.remote.RemoteModel` (keyword ``api_key``; ``device``,
    ``precision`` and ``progress`` do not apply: the server computes)."""
    backend, model, weights = parse_spec(spec)
    if precision not in (None, *PRECISIONS):
        raise ModelLoadError(
            f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}"
        )
    if backend == "remote":
        if precision not in (None, "auto"):
            raise ModelLoadError(
                f"precision {precision!r} applies to in-process models only; the server "
                f"behind {model} computes in its own precision"
            )
        from idia.models.remote import RemoteModel

        kwargs.pop("progress", None)
        return RemoteModel(model, **kwargs)
    if backend == "open_clip":
        from idia.models.openclip import OpenCLIPModel

        return OpenCLIPModel.from_spec(
            model, weights, device=device, precision=precision, **kwargs
        )
    if backend == "lit":
        from idia.models.lit import LiTModel

        return LiTModel.from_spec(model, device=device, precision=precision, **kwargs)
    from idia.models.hf import HFCLIPModel

    return HFCLIPModel.from_spec(model, device=device, precision=precision, **kwargs)


class LoadedModel(NamedTuple):
    """What :func:`load_model_and_card` returns: the model, its card (None without one) and
    the problems met on the way (e.g. a malformed card, ignored)."""

    model: EmbeddingModel | ClosedBoxModel
    card: ModelCard | None
    warnings: list[str]


def load_model_and_card(
    spec: str, *, device: str | None = None, precision: str | None = None, **kwargs: Any
) -> LoadedModel:
    """The model a spec names (:func:`load_model`, same arguments) and the card beside its
    checkpoint (:mod:`idia.models.card`), which says how the model expects photos. The card is
    read first: a malformed one is ignored with a warning, never an error."""
    card, problem = find_card(spec)
    model = load_model(spec, device=device, precision=precision, **kwargs)
    return LoadedModel(model, card, [problem] if problem else [])


__all__ = [
    "ClosedBoxModel",
    "EmbeddedClassifier",
    "EmbeddingModel",
    "LoadedModel",
    "MeteredModel",
    "ModelLoadError",
    "PRECISIONS",
    "SPEC_HELP",
    "ScoredModel",
    "ZeroShotResult",
    "load_model",
    "load_model_and_card",
    "parse_spec",
]
