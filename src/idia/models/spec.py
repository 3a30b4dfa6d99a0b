"""A model spec string split into its parts (its own module: the card reader needs it too)."""

from __future__ import annotations

from idia.models.base import ModelLoadError

SPEC_HELP = (
    "open_clip:ARCH[:PRETRAINED] (e.g. open_clip:ViT-B-32:laion400m_e32, "
    "open_clip:config.json:checkpoint.pt), hf:ID_OR_DIR (e.g. hf:openai/clip-vit-base-patch32), "
    "lit:DIR (a LiT model 'idia lab --faces' trained: a locked face encoder and a trained text "
    "tower) or http(s)://HOST:PORT (a model served by 'idia serve', queried as a closed box)"
)

# A LiT model's folder (``lit:DIR``): its config and weights, the card beside the weights.
LIT_CONFIG = "lit.json"
LIT_CHECKPOINT = "checkpoint.pt"


def parse_spec(spec: str) -> tuple[str, str, str | None]:
    """Split a spec into (backend, model, weights); a URL gives ("remote", URL, None)."""
    backend, sep, rest = spec.partition(":")
    if backend in ("http", "https"):
        if not rest.startswith("//") or not rest[2:].split("/")[0]:
            raise ModelLoadError(f"{spec!r} is not a URL like http://127.0.0.1:8000")
        return "remote", spec, None
    if not sep or not rest:
        raise ModelLoadError(f"model spec {spec!r} is not of the form {SPEC_HELP}")
    if backend == "open_clip":
        if rest.startswith(("hf-hub:", "local-dir:")):
            return backend, rest, None
        arch, _, weights = rest.partition(":")
        return backend, arch, weights or None
    if backend in ("hf", "lit"):
        return backend, rest, None
    raise ModelLoadError(f"unknown model backend {backend!r} in {spec!r}; use {SPEC_HELP}")
