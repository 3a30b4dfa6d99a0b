"""The face test's public reference: the people of Labeled Faces in the Wild who look most like
the person, so that every check has other faces to compare with.

The face test asks whether the model responds to the name more on the person's face than on
other faces. Against the public reference (:class:`PublicReference`) those other faces are
the ``k`` reference people nearest to the person in dlib's face-descriptor space
(:func:`idia.lookalikes.choose_lookalikes`), of the person's sex, never the same identity:
sex, age and ethnicity are matched without labels, and k = 1,000 keeps the smallest p-value
at 1/1001. The null (docs/evaluation.md): *the model responds to this name no more on this
face than on the faces of lookalike reference people*, with the person's photos and each
reference person's exchangeable under it.

Sexes: a reference person's sex is told from the face (:func:`idia.lookalikes.sexes_by_face`:
the 15 nearest LFW people whose first name the name lists know vote); the person's is given,
else their first name's, else told from their face the same way: never "everyone".

Photos: the person and every reference person contribute the same number of photos,
m = min(P, m*), where P is the person's usable photos and m* the largest count that k
eligible reference people reach (docs/faces.md, "Reference people with fewer photos than the
person": on LFW, 2 for men and 1 for women); the m photos are drawn with the attack's seed and
the person's name, so a reference person shows the same photos in every check.

The model's embeddings of the reference photos are public data: :class:`ReferenceEmbeddings`
keeps them in memory and, when the attack has a disk cache, in it (kind
:data:`~idia.cache.REFERENCE_IMAGE_KIND`, keyed by the set, the photo and how it was
prepared). The person's own photos are described by dlib in memory only and never stored.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from idia.cache import REFERENCE_IMAGE_KIND, EmbeddingCache
from idia.face_descriptors import LFW_FUNNELED_BOX
from idia.faces import Photo
from idia.lfw import SPEC, LFWReference, load_lfw
from idia.lookalikes import (
    DEFAULT_LOOKALIKES,
    DUPLICATE_DISTANCE,
    choose_lookalikes,
    sex_by_face,
    sexes_by_face,
)
from idia.names import NamePool, infer_sex, normalize_name
from idia.people import name_key
from idia.progress import progress as progress_display
from idia.reference_faces import ReferenceFaces, reference_faces

DEFAULT_REFERENCE = SPEC
"""The public reference every check has: LFW, fetched once through scikit-learn."""
NO_REFERENCE = "none"
"""The reference spec that runs no face test."""
AUDITED_REFERENCE = "audited"
"""An audit's face reference by default: the other audited people of the same sex."""
SEX_WORDS = {"f": "women", "m": "men"}


@dataclass(frozen=True)
class UnavailableReference:
    """A reference that cannot be used now (e.g. LFW absent and not fetched): the face test
    is reported as not tested with ``reason``, which says how to fix it."""

    reason: str


@dataclass(frozen=True)
class ReferencePlan:
    """Whom one person is compared with, and how.

    ``sex`` and ``sex_source`` ("given", "first name" or "face"); ``n_photos``: m, the photos
    each side; ``own_photos``: which of the person's usable photos (indices); ``people``:
    eligible reference people nearest first (the first ``k`` with usable photos are used, the
    rest are spares); ``photos``: each one's m photos; ``distances``, ``n_eligible``,
    ``n_duplicates``: for the matching rule.
    """

    sex: str
    sex_source: str
    n_photos: int
    own_photos: np.ndarray
    people: np.ndarray
    photos: tuple[tuple[Path, ...], ...]
    distances: np.ndarray
    n_eligible: int
    n_duplicates: int
    k: int
    seed: int

    def rule(self, used: Sequence[int]) -> str:
        """The matching rule as a sentence, for the reference people ``used`` (positions in
        :attr:`people`)."""
        used = list(used)
        spread = (f"{self.distances[used[0]]:.2f} to {self.distances[used[-1]]:.2f}"
                  if used else "-")
        each = f"{self.n_photos} photo{'s' if self.n_photos > 1 else ''}"
        return (
            f"the {len(used):,} reference people nearest to this person by mean face "
            f"descriptor (dlib's ResNet; Euclidean distance {spread}) among the "
            f"{self.n_eligible:,} {SEX_WORDS[self.sex]} (this person's sex from the "
            f"{self.sex_source}; theirs from the face) with at least {each}; "
            f"{self.n_duplicates} left out as the same person (same name, or nearer than "
            f"{DUPLICATE_DISTANCE:.2f}); {each} of each, this person's too (drawn with seed "
            f"{self.seed})"
        )


