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

from idia.face_descriptors import DESCRIPTOR_DIM, describe_images
from idia.faces import Photo, usable
from idia.lookalikes import sex_by_face, sexes_by_face
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
    _face_means: np.ndarray | None = field(default=None, repr=False)

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

    def face_means(self) -> np.ndarray:
        """(R, 128) each reference person's mean face descriptor (dlib; NaN: no face found),
        computed on first use and kept in memory only. Raises
        :class:`~idia.face_descriptors.FaceEncoderError` without dlib."""
        if self._face_means is None:
            means = np.full((len(self.people), DESCRIPTOR_DIM), np.nan, np.float32)
            for row, person in enumerate(self.people):
                described = describe_images([photo.image for photo in person.photos])
                if described.found.any():
                    means[row] = described.vectors[described.found].mean(axis=0)
            self._face_means = means
        return self._face_means

    def sexes(self) -> list[str | None]:
        """Each reference person's sex: from the first name, else told from the face (the
        nearest people whose first name says it vote; None if that fails too)."""
        named = [person.sex for person in self.people]
        if all(sex is not None for sex in named):
            return named
        by_face = sexes_by_face(self.face_means(), named)
        return [sex if sex is not None else by_face[i] for i, sex in enumerate(named)]

    def sex_of(self, descriptors: np.ndarray) -> str | None:
        """A person's sex told from their face descriptors (P, 128), by the reference people
        whose first name says theirs; None when nobody can vote."""
        named = [person.sex for person in self.people]
        return sex_by_face(descriptors, self.face_means(), named)
