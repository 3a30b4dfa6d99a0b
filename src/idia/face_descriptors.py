"""Face descriptors: who a face looks like, from a real face-recognition encoder.

The face test compares a person with the reference people who look most like them, so that
sex, age and ethnicity are matched without labels. That needs a face encoder trained to tell
real people apart which installs with its weights from a package and runs on a CPU: dlib's
ResNet face descriptor (128-d; ``dlib-bin`` for dlib, ``face-recognition-models`` for the
weights). Distances between descriptors are Euclidean; dlib calls two faces the same person
below 0.6.

A photo's descriptor: dlib's HOG face detector (again on a 2x upsampled copy when it finds
nothing), the largest face, its 5 landmarks, then the ResNet on the aligned 150 px chip.
Photos already aligned and cropped (Labeled Faces in the Wild, the lab's synthetic faces) can
skip detection with a fixed :class:`FaceBox`; or a box can be the ``fallback`` where detection
finds nothing, so that every photo gets a descriptor (a model's image tower must answer for
any photo: :mod:`idia.models.lit`). Everything is deterministic: the same pixels give the same
vector.

The models' files are located without importing ``face_recognition_models``: its
``__init__`` imports ``pkg_resources``, which recent setuptools no longer ships.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import multiprocessing
import threading
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from idia.errors import IdiaError
from idia.faces import DETECTION_MAX_SIDE, PhotoStatus, UnreadableImage, load_image
from idia.progress import Progress

DESCRIPTOR_DIM = 128
SAME_PERSON_DISTANCE = 0.6  # dlib's own threshold between two photos' descriptors
ENCODER_NAME = "dlib-resnet-v1"
INSTALL_HINT = "pip install dlib-bin face-recognition-models"
MODEL_FILES = {
    "descriptor": "dlib_face_recognition_resnet_model_v1.dat",
    "landmarks": "shape_predictor_5_face_landmarks.dat",
}
_CHUNK = 32  # photos per task when describing in worker processes


class FaceEncoderError(IdiaError, ValueError):
    """dlib or its models are missing; the message says what to install."""


@dataclass(frozen=True)
class FaceBox:
    """Where the face is in an aligned photo, as fractions of its width and height."""

    left: float
    top: float
    right: float
    bottom: float

    def __post_init__(self) -> None:
        if not 0 <= self.left < self.right <= 1 or not 0 <= self.top < self.bottom <= 1:
            raise ValueError(f"a face box needs 0 <= left < right <= 1 and 0 <= top < "
                             f"bottom <= 1, got {self}")

    def pixels(self, width: int, height: int) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) in pixels, right and bottom inclusive (dlib's way)."""
        return (
            round(self.left * width),
            round(self.top * height),
            max(round(self.right * width) - 1, round(self.left * width)),
            max(round(self.bottom * height) - 1, round(self.top * height)),
        )

    def describe(self) -> str:
        return f"box({self.left:g},{self.top:g},{self.right:g},{self.bottom:g})"


FULL_IMAGE = FaceBox(0.0, 0.0, 1.0, 1.0)
"""The whole photo is the face (the lab's synthetic faces)."""
LFW_FUNNELED_BOX = FaceBox(0.25, 0.30, 0.73, 0.79)
"""The median box dlib's detector finds on LFW's funneled photos (see docs/faces.md)."""


def model_files() -> dict[str, Path]:
    """The encoder's weight files inside the installed ``face_recognition_models``."""
    spec = importlib.util.find_spec("face_recognition_models")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        folder = Path(location) / "models"
        files = {role: folder / name for role, name in MODEL_FILES.items()}
        if all(f.is_file() for f in files.values()):
            return files
    raise FaceEncoderError(
        "the face encoder's weights (package face-recognition-models) are not installed; "
        f"run: {INSTALL_HINT}"
    )


def _import_dlib() -> Any:
    try:
        import dlib
    except ImportError as err:
        raise FaceEncoderError(
            f"the face encoder needs dlib, which is not installed ({err}); run: {INSTALL_HINT}"
        ) from err
    return dlib


@functools.cache
def _weights_digest(files: tuple[Path, ...]) -> str:
    digest = hashlib.blake2b(digest_size=8)
    for path in files:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def box_rule(box: FaceBox | None = None, fallback: FaceBox | None = None) -> str:
    """The rule that places the face, in words: a fixed box, or detection (else a fallback
    box)."""
    if box is not None:
        return box.describe()
    return "hog+upsample,largest" + (f",else {fallback.describe()}" if fallback else "")


def encoder_identity(box: FaceBox | None = None, fallback: FaceBox | None = None) -> str:
    """What determines a descriptor: the encoder, a digest of its weight files, the box
    rule. Part of every cache key, so changed weights or rules never reuse old vectors."""
    digest = _weights_digest(tuple(model_files().values()))
    return f"{ENCODER_NAME}-{digest}-{box_rule(box, fallback)}"


