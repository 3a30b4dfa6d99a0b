"""open_clip backend, with a text-encoding fast path.

CLIP's text tower attends causally and pools at the end-of-text token, so the hidden state
there depends only on the tokens before it. Encoding a batch truncated to its longest real
token length (instead of padding every prompt to 77 tokens) therefore gives the same
embedding for a fraction of the compute. Prompts are sorted by length so that batches are
short. Towers where this does not hold (bidirectional attention, a class token, pooling at a
fixed position) take the ordinary padded path.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from idia.models.base import ModelLoadError
from idia.models.tokens import remembering
from idia.models.torch_utils import (
    model_identity,
    numerics,
    precision_tag,
    resolve_device,
    resolve_precision,
    run_batches,
)

log = logging.getLogger(__name__)

RANDOM_INIT = ("random", "none")


class OpenCLIPModel:
    """An open_clip model as an :class:`~idia.models.base.EmbeddingModel`.

    Wrap a model you built yourself with ``OpenCLIPModel(model, preprocess, tokenizer)``, or
    load one from a spec with :meth:`from_spec`. ``precision``: ``auto`` (fp32 on CPU, bf16 or
    fp16 autocast on CUDA), ``fp32`` (the paper's numerics), ``bf16`` or ``fp16``.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        preprocess: Any,
        tokenizer: Any,
        name: str = "open_clip:custom",
        device: str | None = None,
        text_batch_size: int = 1024,
        image_batch_size: int = 64,
        fast_text: bool = True,
        progress: bool = False,
        precision: str | None = "auto",
        config: Any = None,
    ) -> None:
        self.device = resolve_device(device)
        self.precision = resolve_precision(precision, self.device)
        self.model = model.to(self.device).eval()
        self.preprocess = preprocess
        self.tokenizer = tokenizer
        self._tokenize = remembering(tokenizer)
        self.name = name
        self.text_batch_size = text_batch_size
        self.image_batch_size = image_batch_size
        self.progress = progress
        self._tower = causal_text_tower(self.model) if fast_text else None
        self.preprocess_id = repr(preprocess)
        self.identity = model_identity(
            self.model,
            config if config is not None else type(self.model).__name__,
            extra=self.preprocess_id
            + precision_tag(self.device, self.precision)
            + repr(_tokenizer_id(tokenizer)),
        )
        scale = getattr(self.model, "logit_scale", None)
        self.logit_scale = float(scale.exp().item()) if scale is not None else 100.0

    @property
    def fast_text(self) -> bool:
        """Whether texts are encoded at their real token length (see module docstring)."""
        return self._tower is not None

    @classmethod
    def from_spec(
        cls, arch: str, pretrained: str | None, device: str | None = None, **kwargs: Any
    ) -> OpenCLIPModel:
        """``arch``: an open_clip model name or a model-config JSON file; ``pretrained``: an
        open_clip pretrained tag, a checkpoint file (open_clip_train's too), or ``random``."""
        import open_clip

        model_name, config = _register_arch(arch)
        pretrained_arg = None if pretrained in (None, "", *RANDOM_INIT) else pretrained
        if pretrained_arg is None:
            log.warning("%s: random initialisation; results mean nothing about any person", arch)
        elif not Path(pretrained_arg).expanduser().exists():
            known = open_clip.list_pretrained_tags_by_model(model_name)
            if pretrained_arg not in known:
                hint = f" Known tags: {', '.join(known)}." if known else ""
                raise ModelLoadError(
                    f"'{pretrained_arg}' is neither a checkpoint file nor an open_clip "
                    f"pretrained tag for {model_name}.{hint}"
                )
        else:
            pretrained_arg = str(Path(pretrained_arg).expanduser())
        device_obj = resolve_device(device)
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(
                model_name,
                pretrained=pretrained_arg,
                device=device_obj,
                weights_only=True,
            )
        except Exception as err:  # open_clip raises bare RuntimeErrors for every failure
            raise ModelLoadError(_load_failure_message(model_name, pretrained_arg, err)) from err
        text_config = config.get("text_cfg") if isinstance(config, dict) else config
        tokenizer = _shared_tokenizer(model_name,
                                      json.dumps(text_config, sort_keys=True, default=str))
        spec = f"open_clip:{arch}:{pretrained or 'random'}"
        return cls(
            model, preprocess, tokenizer, name=spec, device=str(device_obj), config=config, **kwargs
        )

    @torch.inference_mode()
    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        def encode(batch: Sequence[Image.Image]) -> torch.Tensor:
            pixels = torch.stack([self.preprocess(img) for img in batch]).to(self.device)
            with numerics(self.device, self.precision):
                features = self.model.encode_image(pixels)
            return torch.nn.functional.normalize(features.float(), dim=-1)

        return run_batches(images, encode, self.image_batch_size, "images", self.progress)

    @torch.inference_mode()
    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        tokens = self._tokenize(texts)
        if self._tower is None:
            order = np.arange(len(texts))
        else:  # short prompts together, so each batch is cut to a short length
            order = np.argsort(self._tower.lengths(tokens).numpy(), kind="stable")
        sorted_tokens = tokens[torch.from_numpy(order)]

        def encode(batch: torch.Tensor) -> torch.Tensor:
            batch = batch.to(self.device)
            with numerics(self.device, self.precision):
                if self._tower is not None:
                    features = self._tower.encode(batch)
                else:
                    features = self.model.encode_text(batch)
            return torch.nn.functional.normalize(features.float(), dim=-1)

        encoded = run_batches(sorted_tokens, encode, self.text_batch_size, "prompts", self.progress)
        out = np.empty_like(encoded)
        out[order] = encoded
        return out


