"""Lookalike references: the reference people whose faces are nearest to the person's.

The face test asks whether a model responds to a name more on the person's face than on
other faces. Other faces chosen at random differ in sex, age and ethnicity, which a real CLIP
ties to names, so a name that merely *sounds* like its owner's group would pass as "linked".
Comparing the person with the people who look most like them (nearest in a face-recognition
encoder's space) matches those cues without labels.

The rule: Euclidean distance between the person's mean descriptor and each reference
person's mean descriptor; the ``k`` nearest, never the same identity: a reference person with
the same name (compared as :func:`idia.names.normalize_name` does) or nearer than
``duplicate_distance`` (the person themselves, photographed for the reference set) is left
out. Pure NumPy; ties go to the earlier reference person, so the choice is deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from idia.names import normalize_name

DEFAULT_LOOKALIKES = 1000
"""Reference people per test: the smallest possible p-value is 1 / 1001 < 0.001."""
DUPLICATE_DISTANCE = 0.50
"""Mean-descriptor distance below which two identities count as the same person (measured on
LFW; see docs/faces.md)."""
SEX_NEIGHBOURS = 15
"""Labelled people who vote on a face's sex in :func:`sex_by_face`."""


@dataclass(frozen=True)
class Lookalikes:
    """The chosen reference people, nearest first.

    ``indices`` (K,) into the reference people and their ``distances`` (K,); ``duplicates``:
    the reference people left out as the same identity; ``n_candidates``: how many were
    eligible before choosing; ``rule``: the matching rule as a sentence for the output.
    """

    indices: np.ndarray
    distances: np.ndarray
    duplicates: np.ndarray
    n_candidates: int
    rule: str

    @property
    def p_floor(self) -> float:
        """The smallest p-value a rank test against these people can give."""
        return 1.0 / (1 + len(self.indices))


def mean_descriptor(descriptors: np.ndarray) -> np.ndarray:
    """(128,) mean of a person's descriptors (P, 128), rows of NaN (no face) ignored."""
    descriptors = np.asarray(descriptors, np.float64)
    usable = descriptors[~np.isnan(descriptors).any(axis=1)] if descriptors.ndim == 2 else None
    if usable is None or not len(usable):
        raise ValueError("no face descriptor for this person: none of their photos has a face")
    return usable.mean(axis=0)


