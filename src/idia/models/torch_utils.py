"""Torch plumbing shared by the in-process backends: device, precision, identity, batching."""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch

from idia.progress import progress as stage_progress


def resolve_device(device: str | None) -> torch.device:
    """``auto`` (or None) picks CUDA when present, else CPU."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """Half precision on CUDA (bf16 where supported), full precision on CPU."""
    if device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    return contextlib.nullcontext()


def precision_tag(device: torch.device) -> str:
    """Which numerics produced an embedding; part of the cache key."""
    if device.type == "cuda":
        return "cuda-bf16" if torch.cuda.is_bf16_supported() else "cuda-fp16"
    return f"{device.type}-fp32"


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
