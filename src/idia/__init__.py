"""idia: Identity Inference Attacks on CLIP-style models ("Does CLIP Know My Face?")."""

from idia.engine import CheckResult, IdentityInferenceAttack
from idia.models import load_model
from idia.version import __version__

__all__ = ["CheckResult", "IdentityInferenceAttack", "load_model", "__version__"]
