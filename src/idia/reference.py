"""Reference people for the face-association test, prepared once for many checks.

The face test compares a name's response on a person's photos with its response on other
people's photos. Loading, cropping and encoding those other people for every check costs
far more than the check itself; a :class:`ReferenceSet` does it once
(:meth:`idia.engine.IdentityInferenceAttack.reference_set`) and, for a model whose embeddings
are in reach, keeps the image embeddings in memory: never on disk, and only for the
reference people an operator chose (e.g. a lab's synthetic people), never for a visitor.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from idia.faces import Photo, usable
from idia.models.base import ClosedBoxModel, EmbeddedClassifier
from idia.names import NamePool, infer_sex
from idia.people import Person


@dataclass(frozen=True)
class ReferencePerson:
    """One reference person: the name, its sex (from the first name, for matching) and the
    usable prepared photos."""

    name: str
    sex: str | None
    photos: tuple[Photo, ...]


@dataclass
class ReferenceSet:
    """Reference people with their photos prepared as ``crop`` / ``face_margin``; after
    :meth:`encode`, their image embeddings under the model ``identity`` (name -> (P, D))."""

    people: list[ReferencePerson]
    crop: str
    face_margin: float
    identity: str | None = None
    embeddings: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @classmethod
    def build(
        cls,
        people: Sequence[Person],
        prepare: Callable[[Sequence[Path]], list[Photo]],
        crop: str,
        face_margin: float,
        name_pool: NamePool | None = None,
    ) -> ReferenceSet:
        """Prepare every person's photos with ``prepare``; people without a usable photo are
        left out."""
        kept = []
        for person in people:
            good = usable(prepare(person.photos))
            if good:
                kept.append(ReferencePerson(person.name, infer_sex(person.name, name_pool),
                                            tuple(good)))
        return cls(kept, crop, face_margin)

    @property
    def n_photos(self) -> int:
        return sum(len(p.photos) for p in self.people)

    def encode(self, classifier: ClosedBoxModel) -> int:
        """Encode every photo once with ``classifier`` (an :class:`EmbeddedClassifier`) and keep
        the embeddings; returns how many photos were encoded (0 for a model without embeddings
        in reach, e.g. a closed box)."""
        if not isinstance(classifier, EmbeddedClassifier) or not self.people:
            return 0
        vectors = classifier.image_embeddings(
            [photo.image for p in self.people for photo in p.photos]
        )
        start = 0
        self.embeddings = {}
        for person in self.people:
            self.embeddings[person.name] = vectors[start : start + len(person.photos)]
            start += len(person.photos)
        self.identity = classifier.identity
        return len(vectors)

    def encoded_for(self, classifier: ClosedBoxModel) -> bool:
        """Whether the kept embeddings are this classifier's (same model identity) and it can
        answer from them."""
        return (
            bool(self.embeddings)
            and isinstance(classifier, EmbeddedClassifier)
            and classifier.identity == self.identity
        )