@dataclass(frozen=True)
class ReferenceAnswers:
    """The model's answers on the photos of the reference people a plan uses.

    ``used`` (U,): positions in :attr:`ReferencePlan.people`; ``cross`` (U, m, R): the
    responses of every real name of the candidates on each photo (None for a closed box);
    ``best`` (U, m, T): the top answer per photo and template.
    """

    used: np.ndarray
    cross: np.ndarray | None
    best: np.ndarray

    def statistics(self, real: int) -> tuple[np.ndarray | None, np.ndarray]:
        """The face statistics of the real name ``real`` per reference person: its mean
        response (None for a closed box) and its top-1 hits per photo."""
        continuous = None if self.cross is None else self.cross[:, :, real].mean(axis=1)
        return continuous, (self.best == real).sum(axis=2).mean(axis=1).astype(np.float64)


class ReferenceEmbeddings:
    """The model's image embeddings of public reference photos: in memory and, when given,
    in the disk cache (public photos only; docs/security.md). Photos without a usable face
    (as the attack prepares them) are remembered as such. Thread-safe."""

    def __init__(self) -> None:
        self._memory: dict[tuple[str, str], np.ndarray | None] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._memory)

    def get(
        self,
        classifier,
        keys: Sequence[str],
        paths: Sequence[Path],
        prepare: Callable[[Sequence[Path]], list[Photo]],
        cache: EmbeddingCache | None = None,
    ) -> np.ndarray:
        """(N, D) embeddings of ``paths`` by ``classifier`` (an
        :class:`~idia.models.EmbeddedClassifier`), NaN rows for photos without a usable face;
        ``keys``: each photo's identity (:func:`photo_key`); ``prepare`` loads and crops."""
        model = classifier.identity
        with self._lock:
            known = {key: self._memory[(model, key)] for key in keys
                     if (model, key) in self._memory}
        missing = [key for key in dict.fromkeys(keys) if key not in known]
        if missing and cache is not None:
            stored = cache.get(model, REFERENCE_IMAGE_KIND, missing)
            known.update({key: None if np.isnan(v).all() else v for key, v in stored.items()})
            missing = [key for key in missing if key not in known]
        if missing:
            where = {key: path for key, path in zip(keys, paths, strict=True)}
            prepared = prepare([where[key] for key in missing])
            usable = [i for i, photo in enumerate(prepared) if photo.status == "ok"]
            vectors = (classifier.image_embeddings([prepared[i].image for i in usable])
                       if usable else np.zeros((0, 0), np.float32))
            fresh: dict[str, np.ndarray | None] = dict.fromkeys(missing)
            fresh.update({missing[i]: vectors[row] for row, i in enumerate(usable)})
            known.update(fresh)
            if cache is not None:
                embedded = [key for key in missing if fresh[key] is not None]
                if embedded:
                    cache.put(model, REFERENCE_IMAGE_KIND, embedded,
                              np.stack([fresh[key] for key in embedded]))
                faceless = [key for key in missing if fresh[key] is None]
                if faceless:  # remembered as one NaN, so that they are not prepared again
                    cache.put(model, REFERENCE_IMAGE_KIND, faceless,
                              np.full((len(faceless), 1), np.nan, np.float32))
        with self._lock:
            self._memory.update({(model, key): known[key] for key in keys})
        dim = next((len(v) for v in known.values() if v is not None), 1)
        out = np.full((len(keys), dim), np.nan, np.float32)
        for row, key in enumerate(keys):
            if known[key] is not None:
                out[row] = known[key]
        return out


def photo_key(set_key: str, relative: str, preparation: str) -> str:
    """A reference photo's identity for the embedding cache: the set, the photo's path in it
    and how the attack prepares photos (crop, margin, detector)."""
    text = f"{set_key}\0{relative}\0{preparation}"
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