def choose_lookalikes(
    person: np.ndarray,
    reference_means: np.ndarray,
    reference_names: Sequence[str],
    name: str | None = None,
    k: int = DEFAULT_LOOKALIKES,
    duplicate_distance: float = DUPLICATE_DISTANCE,
    eligible: np.ndarray | None = None,
) -> Lookalikes:
    """The ``k`` reference people who look most like ``person`` (their descriptors (P, 128)).

    ``reference_means`` (R, 128): each reference person's mean descriptor (NaN rows: no
    face, never chosen); ``name``: the person's name (references with the same name are left
    out); ``eligible`` (R,) bool: which references may be chosen at all (e.g. enough photos).
    Fewer than ``k`` come back when fewer are eligible; the rule sentence gives the count.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    means = np.asarray(reference_means, np.float64)
    if means.ndim != 2 or len(means) != len(reference_names):
        raise ValueError(f"got {len(means)} reference descriptors for "
                         f"{len(reference_names)} reference names")
    centre = mean_descriptor(person)
    with np.errstate(invalid="ignore"):
        distances = np.linalg.norm(means - centre, axis=1)
    has_face = ~np.isnan(distances)
    allowed = has_face if eligible is None else has_face & np.asarray(eligible, bool)
    key = normalize_name(name) if name else None
    same_name = np.array([key is not None and normalize_name(n) == key for n in reference_names],
                         dtype=bool)
    duplicate = allowed & (same_name | (np.nan_to_num(distances, nan=np.inf) < duplicate_distance))
    candidates = np.flatnonzero(allowed & ~duplicate)
    chosen = candidates[np.argsort(distances[candidates], kind="stable")[:k]]
    rule = (
        f"the {len(chosen):,} reference people whose mean face descriptor (dlib's ResNet) is "
        f"nearest to this person's (Euclidean distance "
        + (f"{distances[chosen[0]]:.2f} to {distances[chosen[-1]]:.2f}" if len(chosen) else "-")
        + f"), out of {len(candidates):,} eligible; {int(duplicate.sum())} left out as the same "
        f"person (same name, or nearer than {duplicate_distance:.2f})"
    )
    return Lookalikes(
        indices=chosen,
        distances=distances[chosen],
        duplicates=np.flatnonzero(duplicate),
        n_candidates=len(candidates),
        rule=rule,
    )


def sex_by_face(
    person: np.ndarray,
    labelled_means: np.ndarray,
    labelled_sexes: Sequence[str | None],
    k: int = SEX_NEIGHBOURS,
    duplicate_distance: float = DUPLICATE_DISTANCE,
) -> str | None:
    """The sex (``"f"``/``"m"``) most of the ``k`` nearest labelled people have (e.g. LFW's
    people whose first name the name lists know); None when nobody is labelled.

    Matches references on sex when the person's name says nothing (a first name outside the
    lists) and labels reference people whose names say nothing. Labelled people nearer than
    ``duplicate_distance`` (the person themselves) do not vote; a tie goes to ``"f"``, the
    smaller group in LFW.
    """
    centre = mean_descriptor(person)
    sexes = np.array([s if s in ("f", "m") else "" for s in labelled_sexes], dtype=object)
    with np.errstate(invalid="ignore"):
        distances = np.linalg.norm(np.asarray(labelled_means, np.float64) - centre, axis=1)
    voters = np.flatnonzero((sexes != "") & (np.nan_to_num(distances, nan=-1.0)
                                             >= duplicate_distance))
    if not len(voters):
        return None
    nearest = voters[np.argsort(distances[voters], kind="stable")[:k]]
    women = int((sexes[nearest] == "f").sum())
    return "f" if 2 * women >= len(nearest) else "m"


def sexes_by_face(
    means: np.ndarray,
    labelled_sexes: Sequence[str | None],
    k: int = SEX_NEIGHBOURS,
    duplicate_distance: float = DUPLICATE_DISTANCE,
    chunk: int = 512,
) -> np.ndarray:
    """:func:`sex_by_face` of every row of ``means`` (R, 128) at once, against the labelled
    rows among them (a person's own label does not vote: it is nearer than
    ``duplicate_distance``): (R,) object array of ``"f"``, ``"m"`` or None (no face, or
    nobody labelled)."""
    means = np.asarray(means, np.float64)
    sexes = np.array([s if s in ("f", "m") else "" for s in labelled_sexes], dtype=object)
    has_face = ~np.isnan(means).any(axis=1)
    voters = np.flatnonzero((sexes != "") & has_face)
    out = np.full(len(means), None, dtype=object)
    if not len(voters):
        return out
    single = means.astype(np.float32)  # ample for choosing neighbours, and 2-3x faster
    voter_means, is_woman = single[voters], sexes[voters] == "f"
    voter_norms = (voter_means**2).sum(axis=1)
    rows = np.flatnonzero(has_face)
    for start in range(0, len(rows), chunk):
        block = rows[start : start + chunk]
        squared = (single[block] ** 2).sum(axis=1)[:, None] + voter_norms - 2 * single[
            block] @ voter_means.T
        distances = np.maximum(squared, 0.0)  # squared: the same order, no square roots
        distances[distances < duplicate_distance**2] = np.inf  # the person themselves
        votes = min(k, distances.shape[1])  # only who the k nearest are matters, not their order
        nearest = np.argpartition(distances, votes - 1, axis=1)[:, :votes]
        counted = np.isfinite(np.take_along_axis(distances, nearest, axis=1))
        n_votes, women = counted.sum(axis=1), (is_woman[nearest] & counted).sum(axis=1)
        out[block] = np.where(n_votes == 0, None, np.where(2 * women >= n_votes, "f", "m"))
    return out


def lookalike_mask(
    means: np.ndarray,
    names: Sequence[str],
    sexes: Sequence[str | None],
    k: int = DEFAULT_LOOKALIKES,
    duplicate_distance: float = DUPLICATE_DISTANCE,
    has_photos: np.ndarray | None = None,
) -> np.ndarray:
    """(N, N): whether person j is one of person i's ``k`` lookalikes among the same people
    (an audit's, a lab's): of i's sex, never i (nor anyone nearer than
    ``duplicate_distance`` or of the same name), with photos. The lookalike counterpart of
    :func:`idia.claims.reference_mask`, for :func:`idia.claims.face_tests`; ``means`` (N, D)
    may be face descriptors or any vectors that place people by how they look (a lab's drawn
    traits: then ``duplicate_distance=0``). A person of unknown sex gets no reference."""
    means = np.asarray(means, np.float64)
    sex = np.array([s if s in ("f", "m") else "" for s in sexes], dtype=object)
    has_photos = np.ones(len(means), bool) if has_photos is None else np.asarray(has_photos, bool)
    mask = np.zeros((len(means), len(means)), bool)
    for i in np.flatnonzero(has_photos & (sex != "") & ~np.isnan(means).any(axis=1)):
        eligible = has_photos & (sex == sex[i])
        eligible[i] = False
        chosen = choose_lookalikes(means[i : i + 1], means, names, name=names[i], k=k,
                                   duplicate_distance=duplicate_distance, eligible=eligible)
        mask[i, chosen.indices] = True
    return mask
