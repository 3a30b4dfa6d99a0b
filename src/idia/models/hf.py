"""Hugging Face transformers backend for CLIP-family models (CLIP, SigLIP, ...).

CLIP's text model is causal and pools at the end token, so prompts are padded only to the
longest in their batch (sorted by length: dynamic padding). SigLIP was trained with every
prompt padded to a fixed length and pools at the last position, so it keeps that padding.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from idia.models.base import ModelLoadError
from idia.models.torch_utils import (
    model_identity,
    numerics,
    precision_tag,
    resolve_device,
    resolve_precision,
    run_batches,
)

FIXED_PADDING_TYPES = ("siglip", "siglip2")


class HFCLIPModel:
    """A transformers CLIP-style model as an :class:`~idia.models.base.EmbeddingModel`;
    ``precision`` as for :class:`~idia.models.openclip.OpenCLIPModel`."""

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer: Any,
        image_processor: Any,
        name: str = "hf:custom",
        device: str | None = None,
        text_batch_size: int = 512,
        image_batch_size: int = 64,
        progress: bool = False,
        precision: str | None = "auto",
    ) -> None:
        self.device = resolve_device(device)
        self.precision = resolve_precision(precision, self.device)
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        self.name = name
        self.text_batch_size = text_batch_size
        self.image_batch_size = image_batch_size
        self.progress = progress
        model_type = getattr(model.config, "model_type", "")
        self.fixed_padding = model_type in FIXED_PADDING_TYPES
        text_config = getattr(model.config, "text_config", None)
        self.max_length = int(getattr(text_config, "max_position_embeddings", 77))
        self.preprocess_id = repr(image_processor.to_dict())
        self.identity = model_identity(
            self.model,
            model.config.to_dict(),
            extra=self.preprocess_id
            + precision_tag(self.device, self.precision)
            + type(tokenizer).__name__,
        )
        scale = getattr(self.model, "logit_scale", None)
        self.logit_scale = float(scale.exp().item()) if scale is not None else 100.0

    @classmethod
    def from_spec(cls, id_or_dir: str, device: str | None = None, **kwargs: Any) -> HFCLIPModel:
        """Load from a Hugging Face hub id (needs network or the local HF cache) or a folder."""
        from transformers import AutoImageProcessor, AutoModel, AutoTokenizer

        local = Path(id_or_dir).expanduser()
        source = str(local) if local.exists() else id_or_dir
        try:
            model = AutoModel.from_pretrained(source)
            tokenizer = AutoTokenizer.from_pretrained(source)
            image_processor = AutoImageProcessor.from_pretrained(source)
        except (OSError, ValueError) as err:
            where = "folder" if local.exists() else "hub id"
            raise ModelLoadError(
                f"could not load the Hugging Face model {id_or_dir!r} ({where}): "
                f"{str(err).splitlines()[0]}. Without network access, run "
                f"`hf download {id_or_dir} --local-dir DIR` on a machine that has it and "
                "use --model hf:DIR."
            ) from err
        if not (hasattr(model, "get_text_features") and hasattr(model, "get_image_features")):
            raise ModelLoadError(
                f"{id_or_dir!r} is a {type(model).__name__}, not a CLIP-style model with "
                "get_text_features/get_image_features"
            )
        return cls(
            model, tokenizer, image_processor, name=f"hf:{id_or_dir}", device=device, **kwargs
        )

    @torch.inference_mode()
    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        def encode(batch: Sequence[Image.Image]) -> torch.Tensor:
            pixels = self.image_processor(images=list(batch), return_tensors="pt")["pixel_values"]
            with numerics(self.device, self.precision):
                features = _features(
                    self.model.get_image_features(pixel_values=pixels.to(self.device))
                )
            return torch.nn.functional.normalize(features.float(), dim=-1)

        return run_batches(images, encode, self.image_batch_size, "images", self.progress)

    @torch.inference_mode()
    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if self.fixed_padding:
            order = np.arange(len(texts))
        else:  # similar lengths together, so dynamic padding stays short
            lengths = [
                len(ids)
                for ids in self.tokenizer(texts, truncation=True, max_length=self.max_length)[
                    "input_ids"
                ]
            ]
            order = np.argsort(lengths, kind="stable")
        ordered = [texts[i] for i in order]

        def encode(batch: Sequence[str]) -> torch.Tensor:
            padding: dict[str, Any] = (
                {"padding": "max_length", "max_length": self.max_length}
                if self.fixed_padding
                else {"padding": True, "max_length": self.max_length}
            )
            inputs = self.tokenizer(list(batch), truncation=True, return_tensors="pt", **padding)
            inputs = {
                k: v.to(self.device)
                for k, v in inputs.items()
                if k in ("input_ids", "attention_mask")
            }
            if self.fixed_padding:
                inputs.pop("attention_mask", None)  # SigLIP was trained without one
            with numerics(self.device, self.precision):
                features = _features(self.model.get_text_features(**inputs))
            return torch.nn.functional.normalize(features.float(), dim=-1)

        encoded = run_batches(ordered, encode, self.text_batch_size, "prompts", self.progress)
        out = np.empty_like(encoded)
        out[order] = encoded
        return out


def _features(output: Any) -> torch.Tensor:
    """transformers 4 returns the projected features, 5 an output object holding them."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output
