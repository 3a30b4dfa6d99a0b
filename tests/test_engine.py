"""End to end with a model that knows chosen people by construction: known people are found,
unknown ones are not; embeddings are encoded once and cached."""

from __future__ import annotations

import numpy as np

from idia import create_attack
from idia.zeroshot import EmbeddingZeroShot


def make_attack(model, tmp_path, **kwargs):
    return create_attack(model, crop="none", num_names=200, seed=1,
                         cache_dir=tmp_path / "cache", progress=False, **kwargs)


def test_known_people_are_found_and_unknown_are_not(knowing_model, tmp_path):
    attack = make_attack(knowing_model, tmp_path)
    for person in knowing_model.people:
        photos = [knowing_model.photo(person, v) for v in range(5)]
        result = attack.check(photos, person)
        known = person in knowing_model.known
        assert result.member == known, person
        assert result.n_candidates == 200 and result.n_photos == 5
        name_test = result.claims["name_familiarity"]
        if known:
            assert result.score == 21
            assert name_test.p_value == 1 / (1 + name_test.n_null)  # above every decoy
            assert all(t.correct and t.votes == 5 for t in result.templates)
            assert result.mean_real_rank == 0
        else:
            assert result.score == 0


def test_each_prompt_and_photo_is_encoded_once(knowing_model, tmp_path):
    attack = make_attack(knowing_model, tmp_path, cache_images=True)
    photos = [knowing_model.photo("Jane Doe", v) for v in range(3)]
    attack.check(photos, "Jane Doe")
    assert knowing_model.text_calls == 21 * 200 and knowing_model.image_calls == 3
    attack.check(photos + [knowing_model.photo("Jane Doe", 9)], "Jane Doe")
    assert knowing_model.text_calls == 21 * 200, "same candidates: no text re-encoded"
    assert knowing_model.image_calls == 4, "only the new photo is encoded"
    fresh = make_attack(knowing_model, tmp_path, cache_images=True)  # as a new process would
    fresh.check(photos, "Jane Doe")
    assert knowing_model.text_calls == 21 * 200 and knowing_model.image_calls == 4
    assert isinstance(fresh.classifier, EmbeddingZeroShot)
    assert fresh.classifier.encoded_texts == 0


def test_photos_reach_the_disk_cache_only_when_asked(knowing_model, tmp_path):
    photos = [knowing_model.photo("Jane Doe", v) for v in range(3)]
    make_attack(knowing_model, tmp_path).check(photos, "Jane Doe")
    fresh = make_attack(knowing_model, tmp_path)
    fresh.check(photos, "Jane Doe")
    assert knowing_model.text_calls == 21 * 200, "prompts come from the disk cache"
    assert knowing_model.image_calls == 6, "faces are not written to disk by default"


def test_only_the_last_few_candidate_sets_stay_in_memory(knowing_model):
    """Library use with per-person candidates must not keep ~43 MB per person forever."""
    classifier = EmbeddingZeroShot(knowing_model)  # keeps 4 sets by default
    sets = [[[f"{t} {i} {name}" for name in ("a", "b", "c")] for t in range(2)]
            for i in range(6)]
    for groups in sets:
        classifier.group_embeddings(groups)
    assert knowing_model.text_calls == 6 * 6
    classifier.group_embeddings(sets[-1])
    classifier.group_embeddings(sets[2])  # recently used sets are kept...
    assert knowing_model.text_calls == 6 * 6
    classifier.group_embeddings(sets[0])  # ...the oldest was dropped and is encoded again
    assert knowing_model.text_calls == 7 * 6
    classifier.group_embeddings(sets[2])  # touched above, so still kept after one eviction
    assert knowing_model.text_calls == 7 * 6


def test_cache_is_keyed_by_model_identity(knowing_model, tmp_path):
    make_attack(knowing_model, tmp_path).check([knowing_model.photo("Jane Doe")], "Jane Doe")
    knowing_model.identity = "another-model"
    other = make_attack(knowing_model, tmp_path)
    other.check([knowing_model.photo("Jane Doe")], "Jane Doe")
    assert other.classifier.encoded_texts == 21 * 200


def test_custom_templates_and_threshold(knowing_model, tmp_path):
    attack = make_attack(knowing_model, tmp_path, templates=["portrait of {}", "{} smiling"],
                         threshold=2)
    result = attack.check([knowing_model.photo("Adrianne León")], "Adrianne León")
    assert result.score == 2 and result.member and len(result.templates) == 2
    payload = result.to_dict()
    assert {"name", "model", "n_photos", "n_candidates", "score", "threshold", "member",
            "templates"} <= payload.keys()
    assert np.isclose(result.chance_member_probability, 1 - (1 - 1 / 200) ** 2 - 2 * (
        1 / 200) * (1 - 1 / 200))
