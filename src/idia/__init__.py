"""idia: Identity Inference Attacks on CLIP-style models ("Does CLIP Know My Face?")."""

__version__ = "0.1.0"
