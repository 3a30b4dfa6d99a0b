"""The face test against the public reference (LFW's lookalikes) and its fixes: sex told by the
face, never "everyone"; the photo cap; the top-1 version asked with the tested name and the
decoys only; a NaN statistic is not tested. Real faces from the small LFW copy (``lfw_small``),
a model that knows chosen LFW people by their photos."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from idia import IdentityInferenceAttack, claims
from idia.cache import EmbeddingCache, cache_info, image_key
from idia.cli import app
from idia.face_descriptors import describe_paths
from idia.face_reference import PublicReference, UnavailableReference
from idia.faces import load_image
from idia.lookalikes import sex_by_face, sexes_by_face
from idia.models import ZeroShotResult
from idia.models.card import ModelCard
from idia.names import normalize_name as normalize
from idia.reference_faces import cache_path
from idia.zeroshot import EmbeddingZeroShot

pytestmark = pytest.mark.shared_data
SEX = {"f": "women", "m": "men"}


def _unit(text: str, dim: int = 64) -> np.ndarray:
    seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
    vector = np.random.default_rng(seed).normal(size=dim)
    return vector / np.linalg.norm(vector)


class LFWKnowingModel:
    """An EmbeddingModel that knows chosen LFW people: a photo's embedding is its owner's
    direction (found by its pixels) plus photo noise plus a direction all faces share; a
    known person's name points at their direction, any other name anywhere."""

    name = "test:lfw-knowing"
    logit_scale = 100.0

    def __init__(self, owners: dict[str, str], known: Sequence[str]) -> None:
        self.owners, self.known = owners, set(known)
        self.identity = "lfw-knowing-" + ",".join(sorted(known))
        self.image_calls = 0

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        self.image_calls += len(images)
        out = []
        for image in images:
            key = image_key(image)
            vector = _unit(f"person:{self.owners[key]}") + 0.5 * _unit(f"noise:{key}") + _unit(
                "face")
            out.append(vector / np.linalg.norm(vector))
        return np.stack(out).astype(np.float32)

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        out = []
        for text in texts:
            named = [p for p in self.known if p in text]
            vector = _unit(f"text:{text}")
            if named:
                vector = _unit(f"person:{named[0]}") + 0.2 * vector
            out.append(vector / np.linalg.norm(vector))
        return np.stack(out).astype(np.float32)


@pytest.fixture(scope="module")
def public(lfw_small, tmp_path_factory) -> PublicReference:
    return PublicReference.load(f"lfw:{lfw_small}", cache_dir=tmp_path_factory.mktemp("faces"),
                                workers=1)


@pytest.fixture(scope="module")
def owners(public) -> dict[str, str]:
    return {image_key(load_image(photo)): person.name
            for person in public.lfw.people for photo in person.photos}


def photos_of(public: PublicReference, name: str) -> list:
    return list(next(p for p in public.lfw.people if p.name == name).photos)


def test_sexes_by_face_is_sex_by_face_for_every_person(public) -> None:
    everyone = sexes_by_face(public.means, public.name_sexes)
    one_by_one = [sex_by_face(public.means[i : i + 1], public.means, public.name_sexes)
                  for i in range(len(public.means))]
    assert everyone.tolist() == one_by_one
    assert set(everyone) <= {"f", "m"}


