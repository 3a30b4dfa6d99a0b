"""Torch plumbing shared by the in-process backends: device, precision, identity, batching."""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch

from idia.models.base import PRECISIONS, PrecisionError
from idia.progress import progress as stage_progress


def resolve_device(device: str | None) -> torch.device:
    """``auto`` (or None) picks CUDA when present, else CPU."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


_HALF_TYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_precision(precision: str | None, device: torch.device) -> str:
    """``fp32``, ``bf16`` or ``fp16`` for ``device``.

    ``auto`` (or None) is fp32 on CPU and the fast half type on CUDA (bf16 where supported,
    else fp16). A half type on CPU is allowed: slower there on most CPUs, but it previews the
    GPU's numerics on any machine.
    """
    precision = precision or "auto"
    if precision not in PRECISIONS:
        raise PrecisionError(
            f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}"
        )
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "fp32"


@contextlib.contextmanager
def numerics(device: torch.device, precision: str) -> Iterator[None]:
    """Run the encoders in ``precision`` (resolved): autocast for a half type; for fp32 on
    CUDA, TF32 is switched off (matmuls and cuDNN convolutions) so fp32 means fp32."""
    if precision in _HALF_TYPES:
        with torch.autocast(device.type, dtype=_HALF_TYPES[precision]):
            yield
        return
    if device.type != "cuda":
        yield
        return
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def precision_tag(device: torch.device, precision: str) -> str:
    """Which numerics produce an embedding (``cpu-fp32``, ``cuda-bf16``, ...); part of the
    model identity, hence of the cache key."""
    return f"{device.type}-{precision}"


def model_identity(module: torch.nn.Module, config: Any, extra: str = "") -> str:
    """A digest of architecture, every weight and ``extra`` (preprocessing, precision)."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(json.dumps(config, sort_keys=True, default=str).encode())
    digest.update(extra.encode())
    for key, tensor in sorted(module.state_dict().items()):
        digest.update(key.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        data = tensor.detach().cpu().contiguous()
        if data.dtype == torch.bfloat16:
            data = data.view(torch.int16)
        digest.update(data.numpy().tobytes())
    return digest.hexdigest()


def batched(n: int, batch_size: int) -> Iterator[slice]:
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


def run_batches(
    items: Sequence[Any],
    encode: Callable[[Sequence[Any]], torch.Tensor],
    batch_size: int,
    desc: str,
    progress: bool,
) -> np.ndarray:
    """Encode ``items`` in batches, with a progress bar, into one float32 array."""
    outputs = []
    with stage_progress(len(items), f"encoding {desc}", enabled=progress, leave=False) as bar:
        for part in batched(len(items), batch_size):
            outputs.append(encode(items[part]).float().cpu().numpy())
            bar.update(part.stop - part.start)
    if not outputs:
        return np.zeros((0, 0), dtype=np.float32)
    return np.concatenate(outputs).astype(np.float32)
