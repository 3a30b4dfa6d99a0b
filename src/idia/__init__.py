"""idia: Identity Inference Attacks on CLIP-style models ("Does CLIP Know My Face?")."""

__version__ = "0.1.0"

from idia.engine import CheckResult, IdentityInferenceAttack  # noqa: E402
from idia.models import load_model  # noqa: E402

__all__ = ["CheckResult", "IdentityInferenceAttack", "load_model", "__version__"]
