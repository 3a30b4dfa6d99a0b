"""End to end with a model that knows chosen people by construction: known people are found,
unknown ones are not; embeddings are encoded once and cached. The factory loads a model with
its card and opens the cache; a closed box gets the top-1 versions of the tests; a check in
an audit's candidate set reads the run folder through RunFolder."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from idia import IdentityInferenceAttack, create_attack, load_model_and_card
from idia.audit import run_audit
from idia.cache import EmbeddingCache, cache_info
from idia.engine import AttackInputError
from idia.models import EmbeddedClassifier, ZeroShotResult
from idia.models.card import ModelCard, write_card
from idia.name_null import forget_shared_familiarity
from idia.names import default_pool, sample_decoys
from idia.zeroshot import EmbeddingZeroShot


def make_attack(model, tmp_path, **kwargs):
    return create_attack(model, crop="none", num_names=200, name_decoys=200, seed=1,
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
    result = attack.check(photos, "Jane Doe")
    texts = knowing_model.text_calls
    # the paper's candidates, the name's own decoys and the name parts of their pools
    assert texts >= 21 * (200 + result.name_null["n_decoys"])
    assert texts == attack.classifier.encoded_texts, "each prompt once"
    assert knowing_model.image_calls == 3, "each photo once, for both candidate sets"
    attack.check(photos + [knowing_model.photo("Jane Doe", 9)], "Jane Doe")
    assert knowing_model.text_calls == texts, "same candidates: no text re-encoded"
    assert knowing_model.image_calls == 4, "only the new photo is encoded"
    fresh = make_attack(knowing_model, tmp_path, cache_images=True)  # as a new process would
    fresh.check(photos, "Jane Doe")
    assert knowing_model.text_calls == texts and knowing_model.image_calls == 4
    assert isinstance(fresh.classifier, EmbeddingZeroShot)
    assert fresh.classifier.encoded_texts == 0


def test_photos_reach_the_disk_cache_only_when_asked(knowing_model, tmp_path):
    photos = [knowing_model.photo("Jane Doe", v) for v in range(3)]
    make_attack(knowing_model, tmp_path).check(photos, "Jane Doe")
    texts = knowing_model.text_calls
    fresh = make_attack(knowing_model, tmp_path)
    fresh.check(photos, "Jane Doe")
    assert knowing_model.text_calls == texts, "prompts come from the disk cache"
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
    forget_shared_familiarity()  # earlier tests' attacks on this model filled it
    first = make_attack(knowing_model, tmp_path)
    first.check([knowing_model.photo("Jane Doe")], "Jane Doe")
    knowing_model.identity = "another-model"
    other = make_attack(knowing_model, tmp_path)
    other.check([knowing_model.photo("Jane Doe")], "Jane Doe")
    assert other.classifier.encoded_texts == first.classifier.encoded_texts > 21 * 200


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


# --- A closed box: only the top answer ------------------------------------------------------


class TopAnswerOnly:
    """A ClosedBoxModel that reveals only its top answer, no scores (as a provider that
    answers top-1 only)."""

    def __init__(self, model) -> None:
        self._answers = EmbeddingZeroShot(model)
        self.name, self.identity = "test:top-1", f"top-1:{model.identity}"

    def zero_shot(self, images, text_groups) -> ZeroShotResult:
        return ZeroShotResult(best=self._answers.zero_shot(images, text_groups).best)


def save_people(model, names, folder: Path, photos: int = 3) -> Path:
    for name in names:
        person = folder / name.replace(" ", "_")
        person.mkdir(parents=True)
        for v in range(photos):
            model.photo(name, v).save(person / f"{v}.png")
    return folder


def test_a_closed_box_gets_the_face_tests_top1_version_against_reference_people(
    knowing_model, tmp_path
):
    others = sample_decoys(40, default_pool(), seed=7)  # people the model does not know
    model = type(knowing_model)(knowing_model.people + others, known=knowing_model.known)
    reference = save_people(model, model.people, tmp_path / "reference")
    attack = IdentityInferenceAttack(TopAnswerOnly(model), crop="none", num_names=200, seed=1,
                                     progress=False)
    assert not isinstance(attack.classifier, EmbeddedClassifier)
    photos = [model.photo("Adrianne León", v) for v in range(3)]
    # her first name is in no name list and the drawn photos show no face dlib could read:
    # her sex is given (without it the face test is not run, see test_claims)
    known = attack.check(photos, "Adrianne León", reference=reference, sex="f")
    face = known.claims["face_association"]
    assert face.tested and face.method.startswith("top-1 hits (closed box)")
    assert face.statistic == 21, "every template names her on each of her photos"
    # no reference person's photos are called her as often: the smallest p the null allows
    assert face.n_null == known.n_reference_people >= 20
    assert face.p_value == pytest.approx(1 / (1 + face.n_null)) and face.holds(0.05)
    assert known.member and known.mean_real_rank is None, "no scores, no ranks"
    # the familiarity of name parts needs the text tower: no decoys matched on it
    assert not known.claims["name_familiarity"].tested
    assert known.name_null["key"] == "closed_box"
    assert not known.claims["text_only"].tested, "the text tower is out of reach"
    unknown = attack.check([model.photo("Jane Doe", v) for v in range(3)], "Jane Doe",
                           reference=reference)
    assert unknown.claims["face_association"].tested
    assert not unknown.claims["face_association"].holds(0.05) and not unknown.member
    prepared = attack.reference_set(reference)  # prepared once; a closed box encodes nothing
    assert prepared.embeddings == {} and not prepared.encoded_for(attack.classifier)
    again = attack.check(photos, "Adrianne León", reference=prepared, sex="f")
    assert again.claims == known.claims


# --- The factory: loading, card and cache, apart from the attack ----------------------------


@pytest.fixture
def carded_model(tiny_open_clip, tmp_path) -> str:
    """A spec of the tiny model (copied) with a card beside it: whole photos, margin 0.1."""
    config, checkpoint = tiny_open_clip
    folder = tmp_path / "model"
    folder.mkdir()
    shutil.copy(config, folder / config.name)
    shutil.copy(checkpoint, folder / "checkpoint.pt")
    write_card(ModelCard(name="Carded tiny model", crop="none", face_margin=0.1),
               folder / "checkpoint.pt")
    return f"open_clip:{folder / config.name}:{folder / 'checkpoint.pt'}"


def test_a_spec_string_loads_the_model_with_its_card(carded_model, tmp_path):
    attack = create_attack(carded_model, cache_dir=tmp_path / "cache", progress=False)
    assert attack.card is not None and attack.card.name == "Carded tiny model"
    assert (attack.crop, attack.face_margin) == ("none", 0.1), "the card's photo settings"
    assert attack.model_label == "Carded tiny model" and attack.warnings == []
    assert isinstance(attack.classifier, EmbeddedClassifier)
    assert attack.cache is not None and attack.cache.directory == tmp_path / "cache"
    model, card, warnings = load_model_and_card(carded_model, progress=False)
    assert card == attack.card and warnings == []
    assert model.identity == attack.classifier.identity
    # the loaded model object carries no card: photos are face crops, as for any model
    bare = create_attack(model, use_cache=False, progress=False)
    assert bare.card is None and bare.cache is None and bare.crop == "face"
    assert bare.model_label == bare.model_name
    held = IdentityInferenceAttack(model, card=card, progress=False)  # holds what it is given
    assert (held.crop, held.face_margin, held.cache) == ("none", 0.1, None)


def test_the_attack_takes_loaded_things_and_the_factory_one_meaning_per_cache_value(
    knowing_model, tmp_path, monkeypatch
):
    with pytest.raises(TypeError, match="create_attack"):
        IdentityInferenceAttack("open_clip:ViT-B-32:laion400m_e32")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="use_cache=False"):
        create_attack(knowing_model, cache_dir=False)  # type: ignore[arg-type]
    with pytest.raises(AttackInputError, match="spec string"):
        create_attack(knowing_model, precision="fp32")
    missing = f"open_clip:{tmp_path / 'missing.json'}:{tmp_path / 'missing.pt'}"
    with pytest.raises(AttackInputError, match="threshold 22 exceeds"):  # before any load
        create_attack(missing, threshold=22, cache_dir=tmp_path / "never")
    with pytest.raises(TypeError, match="num_name"):
        create_attack(missing, num_name=10)
    assert not (tmp_path / "never").exists()
    monkeypatch.setenv("IDIA_CACHE_DIR", str(tmp_path / "default"))
    photo = knowing_model.photo("Jane Doe")
    held = IdentityInferenceAttack(knowing_model, crop="none", num_names=50, name_decoys=200,
                                   progress=False)
    held.check([photo], "Jane Doe")
    assert held.cache is None and not (tmp_path / "default").exists(), "no cache unless given"
    given = EmbeddingCache(tmp_path / "given")
    attack = IdentityInferenceAttack(knowing_model, cache=given, crop="none", num_names=50,
                                     name_decoys=200, progress=False)
    attack.check([photo], "Jane Doe")
    assert attack.cache is given
    assert cache_info(tmp_path / "given")["texts"] == attack.classifier.encoded_texts
    assert create_attack(knowing_model).cache.directory == tmp_path / "default"
    assert create_attack(knowing_model, cache_dir=tmp_path / "c").cache.directory == (
        tmp_path / "c")
    assert create_attack(knowing_model, use_cache=False).cache is None


# --- check --candidates RUN: the run folder through RunFolder -------------------------------


def test_a_check_reads_the_audits_candidates_through_the_run_folder(knowing_model, tmp_path):
    people = save_people(knowing_model, knowing_model.people, tmp_path / "people")
    attack = IdentityInferenceAttack(knowing_model, crop="none", num_names=60, seed=5,
                                     progress=False)
    run_audit(attack, people, tmp_path / "run", log=lambda m: None)
    photos = sorted((people / "Conan_O'Brien").iterdir())
    result = attack.check(photos, "Conan O'Brien", candidates=tmp_path / "run")
    assert result.n_candidates == 60 and result.candidate_source.startswith(
        f"audit run {tmp_path / 'run'} (")
    assert result.seed == 5 and result.extra["audit_run"] == str(tmp_path / "run")
    (tmp_path / "run" / "results.parquet").unlink()  # a run still under way will do
    unfinished = attack.check(photos, "Conan O'Brien", candidates=tmp_path / "run")
    assert unfinished.score == result.score
    (tmp_path / "run" / "config.json").unlink()
    with pytest.raises(AttackInputError, match="not an idia run folder: missing config.json"):
        attack.check(photos, "Conan O'Brien", candidates=tmp_path / "run" / "candidates.parquet")
    with pytest.raises(AttackInputError, match="run folder not found"):
        attack.check(photos, "Conan O'Brien", candidates=tmp_path / "nowhere")
