"""Reference descriptors: computed once per reference set and encoder, cached privately,
loaded instead of recomputed, recomputed when the set, the encoder or the file changes."""

from __future__ import annotations

import logging
import stat

import numpy as np
import pytest
from PIL import Image

from idia import reference_faces as module
from idia.face_descriptors import FULL_IMAGE, LFW_FUNNELED_BOX
from idia.lfw import load_lfw
from idia.people import find_people
from idia.reference_faces import ReferenceFaces, cache_path, reference_faces


@pytest.fixture
def generated_people(tmp_path):
    """Three people with flat-colour photos: with a fixed box each gets a descriptor."""
    for i, (name, n) in enumerate({"Ann Lee": 2, "Bo Chen": 1, "Cy Diaz": 3}.items()):
        (tmp_path / "people" / name).mkdir(parents=True)
        for k in range(n):
            Image.new("RGB", (48, 48), (60 * i, 40 * k, 90)).save(
                tmp_path / "people" / name / f"{k}.png"
            )
    people, _ = find_people(tmp_path / "people")
    return people


def refuse_to_describe(*args, **kwargs):
    raise AssertionError("descriptors were recomputed instead of read from the cache")


def test_computed_once_then_read_from_a_private_cache(tmp_path, generated_people,
                                                      monkeypatch) -> None:
    cache = tmp_path / "cache"
    first = reference_faces(generated_people, "set-1", box=FULL_IMAGE, cache_dir=cache)
    assert first.names == ("Ann Lee", "Bo Chen", "Cy Diaz")
    assert first.owner.tolist() == [0, 0, 1, 2, 2, 2] and first.found.all()
    path = cache_path("set-1", first.encoder, cache)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    monkeypatch.setattr(module, "describe_paths", refuse_to_describe)
    again = reference_faces(generated_people, "set-1", box=FULL_IMAGE, cache_dir=cache)
    np.testing.assert_array_equal(again.vectors, first.vectors)
    assert again.names == first.names and again.encoder == first.encoder


def test_another_set_or_box_is_computed_anew(tmp_path, generated_people, monkeypatch) -> None:
    cache = tmp_path / "cache"
    first = reference_faces(generated_people, "set-1", box=FULL_IMAGE, cache_dir=cache)
    calls = []
    real = module.describe_paths

    def counting(*args, **kwargs):
        calls.append(kwargs["box"])
        return real(*args, **kwargs)

    monkeypatch.setattr(module, "describe_paths", counting)
    reference_faces(generated_people, "set-2", box=FULL_IMAGE, cache_dir=cache)
    other_box = reference_faces(generated_people, "set-1", box=LFW_FUNNELED_BOX, cache_dir=cache)
    assert calls == [FULL_IMAGE, LFW_FUNNELED_BOX]
    assert other_box.encoder != first.encoder


def test_an_unusable_cache_file_is_recomputed_with_a_warning(tmp_path, generated_people,
                                                             caplog) -> None:
    cache = tmp_path / "cache"
    first = reference_faces(generated_people, "set-1", box=FULL_IMAGE, cache_dir=cache)
    cache_path("set-1", first.encoder, cache).write_bytes(b"torn")
    with caplog.at_level(logging.WARNING):
        again = reference_faces(generated_people, "set-1", box=FULL_IMAGE, cache_dir=cache)
    assert "recomputing" in caplog.text
    np.testing.assert_array_equal(again.vectors, first.vectors)


def test_means_and_counts_use_only_photos_with_a_face() -> None:
    vectors = np.zeros((4, 128), np.float32)
    vectors[0], vectors[1], vectors[3] = 1.0, 3.0, 5.0
    vectors[2] = np.nan
    faces = ReferenceFaces(("A", "B", "C"), np.array([0, 0, 1, 2]), vectors,
                           np.array([True, True, False, True]), "k", "e")
    assert faces.counts.tolist() == [2, 0, 1]
    means = faces.means()
    assert np.allclose(means[0], 2.0) and np.isnan(means[1]).all() and np.allclose(means[2], 5.0)
    assert faces.of(0).shape == (2, 128) and faces.of(1).shape == (0, 128)


@pytest.mark.shared_data
def test_the_small_lfw_copy_is_described_with_its_box(lfw_small, tmp_path) -> None:
    reference = load_lfw(f"lfw:{lfw_small}")
    faces = reference_faces(reference.people, reference.key, box=LFW_FUNNELED_BOX,
                            cache_dir=tmp_path)
    assert faces.found.all() and faces.counts.sum() == 38
    means = faces.means()
    serena, venus = faces.names.index("Serena Williams"), faces.names.index("Venus Williams")
    powell = faces.names.index("Colin Powell")
    # two sisters look more alike than either looks like Colin Powell
    assert np.linalg.norm(means[serena] - means[venus]) < np.linalg.norm(
        means[serena] - means[powell]
    )
