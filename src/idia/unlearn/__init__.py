"""Erasure: make a CLIP model forget people, the way "Defending Our Privacy With Backdoors"
(Hintersdorf et al., ECAI 2024) does it; :mod:`idia.lab.defence` verifies it with the attack."""

from idia.unlearn.method import UnlearnError, UnlearnResult, UnlearnSettings, unlearn
from idia.unlearn.variants import HELD_OUT_KINDS, TRIGGER_KINDS, NameVariant, name_variants

__all__ = [
    "HELD_OUT_KINDS",
    "TRIGGER_KINDS",
    "NameVariant",
    "UnlearnError",
    "UnlearnResult",
    "UnlearnSettings",
    "name_variants",
    "unlearn",
]