@dataclass(frozen=True)
class PublicReference:
    """A public reference set (LFW) ready for the face test: its people, their face
    descriptors (``faces``; cached on disk per set and encoder), each one's mean descriptor,
    photos with a face (``counts``), sex from the first name (``name_sexes``, "" unknown) and
    sex told from the face (``face_sexes``); ``embeddings``: the model embeddings of its photos
    met so far."""

    lfw: LFWReference
    faces: ReferenceFaces
    means: np.ndarray
    counts: np.ndarray
    name_sexes: np.ndarray
    face_sexes: np.ndarray
    embeddings: ReferenceEmbeddings = field(default_factory=ReferenceEmbeddings, repr=False)

    @classmethod
    def load(
        cls,
        spec: str = DEFAULT_REFERENCE,
        cache_dir: str | Path | None = None,
        use_cache: bool = True,
        workers: int | None = None,
        show_progress: bool = False,
        name_pool: NamePool | None = None,
    ) -> PublicReference:
        """LFW named by ``spec`` (``lfw``: fetched once through scikit-learn; ``lfw:DIR``: a
        local copy), with its face descriptors from the cache in ``cache_dir`` (default: idia's
        cache folder), or computed once in ``workers`` processes (default: one per core) and
        cached (``use_cache=False``: computed, not stored). Raises
        :class:`~idia.lfw.LFWError` or :class:`~idia.face_descriptors.FaceEncoderError`."""
        lfw = load_lfw(spec)
        with progress_display(lfw.n_photos, "describing the reference faces (once)", "photo",
                              enabled=show_progress) as bar:
            faces = reference_faces(
                lfw.people, lfw.key, box=LFW_FUNNELED_BOX, cache_dir=cache_dir,
                workers=workers or os.cpu_count() or 1, progress=bar, store=use_cache,
            )
        name_sexes = np.array([infer_sex(p.name, name_pool) or "" for p in lfw.people], object)
        means = faces.means()
        return cls(lfw, faces, means, faces.counts, name_sexes, sexes_by_face(means, name_sexes))

    @property
    def key(self) -> str:
        return self.lfw.key

    def describe(self) -> str:
        return self.lfw.describe()

    def sex_of(self, descriptors: np.ndarray) -> str | None:
        """A person's sex told from their face descriptors (P, 128): what most of the 15
        nearest reference people whose first name says it have."""
        labelled = self.name_sexes != ""
        return sex_by_face(descriptors, self.means[labelled], self.name_sexes[labelled])

    def plan(
        self,
        descriptors: np.ndarray,
        name: str,
        sex: str | None,
        sex_source: str,
        n_photos: int,
        seed: int,
        k: int = DEFAULT_LOOKALIKES,
        exclude: Sequence[str] = (),
    ) -> ReferencePlan | str:
        """Whom the person (face ``descriptors`` (P', 128) of their usable photos, NaN rows
        where dlib found no face; ``n_photos`` usable photos) is compared with; or why they
        cannot be: a sentence. ``exclude``: names never used as references (an audit's
        people: their names are among the candidates and would win on their own faces)."""
        if np.isnan(descriptors).all():
            return ("the face encoder (dlib) found no face in these photos, so the reference "
                    "people who look like this person cannot be chosen")
        if sex is None:
            sex, sex_source = self.sex_of(descriptors), "face"
        if sex not in SEX_WORDS:
            return "this person's sex could not be told from the name or the face (give --sex)"
        same = self.face_sexes == sex
        if exclude:
            left_out = {normalize_name(n) for n in exclude}
            same &= np.array([normalize_name(p.name) not in left_out for p in self.lfw.people])
        ordered = choose_lookalikes(descriptors, self.means, [p.name for p in self.lfw.people],
                                    name=name, k=len(self.means), eligible=same)
        counts = self.counts[ordered.indices]
        m = 1
        for size in range(min(n_photos, int(counts.max(initial=1))), 0, -1):
            if (counts >= size).sum() >= k:
                m = size
                break
        keep = counts >= m
        people = ordered.indices[keep]
        own = np.sort(np.random.default_rng([seed, name_key(name)]).permutation(n_photos)[:m])
        return ReferencePlan(
            sex=sex, sex_source=sex_source, n_photos=m, own_photos=own, people=people,
            photos=tuple(self.photos_of(j, m, seed) for j in people),
            distances=ordered.distances[keep], n_eligible=int(keep.sum()),
            n_duplicates=int(len(ordered.duplicates)), k=k, seed=seed,
        )

    def photos_of(self, person: int, m: int, seed: int) -> tuple[Path, ...]:
        """``m`` of a reference person's photos with a face, drawn with ``seed`` and their
        name (the same in every check)."""
        found = self.faces.found[self.faces.owner == person]
        photos = [p for p, ok in zip(self.lfw.people[person].photos, found, strict=True) if ok]
        rng = np.random.default_rng([seed, name_key(self.lfw.people[person].name)])
        return tuple(photos[i] for i in np.sort(rng.permutation(len(photos))[:m]))

    def photo_keys(self, photos: Sequence[Path], preparation: str) -> list[str]:
        return [photo_key(self.key, p.relative_to(self.lfw.folder).as_posix(), preparation)
                for p in photos]
