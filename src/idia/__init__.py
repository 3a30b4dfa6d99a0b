"""idia: Identity Inference Attacks on CLIP-style models ("Does CLIP Know My Face?")."""

__version__ = "0.1.0"

from idia.engine import CheckResult, IdentityInferenceAttack, create_attack  # noqa: E402
from idia.models import load_model, load_model_and_card  # noqa: E402

__all__ = [
    "CheckResult",
    "IdentityInferenceAttack",
    "create_attack",
    "load_model",
    "load_model_and_card",
    "__version__",
]