def test_a_known_face_is_linked_against_its_lookalikes_and_others_are_not(public, owners,
                                                                           tmp_path) -> None:
    model = LFWKnowingModel(owners, ["Serena Williams"])
    attack = IdentityInferenceAttack(model, crop="none", num_names=60, progress=False,
                                     cache=EmbeddingCache(tmp_path / "cache"))
    serena = photos_of(public, "Serena Williams")
    known = attack.check(serena, "Serena Williams", reference=public)
    face = known.claims["face_association"]
    assert face.tested and face.null == claims.LOOKALIKE_NULL
    women = int(((public.face_sexes == "f")
                 & np.array([p.name != "Serena Williams" for p in public.lfw.people])).sum())
    # every other woman (by face) is a lookalike (k = 1,000 is more than the set has), minus
    # anyone too close to her to be someone else
    assert 1 <= face.n_null <= women and known.n_reference_people == face.n_null
    assert face.p_value == pytest.approx(1 / (1 + face.n_null)) == face.p_floor
    assert face.reference.startswith("Labeled Faces in the Wild (15 people, 38 photos")
    assert "women (this person's sex from the first name" in face.matching
    stranger = attack.check(serena, "Jane Doe", reference=public)  # a name it does not know
    assert stranger.claims["face_association"].tested
    assert stranger.claims["face_association"].p_value > face.p_value
    # the public photos' embeddings are cached, the person's own photos never (unasked)
    stored = cache_info(tmp_path / "cache")
    assert stored["images"] == 0 and stored["reference_images"] >= face.n_null
    calls = model.image_calls
    again = attack.check(serena, "Serena Williams", reference=public)
    assert again.claims == known.claims
    assert model.image_calls - calls == len(serena), "only her own photos are encoded again"


def test_lookalikes_and_photos_follow_the_photo_cap(public) -> None:
    """m = min(P, m*): every side shows m photos; m* is the most photos k references have."""
    descriptors = describe_paths(photos_of(public, "Serena Williams")).vectors
    counts = dict(zip([p.name for p in public.lfw.people], public.counts, strict=True))
    plan = public.plan(descriptors, "Serena Williams", "f", "first name", n_photos=4, seed=0,
                       k=3)
    women = [p.name for p, s in zip(public.lfw.people, public.face_sexes, strict=True)
             if s == "f" and p.name != "Serena Williams"]
    m_star = max(m for m in range(1, 5) if sum(counts[n] >= m for n in women) >= 3)
    assert plan.n_photos == min(4, m_star) and len(plan.own_photos) == plan.n_photos
    chosen = [public.lfw.people[j].name for j in plan.people]
    assert set(chosen) <= set(women) and all(counts[n] >= plan.n_photos for n in chosen)
    assert all(len(photos) == plan.n_photos for photos in plan.photos)
    assert np.all(np.diff(plan.distances) >= 0), "nearest first"
    # a reference person shows the same photos whoever is checked (seeded by their name),
    # and fewer photos are a part of more
    for j, photos in zip(plan.people, plan.photos, strict=True):
        assert photos == public.photos_of(j, plan.n_photos, seed=0)
        assert set(public.photos_of(j, 1, seed=0)) <= set(photos)
    one = public.plan(descriptors, "Serena Williams", "f", "first name", n_photos=1, seed=0)
    assert one.n_photos == 1, "never more photos than the person has"


def test_an_unknown_sex_is_told_from_the_face(public) -> None:
    descriptors = describe_paths(photos_of(public, "Serena Williams")).vectors
    plan = public.plan(descriptors, "Qzx Williams", None, "first name", n_photos=4, seed=0)
    assert plan.sex_source == "face" and plan.sex == public.sex_of(descriptors)
    assert all(public.face_sexes[j] == plan.sex for j in plan.people)
    faceless = public.plan(np.full((2, 128), np.nan), "Qzx Williams", None, "first name", 2, 0)
    assert isinstance(faceless, str) and "no face" in faceless


def test_an_unknown_sex_never_falls_back_to_everyone_in_a_folder(public, owners) -> None:
    """The old check compared a person whose first name the lists do not know with every
    reference person, both sexes; now with those of the sex their face shows."""
    attack = IdentityInferenceAttack(LFWKnowingModel(owners, []), crop="none", num_names=60,
                                     progress=False)
    folder = attack.reference_set(public.lfw.folder)
    result = attack.check(photos_of(public, "Serena Williams"), "Qzx Williams", reference=folder)
    face = result.claims["face_association"]
    sex = folder.sex_of(describe_paths(photos_of(public, "Serena Williams")).vectors)
    expected = sum(s == sex for s in folder.sexes())
    assert face.tested and face.n_null == expected < len(folder.people)
    assert "of this person's sex" in face.matching