class FaceDescriptorEncoder:
    """dlib's face-recognition ResNet with its detector and landmark model, loaded once.

    ``box``: None to detect the face (HOG, then upsampled; the largest face), or a fixed
    :class:`FaceBox` for aligned photos (no detection; every photo then has a face).
    ``fallback``: with detection, the box described where nothing is detected (every photo
    then has a face too). dlib objects cannot be pickled: worker processes build their own
    (see :func:`describe_paths`).
    """

    def __init__(self, box: FaceBox | None = None, fallback: FaceBox | None = None) -> None:
        dlib = _import_dlib()
        files = model_files()
        self.box = box
        self.fallback = fallback if box is None else None
        self._dlib = dlib
        self._detector = dlib.get_frontal_face_detector() if box is None else None
        self._landmarks = dlib.shape_predictor(str(files["landmarks"]))
        self._resnet = dlib.face_recognition_model_v1(str(files["descriptor"]))

    @functools.cached_property
    def identity(self) -> str:
        return encoder_identity(self.box, self.fallback)

    def face_rectangle(self, rgb: np.ndarray) -> Any | None:
        """The face to describe as a dlib rectangle in ``rgb``'s pixels, None if none."""
        height, width = rgb.shape[:2]
        if self.box is not None:
            return self._dlib.rectangle(*self.box.pixels(width, height))
        scale = min(1.0, DETECTION_MAX_SIDE / max(width, height))
        small = rgb
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            small = np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BILINEAR))
        found = self._detector(small, 0) or self._detector(small, 1)
        if not found:
            if self.fallback is None:
                return None
            return self._dlib.rectangle(*self.fallback.pixels(width, height))
        face = max(found, key=lambda r: r.width() * r.height())
        return self._dlib.rectangle(
            round(face.left() / scale), round(face.top() / scale),
            round(face.right() / scale), round(face.bottom() / scale),
        )

    def describe(self, image: Image.Image) -> np.ndarray | None:
        """The (128,) float32 descriptor of the face in ``image``; None when none is found."""
        rgb = np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))
        rectangle = self.face_rectangle(rgb)
        if rectangle is None:
            return None
        shape = self._landmarks(rgb, rectangle)
        return np.asarray(self._resnet.compute_face_descriptor(rgb, shape), dtype=np.float32)


@dataclass(frozen=True)
class Descriptors:
    """Descriptors of N photos: ``vectors`` (N, 128) float32, NaN rows where ``status`` is
    not ``ok`` (``no_face``: nothing detected; ``unreadable``: not a usable image)."""

    vectors: np.ndarray
    status: tuple[PhotoStatus, ...]

    @property
    def found(self) -> np.ndarray:
        """(N,) bool: which photos had a face (their rows are real descriptors)."""
        return np.array([s == "ok" for s in self.status], dtype=bool)


def _collect(described: Sequence[tuple[np.ndarray | None, PhotoStatus]]) -> Descriptors:
    vectors = np.full((len(described), DESCRIPTOR_DIM), np.nan, dtype=np.float32)
    for row, (vector, _) in enumerate(described):
        if vector is not None:
            vectors[row] = vector
    return Descriptors(vectors, tuple(status for _, status in described))


def _describe_one(
    encoder: FaceDescriptorEncoder, image: Image.Image
) -> tuple[np.ndarray | None, PhotoStatus]:
    vector = encoder.describe(image)
    return vector, ("ok" if vector is not None else "no_face")


_thread_encoders = threading.local()


def thread_encoder(box: FaceBox | None = None, fallback: FaceBox | None = None
                   ) -> FaceDescriptorEncoder:
    """This thread's encoder for these settings, built on first use: loading dlib's models
    takes about 0.3 s, and a reference set describes its people one by one (138 loads made
    up 42 s of a closed-box check). Per thread, as dlib's networks keep state while they run."""
    encoders = _thread_encoders.__dict__.setdefault("by_rule", {})
    if (box, fallback) not in encoders:
        encoders[box, fallback] = FaceDescriptorEncoder(box, fallback)
    return encoders[box, fallback]


def describe_images(
    images: Sequence[Image.Image],
    box: FaceBox | None = None,
    encoder: FaceDescriptorEncoder | None = None,
    fallback: FaceBox | None = None,
) -> Descriptors:
    """Descriptors of images already in memory (a person's photos: nothing is stored)."""
    encoder = encoder or thread_encoder(box, fallback)
    return _collect([_describe_one(encoder, image) for image in images])


_worker_encoder: FaceDescriptorEncoder | None = None


def _start_worker(box: FaceBox | None, fallback: FaceBox | None) -> None:
    global _worker_encoder
    _worker_encoder = FaceDescriptorEncoder(box, fallback)


def _describe_files(
    paths: Sequence[str], encoder: FaceDescriptorEncoder | None = None
) -> list[tuple[np.ndarray | None, PhotoStatus]]:
    encoder = encoder or _worker_encoder
    assert encoder is not None, "worker started without an encoder"
    out: list[tuple[np.ndarray | None, PhotoStatus]] = []
    for path in paths:
        try:
            image = load_image(path)
        except UnreadableImage:
            out.append((None, "unreadable"))
            continue
        out.append(_describe_one(encoder, image))
    return out


def describe_paths(
    paths: Sequence[str | Path],
    box: FaceBox | None = None,
    workers: int = 1,
    progress: Progress | None = None,
    fallback: FaceBox | None = None,
) -> Descriptors:
    """Descriptors of photo files, in ``workers`` processes (the encoder uses one core each);
    the result is the same whatever ``workers`` is. ``progress`` is advanced per photo.
    ``box`` and ``fallback``: see :class:`FaceDescriptorEncoder`."""
    names = [str(p) for p in paths]
    chunks = [names[i : i + _CHUNK] for i in range(0, len(names), _CHUNK)]
    described: list[tuple[np.ndarray | None, PhotoStatus]] = []
    if workers <= 1 or len(chunks) <= 1:
        encoder = thread_encoder(box, fallback)
        for chunk in chunks:
            described.extend(_describe_files(chunk, encoder))
            if progress is not None:
                progress.update(len(chunk))
        return _collect(described)
    # spawn: a forked copy of a parent holding torch's thread pools can deadlock
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker,
                             initargs=(box, fallback)) as pool:
        for chunk, result in zip(chunks, pool.map(_describe_files, chunks), strict=True):
            described.extend(result)
            if progress is not None:
                progress.update(len(chunk))
    return _collect(described)
