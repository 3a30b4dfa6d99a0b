"""idia: Identity Inference Attacks on CLIP-style models ("Does CLIP Know My Face?")."""

from idia.engine import CheckResult, IdentityInferenceAttack, create_attack
from idia.models import load_model, load_model_and_card
from idia.version import __version__

__all__ = [
    "CheckResult",
    "IdentityInferenceAttack",
    "create_attack",
    "load_model",
    "load_model_and_card",
    "__version__",
]