class TopAnswerOnly:
    """A closed box: only the top answer of an embedding model."""

    def __init__(self, model) -> None:
        self._answers = EmbeddingZeroShot(model)
        self.name, self.identity = "test:top-1", f"top-1:{model.identity}"

    def zero_shot(self, images, text_groups) -> ZeroShotResult:
        return ZeroShotResult(best=self._answers.zero_shot(images, text_groups).best)


def test_the_top1_face_test_asks_reference_photos_without_other_real_names(
    familiarity_model, familiarity_people, tmp_path
) -> None:
    """Among an audit's candidates, a reference person's own name (a member's) takes the top
    slot on their photos, so a name the model knows only as text (it wins on any face) wins
    there less than on its owner's photos: the old test called such a person "linked"."""
    from idia.names import infer_sex

    familiar = familiarity_people["familiar"][0]
    sex = infer_sex(familiar)
    linked = [n for n in familiarity_people["associated"] if infer_sex(n) == sex][:12]
    folder = tmp_path / "reference"
    for name in linked:
        (folder / name.replace(" ", "_")).mkdir(parents=True)
        for v in range(3):
            familiarity_model.photo(name, v).save(folder / name.replace(" ", "_") / f"{v}.png")
    attack = IdentityInferenceAttack(TopAnswerOnly(familiarity_model), crop="none",
                                     num_names=300, seed=0, progress=False)
    audit_like = attack.candidates([familiar, *linked])
    photos = [familiarity_model.photo(familiar, v) for v in range(3)]
    result = attack.check(photos, familiar, candidates=audit_like, reference=folder, sex=sex)
    face = result.claims["face_association"]
    assert face.tested and face.n_null == len(linked)
    # it wins on their faces as on the person's own: the statistics tie (the old test ranked
    # the person above every reference, p = 1/13)
    assert face.p_conservative > 0.5
    restricted, real = attack.face_candidates(audit_like, audit_like.index_of(familiar))
    assert restricted.names == (familiar, *audit_like.names[audit_like.n_real :]) and real == 0


def test_a_nan_statistic_is_not_tested_never_the_smallest_p_value() -> None:
    reference = np.array([0.1, 0.5, np.nan, 0.3])
    result = claims.face_test(np.nan, reference)
    assert not result.tested and "could not be computed" in result.reason
    p, _, _ = claims.rank_p_values(np.array([np.nan, 0.4]), np.array([[0.1, 0.2]] * 2))
    assert np.isnan(p[0]) and p[1] == pytest.approx(1 / 3)
    # a NaN reference value is left out of the null, not counted as below the person
    counted = claims.face_test(0.4, reference)
    assert counted.n_null == 3 and counted.p_value == pytest.approx(2 / 4)


def test_a_lab_model_keeps_its_own_people_as_reference(familiarity_model, tmp_path) -> None:
    (tmp_path / "people").mkdir()
    card = ModelCard(name="lab", crop="none", trained_on={"people": "people"}, folder=tmp_path)
    attack = IdentityInferenceAttack(familiarity_model, card=card, progress=False)
    assert attack.default_reference() == (tmp_path / "people").resolve()
    assert IdentityInferenceAttack(familiarity_model, progress=False).default_reference() == "lfw"


def test_cli_check_uses_the_public_reference_by_default(public, lfw_small, tiny_open_clip,
                                                        tmp_path, monkeypatch) -> None:
    config, checkpoint = tiny_open_clip
    monkeypatch.setenv("SCIKIT_LEARN_DATA", str(lfw_small))  # 'lfw' finds the copy there
    cache = tmp_path / "cache"
    args = ["check", *map(str, photos_of(public, "Colin Powell")), "--name", "Colin Powell",
            "--model", f"open_clip:{config}:{checkpoint}", "--crop", "none", "--num-names", "40",
            "--cache-dir", str(cache)]
    runner = CliRunner()
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    face = json.loads(result.stdout)["claims"]["face_association"]
    assert face["tested"] and face["n_null"] >= 1
    assert face["p_floor"] == pytest.approx(1 / (1 + face["n_null"]))
    assert face["reference"].startswith("Labeled Faces in the Wild (15 people")
    assert "men (this person's sex" in face["matching"]
    assert cache_info(cache)["images"] == 0 and cache_info(cache)["reference_images"] > 0
    assert cache_path(public.key, public.faces.encoder, cache).is_file()
    text = " ".join(runner.invoke(app, args).stdout.split())
    assert "Face test reference: Labeled Faces in the Wild" in text and "(floor" in text
    none = runner.invoke(app, [*args, "--json", "--reference", "none"])
    assert not json.loads(none.stdout)["claims"]["face_association"]["tested"]
    missing = runner.invoke(app, [*args, "--reference", f"lfw:{tmp_path / 'nowhere'}"])
    assert missing.exit_code != 0 and "scikit-learn's layout" in missing.output


