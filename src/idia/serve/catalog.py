"""The models an operator offers: ``[NAME=]SPEC`` entries, the names shown for them (never a
filesystem path), and the models ``idia lab`` / ``idia train`` left on disk.

Visitors of ``idia web`` and clients of ``idia serve`` see names only; the specs, with their
paths and URLs, stay on the server.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from idia.models import parse_spec
from idia.models.card import checkpoint_of_spec, find_card
from idia.models.spec import LIT_CHECKPOINT, LIT_CONFIG

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".safetensors", ".bin")
_SKIP_DIRS = {".git", ".venv", "venv", "node_modules", "__pycache__", ".cache"}
_MAX_DIRS_SCANNED = 5_000


def split_entry(entry: str) -> tuple[str | None, str]:
    """``"NAME=SPEC"`` or ``"SPEC"`` -> (NAME or None, SPEC). A name has no ``:`` and no ``/``
    (every spec has a ``:`` before any ``=``, so a spec alone is never taken for a name)."""
    name, sep, spec = entry.partition("=")
    if sep and name.strip() and not any(c in name for c in ":/\\"):
        return name.strip(), spec.strip()
    return None, entry.strip()


def read_models_file(path: Path) -> list[str]:
    """One ``[NAME=]SPEC`` a line; blank lines and ``#`` comments are skipped."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def _looks_like_path(text: str) -> bool:
    return any(c in text for c in "/\\") or text.endswith(CHECKPOINT_SUFFIXES)


def model_label(spec: str) -> str:
    """The name a model is offered under (its label; a person's name for display is
    :func:`idia.names.display_name`'s): what the model is and nothing of the server's disk,
    the name on its model card, else the architecture and the checkpoint's file stem, a
    pretrained tag, a hub id, or an API's host."""
    card, _ = find_card(spec)
    if card is not None:
        return card.name
    backend, model, weights = parse_spec(spec)
    if backend == "remote":
        parts = urlsplit(model)
        host = parts.hostname or "?"
        return f"API at {host}" + (f":{parts.port}" if parts.port else "")
    if backend == "hf":
        local = model.startswith(("/", ".", "~")) or Path(model).exists()
        return f"hf {Path(model).name if local else model}"  # a hub id, or never a path
    if backend == "lit":
        return f"LiT ({Path(model).name})"
    if model.startswith("local-dir:"):
        return Path(model.removeprefix("local-dir:")).name
    if model.startswith("hf-hub:"):
        return model
    arch = Path(model).stem if model.endswith(".json") else Path(model).name
    if weights is None:
        return arch
    return f"{arch} ({Path(weights).stem if _looks_like_path(weights) else weights})"


def is_remote(spec: object) -> bool:
    """Whether an offered model is a spec of a model behind an API (``http(s)://...``): with
    it, visitors' face crops leave this server. A model object (from Python) is not."""
    return isinstance(spec, str) and parse_spec(spec)[0] == "remote"


def offered_models(entries: Sequence[str]) -> dict[str, str]:
    """Display name -> spec for the operator's entries, in order: a spec listed twice is
    offered once, and names are made unique (``NAME #2``). A malformed spec raises
    :class:`~idia.models.ModelLoadError`."""
    offered: dict[str, str] = {}
    for entry in entries:
        name, spec = split_entry(entry)
        parse_spec(spec)  # a malformed spec fails here, at start-up
        if spec in offered.values():
            continue
        base = name or model_label(spec)
        label, n = base, 1
        while label in offered:
            n += 1
            label = f"{base} #{n}"
        offered[label] = spec
    return offered


def find_local_models(roots: Sequence[Path], max_depth: int = 4) -> list[str]:
    """open_clip specs for model-config JSONs with a checkpoint beside them (or in a
    ``checkpoints/`` folder beside them), as ``idia lab`` and ``idia train`` write them, and
    ``lit:DIR`` specs for LiT folders (``idia lab --faces``): models with a card first,
    then the others, newest checkpoint first. A checkpoint that a card says its model was
    copied from (``idia lab``'s training run) is left out. The search is bounded in depth and
    folders visited."""
    found: dict[str, float] = {}
    carded: set[str] = set()
    copies: set[Path] = set()
    visited = 0
    for root in roots:
        root = Path(root)
        if not root.is_dir():
            continue
        base_depth = len(root.resolve().parts)
        for folder, dirs, files in os.walk(root.resolve()):
            visited += 1
            if visited > _MAX_DIRS_SCANNED:
                break
            depth = len(Path(folder).parts) - base_depth
            dirs[:] = (
                []
                if depth >= max_depth
                else sorted(d for d in dirs if d not in _SKIP_DIRS and not d.startswith("."))
            )
            for name in files:
                if name == LIT_CONFIG and (Path(folder) / LIT_CHECKPOINT).is_file():
                    spec = f"lit:{folder}"
                    found[spec] = (Path(folder) / LIT_CHECKPOINT).stat().st_mtime
                    if find_card(spec)[0] is not None:
                        carded.add(spec)
                elif name.endswith(".json") and _is_model_config(Path(folder) / name):
                    checkpoint = _newest_checkpoint(Path(folder))
                    if checkpoint is not None:
                        spec = f"open_clip:{Path(folder) / name}:{checkpoint}"
                        found[spec] = checkpoint.stat().st_mtime
                        card, _ = find_card(spec)
                        if card is not None:
                            carded.add(spec)
                            source = card.checkpoint.get("copied_from")
                            if isinstance(source, str):
                                copies.add((checkpoint.parent / source).resolve())
    kept = [spec for spec in found if checkpoint_of_spec(spec) not in copies]
    return sorted(kept, key=lambda spec: (spec in carded, found[spec]), reverse=True)


def _is_model_config(path: Path) -> bool:
    try:
        if path.stat().st_size > 100_000:
            return False
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and {"embed_dim", "vision_cfg", "text_cfg"} <= data.keys()


def _newest_checkpoint(folder: Path) -> Path | None:
    candidates = [
        p
        for where in (folder, folder / "checkpoints")
        if where.is_dir()
        for p in where.iterdir()
        if p.is_file() and p.suffix in CHECKPOINT_SUFFIXES
    ]
    return max(candidates, key=lambda p: p.stat().st_mtime, default=None)
