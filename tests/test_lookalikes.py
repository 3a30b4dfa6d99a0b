"""Lookalike references: the k nearest reference people by mean descriptor, never the same
identity (near-duplicates and the same name), deterministic, with the rule stated."""

from __future__ import annotations

import numpy as np
import pytest

from idia.lookalikes import (
    DEFAULT_LOOKALIKES,
    DUPLICATE_DISTANCE,
    choose_lookalikes,
    mean_descriptor,
    sex_by_face,
)


def references(distances: list[float], seed: int = 0) -> np.ndarray:
    """Reference means at the given distances from the origin, in random directions."""
    directions = np.random.default_rng(seed).normal(size=(len(distances), 128))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    return directions * np.asarray(distances)[:, None]


PERSON = np.zeros((3, 128))  # three photos, all at the origin
NAMES = [f"Person {i}" for i in range(8)]


def test_the_k_nearest_come_back_nearest_first() -> None:
    means = references([0.9, 0.5, 0.7, 0.6, 1.2, 0.55, 0.8, 1.0])
    chosen = choose_lookalikes(PERSON, means, NAMES, k=3)
    assert chosen.indices.tolist() == [1, 5, 3]
    np.testing.assert_allclose(chosen.distances, [0.5, 0.55, 0.6])
    assert chosen.n_candidates == 8 and chosen.p_floor == pytest.approx(1 / 4)
    assert "the 3 reference people" in chosen.rule and "out of 8 eligible" in chosen.rule


def test_near_duplicates_and_the_same_name_are_never_chosen() -> None:
    means = references([0.1, 0.5, 0.7, 0.6, 1.2, 0.55, 0.8, 1.0])  # 0: the person themselves
    names = list(NAMES)
    names[3] = "  josé   GARCÍA "  # the person's name, spelled differently
    chosen = choose_lookalikes(PERSON, means, names, name="Jose Garcia", k=4)
    assert chosen.indices.tolist() == [1, 5, 2, 6]
    assert chosen.duplicates.tolist() == [0, 3]
    assert "2 left out as the same person" in chosen.rule


def test_the_duplicate_threshold_is_a_distance_between_means() -> None:
    means = references([DUPLICATE_DISTANCE - 0.01, DUPLICATE_DISTANCE + 0.01])
    assert choose_lookalikes(PERSON, means, NAMES[:2], k=2).indices.tolist() == [1]
    assert choose_lookalikes(PERSON, means, NAMES[:2], k=2,
                             duplicate_distance=0.2).indices.tolist() == [0, 1]


def test_references_without_a_face_or_not_eligible_are_skipped() -> None:
    means = references([0.5, 0.6, 0.7, 0.8])
    means[0] = np.nan
    eligible = np.array([True, False, True, True])
    chosen = choose_lookalikes(PERSON, means, NAMES[:4], k=10, eligible=eligible)
    assert chosen.indices.tolist() == [2, 3]  # fewer than k: all that may be chosen
    assert chosen.n_candidates == 2 and "the 2 reference people" in chosen.rule


def test_ties_go_to_the_earlier_reference_and_the_choice_is_repeatable() -> None:
    means = np.eye(8, 128) * 0.7  # all exactly 0.7 away
    first = choose_lookalikes(PERSON, means, NAMES, k=5)
    assert first.indices.tolist() == [0, 1, 2, 3, 4]
    second = choose_lookalikes(PERSON.copy(), means.copy(), list(NAMES), k=5)
    np.testing.assert_array_equal(first.indices, second.indices)


def test_the_person_is_their_mean_over_photos_with_a_face() -> None:
    photos = np.array([np.full(128, 1.0), np.full(128, np.nan), np.full(128, 3.0)])
    np.testing.assert_allclose(mean_descriptor(photos), np.full(128, 2.0))
    with pytest.raises(ValueError, match="none of their photos has a face"):
        mean_descriptor(np.full((2, 128), np.nan))


def test_the_default_keeps_the_p_floor_at_most_one_in_a_thousand() -> None:
    assert 1 / (1 + DEFAULT_LOOKALIKES) <= 0.001


def test_sex_by_face_is_the_vote_of_the_nearest_labelled_people() -> None:
    means = references([0.1, 0.6, 0.65, 0.7, 0.8, 0.9, 1.0])
    sexes = ["m", "f", "f", None, "m", "m", "m"]
    # the person themselves (0.1 away) does not vote; of the 3 nearest labelled, 2 are women
    assert sex_by_face(PERSON, means, sexes, k=3) == "f"
    assert sex_by_face(PERSON, means, sexes, k=5) == "m"
    assert sex_by_face(PERSON, means, [None] * 7) is None


@pytest.mark.shared_data
def test_a_real_person_in_the_reference_under_another_name_is_left_out(
    lfw_small, shared_data, tmp_path
) -> None:
    from idia.face_descriptors import LFW_FUNNELED_BOX, describe_paths
    from idia.lfw import load_lfw
    from idia.reference_faces import reference_faces

    reference = load_lfw(f"lfw:{lfw_small}")
    faces = reference_faces(reference.people, reference.key, box=LFW_FUNNELED_BOX,
                            cache_dir=tmp_path)
    # two other photos of Tony Blair (not in the small copy), under a name it does not know
    folder = shared_data / "faces" / "lfw" / "lfw_home" / "lfw_funneled" / "Tony_Blair"
    own = describe_paths(sorted(folder.glob("*.jpg"))[10:12], box=LFW_FUNNELED_BOX).vectors
    chosen = choose_lookalikes(own, faces.means(), faces.names, name="T. Blair", k=20)
    blair = faces.names.index("Tony Blair")
    assert chosen.duplicates.tolist() == [blair]
    assert len(chosen.indices) == 14 and blair not in chosen.indices.tolist()


def test_lookalike_mask_is_the_k_nearest_of_the_same_sex_for_face_tests() -> None:
    from idia import claims
    from idia.lookalikes import lookalike_mask

    positions = np.array([0.0, 0.1, 0.2, 5.0, 5.1, 0.15, 9.0])[:, None] * np.ones((1, 4))
    sexes = ["f", "f", "f", "f", "m", "m", None]
    names = [f"Person {i}" for i in range(7)]
    mask = lookalike_mask(positions, names, sexes, k=2, duplicate_distance=0.0)
    assert np.flatnonzero(mask[0]).tolist() == [1, 2]  # the two nearest women, not the man
    assert np.flatnonzero(mask[3]).tolist() == [1, 2]
    assert np.flatnonzero(mask[5]).tolist() == [4], "the only other man"
    assert not mask[6].any(), "unknown sex: no reference"
    assert not mask.diagonal().any()
    # what a lab control calls: the same face statistics, sex-only or lookalike references
    statistics = np.random.default_rng(0).normal(size=(7, 7))
    by_sex = claims.face_tests(statistics, claims.reference_mask(sexes, np.ones(7, bool)))
    by_look = claims.face_tests(statistics, mask)
    assert by_sex.n_reference.tolist() == [3, 3, 3, 3, 1, 1, 0]
    assert by_look.n_reference.tolist() == [2, 2, 2, 2, 1, 1, 0]