def test_an_audit_can_use_the_public_reference(public, owners, tmp_path) -> None:
    import shutil

    import pandas as pd

    from idia.audit import run_audit

    audited = ["Serena Williams", "Venus Williams", "Colin Powell", "Tony Blair"]
    people = tmp_path / "people"
    for name in audited:
        folder = name.replace(" ", "_")
        shutil.copytree(public.lfw.folder / folder, people / folder)
    membership = tmp_path / "membership.csv"
    membership.write_text("name,member,sex\nSerena Williams,1,f\nVenus Williams,0,f\n"
                          "Colin Powell,1,m\nTony Blair,0,m\n")
    model = LFWKnowingModel(owners, ["Serena Williams", "Colin Powell"])
    attack = IdentityInferenceAttack(model, crop="none", num_names=60, progress=False)
    run = tmp_path / "run"
    run_audit(attack, people, run, membership, reference=public, log=lambda _: None)
    results = pd.read_parquet(run / "results.parquet").set_index("name")
    keys = {normalize(n) for n in audited}
    for name in audited:
        sex = results.loc[name, "sex"]
        others = sum(s == sex and normalize(p.name) not in keys
                     for p, s in zip(public.lfw.people, public.face_sexes, strict=True))
        # lookalikes of the person's sex, never an audited person (whose name is a candidate)
        assert 1 <= results.loc[name, "n_face_reference"] <= others
        assert f"{SEX[sex]} (this person's sex from the membership table" in results.loc[
            name, "face_matching"]
    for member in ("Serena Williams", "Colin Powell"):
        assert results.loc[member, "p_face"] == pytest.approx(
            1 / (1 + results.loc[member, "n_face_reference"]))
    config = json.loads((run / "config.json").read_text())
    assert config["face_reference"]["key"] == public.key
    encoded = model.image_calls  # every photo at most once: the reference's for all four
    assert encoded <= public.lfw.n_photos
    again = run_audit(attack, people, run, membership, reference=public, log=lambda _: None)
    assert model.image_calls == encoded, "resumed: nothing attacked again"
    assert again["n_people"] == 4
    from idia.evaluation import load_run

    # evaluate's draws cannot redo this face test: they leave it out, never use the audited
    assert not load_run(run).claims.reference.any()


def test_the_web_page_uses_the_public_reference_for_models_without_a_lab(
    public, owners, lfw_small, tmp_path, monkeypatch
) -> None:
    from idia.serve.demo import WebDemo

    monkeypatch.setenv("IDIA_CACHE_DIR", str(tmp_path / "cache"))
    model = LFWKnowingModel(owners, ["Serena Williams"])
    demo = WebDemo({"knowing": model}, num_names=60, public_reference=f"lfw:{lfw_small}")
    lines: list[str] = []
    demo.prepare("knowing", log=lines.append)
    assert any("face test against Labeled Faces in the Wild" in line for line in lines)
    answer = demo.run("knowing", "Serena Williams", [str(p) for p in photos_of(
        public, "Serena Williams")], crop="none")
    assert "Labeled Faces in the Wild" in answer.verdict and "smallest p-value" in answer.verdict
    # the visitor's face is described in memory only: the cache holds public data alone
    assert [p.parent.name for p in (tmp_path / "cache").rglob("*") if p.is_file()] == [
        "reference-faces"]
    offline = WebDemo({"knowing": model}, num_names=60)  # 'lfw', absent here and not fetched
    assert isinstance(offline.public_reference(), UnavailableReference)