class CausalTextTower:
    """The pieces of a causal, end-token-pooled text tower, run at the batch's real length: the
    same pooled embeddings as the padded tower (tests check within 1e-5), a fraction of the
    compute for short prompts. Gradients flow through :meth:`encode`, so erasure
    (:mod:`idia.unlearn`) trains through it too."""

    def __init__(self, owner: torch.nn.Module, pad_id: int, eos_id: int | None) -> None:
        self.owner = owner
        self.pad_id = pad_id
        self.eos_id = eos_id

    def lengths(self, tokens: torch.Tensor) -> torch.Tensor:
        """Real length of each tokenized prompt: up to and including its last non-pad token."""
        positions = torch.arange(tokens.shape[1]).expand_as(tokens)
        return torch.where(tokens != self.pad_id, positions + 1, 0).amax(dim=1)

    def encode(self, tokens: torch.Tensor) -> torch.Tensor:
        from open_clip.transformer import text_global_pool

        tower = self.owner
        length = int(self.lengths(tokens).max())
        tokens = tokens[:, :length]
        cast_dtype = tower.transformer.get_cast_dtype()
        x = tower.token_embedding(tokens).to(cast_dtype)
        x = x + tower.positional_embedding[:length].to(cast_dtype)
        x = tower.transformer(x, attn_mask=tower.attn_mask[:length, :length])
        x = tower.ln_final(x)
        pool_type = getattr(tower, "text_pool_type", None) or tower.pool_type
        x = text_global_pool(x, tokens, pool_type, eos_token_id=self.eos_id)
        projection = tower.text_projection
        if projection is None:
            return x
        return projection(x) if isinstance(projection, torch.nn.Linear) else x @ projection


def causal_text_tower(model: torch.nn.Module) -> CausalTextTower | None:
    """The fast-path tower of an open_clip model whose text encoder is causal and pools at the
    end-of-text token; None for any other tower (a class token, a pad mask, mean or first-token
    pooling), which must run padded."""
    from open_clip.model import CLIP
    from open_clip.transformer import TextTransformer

    if isinstance(model, CLIP):
        tower, pad_id, eos_id = model, 0, getattr(model, "text_eos_id", None)
        pool_type = model.text_pool_type
    elif isinstance(getattr(model, "text", None), TextTransformer):
        tower = model.text
        if tower.cls_emb is not None or tower.use_pad_mask:
            return None
        pad_id, eos_id, pool_type = tower.pad_id, tower.eos_id, tower.pool_type
    else:
        return None
    if getattr(tower, "attn_mask", None) is None or pool_type not in ("argmax", "eos"):
        return None
    return CausalTextTower(tower, pad_id, eos_id)


def _tokenizer_id(tokenizer: Any) -> tuple[str, int | None]:
    return type(tokenizer).__name__, getattr(tokenizer, "context_length", None)


@lru_cache(maxsize=16)
def _shared_tokenizer(model_name: str, text_config: str) -> Any:
    """One tokenizer object per model name and text config in a process, so that the models
    of one family share their remembered token ids (:mod:`idia.models.tokens`)."""
    import open_clip

    return open_clip.get_tokenizer(model_name)


def _register_arch(arch: str) -> tuple[str, Any]:
    """Model name for open_clip; a config JSON file is registered under its file stem."""
    import open_clip

    path = Path(arch).expanduser()
    if path.suffix == ".json":
        if not path.is_file():
            raise ModelLoadError(f"model config file not found: {path}")
        try:
            config = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ModelLoadError(f"model config {path} is not valid JSON: {err}") from err
        if "vision_cfg" not in config or "text_cfg" not in config:
            raise ModelLoadError(
                f"model config {path} is not an open_clip config (needs embed_dim, "
                "vision_cfg, text_cfg)"
            )
        open_clip.add_model_config(path)
        return path.stem, config
    if arch.startswith(("hf-hub:", "local-dir:")):
        return arch, arch
    if arch not in open_clip.list_models():
        raise ModelLoadError(
            f"unknown open_clip architecture {arch!r}: use a name from open_clip.list_models() "
            "(e.g. ViT-B-32) or a path to a model-config JSON"
        )
    return arch, open_clip.get_model_config(arch)


def _load_failure_message(model_name: str, pretrained: str | None, err: Exception) -> str:
    text = str(err)
    if pretrained and not Path(pretrained).exists():
        return (
            f"could not fetch the weights '{pretrained}' for {model_name} "
            f"({text.splitlines()[0]}). "
            "Without network access, download the checkpoint on a machine that has it (open_clip "
            "stores it in ~/.cache/huggingface) and point at the file: "
            f"--model open_clip:{model_name}:/path/to/open_clip_pytorch_model.bin"
        )
    return (
        f"could not load {model_name} with weights {pretrained or 'random'}: {text}. "
        "A checkpoint must match the architecture (for open_clip_train checkpoints, pass the "
        "same model config JSON used for training)."
    )
