"""Photos in: load and validate images, find the face, crop it.

Every photo ends with a status: ``ok`` (used), ``no_face`` or ``unreadable`` (reported with
the reason and skipped; never used silently).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from idia.errors import IdiaError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".tif", ".tiff", ".bmp"}
# the only Pillow decoders idia lets near user files (JPEG also reads cameras' MPO)
IMAGE_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "TIFF", "BMP")
MAX_IMAGE_PIXELS = 100_000_000  # decompression-bomb limit (PIL's own default is ~89 M)
DETECTION_MAX_SIDE = 640  # detect on a downscaled copy; boxes are scaled back

CropMode = Literal["face", "none"]
PhotoStatus = Literal["ok", "no_face", "unreadable"]


class UnreadableImage(IdiaError, ValueError):
    """The file is not an image we can use; the message says why."""


class FaceSettingError(IdiaError, ValueError):
    """An unknown face detector or crop mode."""


@dataclass(frozen=True)
class Box:
    """A face: top-left corner, size and detector confidence (0..1), in pixels."""

    x: int
    y: int
    w: int
    h: int
    score: float = 1.0

    @property
    def area(self) -> int:
        return self.w * self.h


@dataclass
class Photo:
    """One input photo and what became of it; ``image`` is what the model sees."""

    path: str
    status: PhotoStatus
    reason: str = ""
    image: Image.Image | None = None
    box: Box | None = None
    n_faces: int = 0


def list_images(folder: Path) -> list[Path]:
    """Image files directly in ``folder``, sorted by name (hidden files ignored)."""
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
    )


def load_image(path: str | Path) -> Image.Image:
    """An RGB image as a person would see the file: EXIF rotation applied, first frame of an
    animation, alpha composited on white, CMYK / 16-bit / palette converted.

    Only :data:`IMAGE_FORMATS` are decoded, whatever the file is named (a ``.png`` that is
    really EPS must never reach Ghostscript), and the pixel count is checked from the header
    before any decoding. Pillow's global settings and the warning filters are left as they
    are, so an application embedding idia keeps its own.
    """
    path = Path(path)
    if not path.is_file():
        raise UnreadableImage("file not found")
    if path.stat().st_size == 0:
        raise UnreadableImage("empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            # Pillow warns from its own global limit; ours is checked from the header instead
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path, formats=IMAGE_FORMATS) as opened:
                width, height = opened.size
                if width * height > MAX_IMAGE_PIXELS:
                    raise UnreadableImage(
                        f"too large ({width}x{height} pixels, over {MAX_IMAGE_PIXELS:,})"
                    )
                opened.seek(0)
                image = ImageOps.exif_transpose(opened)
                image.load()
    except UnreadableImage:
        raise
    except Image.DecompressionBombError as err:
        raise UnreadableImage(f"too large (over {MAX_IMAGE_PIXELS:,} pixels): {err}") from err
    except UnidentifiedImageError as err:
        raise UnreadableImage(
            f"not an image in a supported format ({', '.join(IMAGE_FORMATS)})"
        ) from err
    except (OSError, SyntaxError, ValueError) as err:
        raise UnreadableImage(f"corrupt or truncated image: {err}") from err
    return to_rgb(image)


def to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        array = np.asarray(image, dtype=np.float64)
        top = array.max() or 1.0
        image = Image.fromarray((array / top * 255).clip(0, 255).astype(np.uint8))
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image.convert("RGBA"))
    return image.convert("RGB")


class FaceDetector(Protocol):
    name: str

    def detect(self, rgb: np.ndarray) -> list[Box]: ...


class YuNetDetector:
    """YuNet (libfacedetection) through the ``yuface`` package, which ships its model."""

    name = "yunet"

    def __init__(self, min_confidence: float = 0.6) -> None:
        import yuface

        self._detect = yuface.detect
        self.min_confidence = min_confidence

    def detect(self, rgb: np.ndarray) -> list[Box]:
        bgr = np.ascontiguousarray(rgb[:, :, ::-1])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # warns on large inputs; we downscale first
            confidences, boxes, _ = self._detect(bgr, conf=self.min_confidence)
        return [
            Box(int(x), int(y), int(w), int(h), float(c) / 100.0)
            for c, (x, y, w, h) in zip(confidences, boxes, strict=True)
        ]


class HaarDetector:
    """OpenCV's frontal-face Haar cascade (ships with opencv-python-headless below 5)."""

    name = "haar"

    def __init__(self) -> None:
        import cv2

        self._cv2 = cv2
        self._cascade = cv2.CascadeClassifier(
            cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
        )

    def detect(self, rgb: np.ndarray) -> list[Box]:
        gray = self._cv2.cvtColor(rgb, self._cv2.COLOR_RGB2GRAY)
        found = self._cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5)
        return [Box(int(x), int(y), int(w), int(h)) for x, y, w, h in found]


