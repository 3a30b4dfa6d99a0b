"""Training a LiT model (:mod:`idia.models.lit`) on image-caption pairs, in this process.

The face encoder is locked, so each photo's descriptor is computed once, before training, and
every epoch reuses it: an epoch costs only the projection and the text tower. The loop is
CLIP's: a symmetric cross-entropy over the batch's image-text similarities times a learned
temperature (clamped at 100), AdamW (no weight decay on biases, norms and the
temperature), linear warm-up then cosine decay. The token embedding (CLIP's 49,408 tokens, most
of the text tower's weights, few of them in any batch) takes sparse gradients and SparseAdam:
half the time of a step on a CPU. Every random choice (initial weights, batch
order) follows ``seed``; with the same threads, the same inputs give the same weights.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from idia.errors import IdiaError
from idia.models.lit import MAX_LOGIT_SCALE, LiTConfig, LiTNetwork, tokenizer_for
from idia.models.openclip import causal_text_tower


class LiTTrainingError(IdiaError, ValueError):
    """The pairs cannot train a LiT model (too few, or descriptors missing)."""


@dataclass(frozen=True)
class LiTSettings:
    """How the LiT model is trained: the architecture, epochs, batch size, learning rate
    (AdamW), warm-up steps, weight decay, seed and CPU threads."""

    architecture: LiTConfig = field(default_factory=LiTConfig)
    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    warmup: int = 50
    wd: float = 0.1
    seed: int = 0
    threads: int = 1


@dataclass(frozen=True)
class LiTTraining:
    """The trained network and what the training did: loss per epoch, steps, seconds."""

    network: LiTNetwork
    losses: tuple[float, ...]
    steps: int
    seconds: float


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """PyTorch's CPU threads set for a block, then restored (a process-wide setting)."""
    saved = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


def _optimizers(network: LiTNetwork, settings: LiTSettings) -> list[torch.optim.Optimizer]:
    """AdamW for the dense weights (decay on matrices only), SparseAdam for the token
    embedding (switched to sparse gradients)."""
    embedding = network.text.token_embedding
    embedding.sparse = True
    decayed, kept = [], []
    for name, parameter in network.named_parameters():
        if parameter is embedding.weight:
            continue
        plain = parameter.ndim < 2 or "embedding" in name or name == "logit_scale"
        (kept if plain else decayed).append(parameter)
    groups = [{"params": decayed, "weight_decay": settings.wd},
              {"params": kept, "weight_decay": 0.0}]
    return [torch.optim.AdamW(groups, lr=settings.lr),
            torch.optim.SparseAdam([embedding.weight], lr=settings.lr)]


def _learning_rate(step: int, total: int, settings: LiTSettings) -> float:
    if step < settings.warmup:
        return settings.lr * (step + 1) / settings.warmup
    progress = (step - settings.warmup) / max(1, total - settings.warmup)
    return 0.5 * settings.lr * (1 + math.cos(math.pi * progress))


def train_lit(
    captions: Sequence[str],
    photo_of_pair: np.ndarray,
    descriptors: np.ndarray,
    settings: LiTSettings,
    log: Callable[[str], None] = print,
) -> LiTTraining:
    """Train on pairs (``captions[i]``, the photo whose descriptor is
    ``descriptors[photo_of_pair[i]]``). ``descriptors``: (photos, 128), one row per distinct
    photo, computed by the locked encoder with the rule the model will use."""
    photo_of_pair = np.asarray(photo_of_pair, dtype=np.int64)
    descriptors = np.asarray(descriptors, dtype=np.float32)
    if len(captions) != len(photo_of_pair):
        raise LiTTrainingError(f"{len(captions)} captions for {len(photo_of_pair)} photos")
    if len(captions) < 2:
        raise LiTTrainingError("a contrastive model needs at least 2 training pairs")
    if not np.isfinite(descriptors[photo_of_pair]).all():
        raise LiTTrainingError("some training photos have no face descriptor")
    start = time.perf_counter()
    config = settings.architecture
    with torch_threads(settings.threads):
        torch.manual_seed(settings.seed)
        network = LiTNetwork(config)
        network.standardize_with(descriptors[np.unique(photo_of_pair)])
        network.train()
        tower = causal_text_tower(network)
        assert tower is not None
        tokens = tokenizer_for(config)(list(captions))
        faces = torch.from_numpy(descriptors)
        pairs = torch.from_numpy(photo_of_pair)
        batch = min(settings.batch_size, len(captions))
        per_epoch = max(1, len(captions) // batch)  # the last partial batch is dropped, as CLIP
        total = per_epoch * settings.epochs
        optimizers = _optimizers(network, settings)
        order_rng = np.random.default_rng([settings.seed, 7])
        losses, step = [], 0
        for epoch in range(settings.epochs):
            order = torch.from_numpy(order_rng.permutation(len(captions)))
            epoch_loss = 0.0
            for index in range(per_epoch):
                rows = order[index * batch : (index + 1) * batch]
                for optimizer in optimizers:
                    for group in optimizer.param_groups:
                        group["lr"] = _learning_rate(step, total, settings)
                image = torch.nn.functional.normalize(
                    network.encode_descriptors(faces[pairs[rows]]), dim=-1)
                text = torch.nn.functional.normalize(tower.encode(tokens[rows]), dim=-1)
                logits = network.logit_scale.exp() * image @ text.T
                labels = torch.arange(len(rows))
                loss = (torch.nn.functional.cross_entropy(logits, labels)
                        + torch.nn.functional.cross_entropy(logits.T, labels)) / 2
                for optimizer in optimizers:
                    optimizer.zero_grad(set_to_none=True)
                loss.backward()
                for optimizer in optimizers:
                    optimizer.step()
                with torch.no_grad():
                    network.logit_scale.clamp_(0, math.log(MAX_LOGIT_SCALE))
                epoch_loss += loss.item()
                step += 1
            losses.append(epoch_loss / per_epoch)
            log(f"      epoch {epoch + 1}/{settings.epochs}: loss {losses[-1]:.3f} "
                f"({time.perf_counter() - start:.0f} s)")
    network.text.token_embedding.sparse = False
    network.eval()
    return LiTTraining(network, tuple(losses), step, time.perf_counter() - start)