def get_detector(name: str = "yunet") -> FaceDetector:
    if name == "yunet":
        return YuNetDetector()
    if name == "haar":
        return HaarDetector()
    raise FaceSettingError(f"unknown face detector {name!r}; choose 'yunet' or 'haar'")


def detect_faces(image: Image.Image, detector: FaceDetector) -> list[Box]:
    """Faces in full-image pixel coordinates, largest first."""
    scale = min(1.0, DETECTION_MAX_SIDE / max(image.size))
    small = (
        image
        if scale == 1.0
        else image.resize(
            (max(1, round(image.width * scale)), max(1, round(image.height * scale))),
            Image.Resampling.BILINEAR,
        )
    )
    boxes = []
    for b in detector.detect(np.asarray(small)):
        x, y = max(0, round(b.x / scale)), max(0, round(b.y / scale))
        w = min(image.width - x, round((b.w + min(b.x, 0)) / scale))
        h = min(image.height - y, round((b.h + min(b.y, 0)) / scale))
        if w > 0 and h > 0:
            boxes.append(Box(x, y, w, h, b.score))
    return sorted(boxes, key=lambda b: b.area, reverse=True)


def crop_box(image: Image.Image, face: Box, margin: float = 0.3) -> Box:
    """A square around the face, ``margin`` of its size added on each side, inside the image."""
    side = round(max(face.w, face.h) * (1 + 2 * margin))
    side = min(side, image.width, image.height)
    cx, cy = face.x + face.w / 2, face.y + face.h / 2
    x = int(min(max(0, round(cx - side / 2)), image.width - side))
    y = int(min(max(0, round(cy - side / 2)), image.height - side))
    return Box(x, y, side, side, face.score)


def prepare_image(
    image: Image.Image,
    label: str,
    crop: CropMode = "face",
    detector: FaceDetector | None = None,
    margin: float = 0.3,
) -> Photo:
    """An already loaded image; with ``crop='face'``, cut out its largest face."""
    if crop == "none":
        return Photo(label, "ok", image=image)
    faces = detect_faces(image, detector or get_detector())
    if not faces:
        return Photo(label, "no_face", "no face found")
    box = crop_box(image, faces[0], margin)
    cropped = image.crop((box.x, box.y, box.x + box.w, box.y + box.h))
    return Photo(label, "ok", image=cropped, box=box, n_faces=len(faces))


def prepare_photo(
    path: str | Path,
    crop: CropMode = "face",
    detector: FaceDetector | None = None,
    margin: float = 0.3,
) -> Photo:
    """Load one photo from disk and prepare it (see :func:`prepare_image`)."""
    try:
        image = load_image(path)
    except UnreadableImage as err:
        return Photo(str(path), "unreadable", str(err))
    return prepare_image(image, str(path), crop, detector, margin)


def prepare_photos(
    paths: Iterable[str | Path],
    crop: CropMode = "face",
    detector: FaceDetector | None = None,
    margin: float = 0.3,
) -> list[Photo]:
    if crop not in ("face", "none"):
        raise FaceSettingError(f"crop must be 'face' or 'none', not {crop!r}")
    if crop == "face" and detector is None:
        detector = get_detector()
    return [prepare_photo(p, crop, detector, margin) for p in paths]


def usable(photos: Sequence[Photo]) -> list[Photo]:
    return [p for p in photos if p.status == "ok"]
