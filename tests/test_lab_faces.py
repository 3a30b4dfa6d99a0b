"""``idia lab --faces``, quick preset, end to end on a small LFW-layout folder of real people
copied from ../shared/data: the summary has the synthetic lab's rules, the model card names
the locked face encoder, held-out photos stay out of training, LFW's descriptors are cached
(a user's people folder's never), ``idia audit`` reproduces the verdicts through the spec
``lit:DIR``, and the web page shows no real person's photos."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from idia import reference_faces
from idia.cli import app
from idia.lab.defence import DefenceError, read_lab
from idia.lab.faces import (
    FACES_PRESETS,
    describe_selection,
    faces_source,
    run_faces_lab,
    select_people,
    sexes_of,
)
from idia.models.card import read_card
from idia.reference_faces import CACHE_SUBDIR
from idia.serve.catalog import find_local_models
from idia.serve.demo import WebDemo
from idia.serve.markdown import examples_markdown

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]

TESTED, PHOTOS, OTHERS = 12, 9, 30  # people under test x photos (6 held out), corpus people


@pytest.fixture(scope="module")
def lfw_folder(shared_data, tmp_path_factory) -> Path:
    """DIR/lfw_home/lfw_funneled/<Name>/...: the first 12 LFW people with 9 or more photos (9
    copied each) and the first 30 with fewer (up to 2 copied each)."""
    source = shared_data / "faces" / "lfw" / "lfw_home" / "lfw_funneled"
    root = tmp_path_factory.mktemp("lfw_lab")
    target = root / "lfw_home" / "lfw_funneled"
    many, few = [], []
    for folder in sorted(p for p in source.iterdir() if p.is_dir()):
        photos = sorted(folder.glob("*.jpg"))
        if len(photos) >= PHOTOS and len(many) < TESTED:
            many.append(photos[:PHOTOS])
        elif len(photos) < PHOTOS and len(few) < OTHERS:
            few.append(photos[:2])
        if len(many) == TESTED and len(few) == OTHERS:
            break
    for photos in many + few:
        (target / photos[0].parent.name).mkdir(parents=True)
        for photo in photos:
            shutil.copyfile(photo, target / photo.parent.name / photo.name)
    return root


@pytest.fixture(scope="module")
def faces_lab(lfw_folder, origin_cache, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("faces_lab") / "lab"
    summary = run_faces_lab(out, f"lfw:{lfw_folder}", "quick", seed=0, log=lambda _: None,
                            cache_dir=origin_cache)
    return out, summary


def test_the_summary_has_the_synthetic_labs_rules(faces_lab) -> None:
    out, summary = faces_lab
    counts = {"1", "5", "10", "25", "50", "75"}
    assert set(summary["tpr_by_count"]) == counts
    assert (summary["n_members"], summary["n_non_members"]) == (6, 6)
    rules = summary["rules"]
    for rule in ("paper", "name_familiarity", "face_association", "text_only", "any_claim"):
        for key in ("tpr", "fpr", "auc", "tpr_by_count", "tpr_ci", "fpr_ci"):
            assert key in rules[rule], (rule, key)
        assert (rules[rule]["n_members"], rules[rule]["n_non_members"]) == (6, 6)
        assert set(rules[rule]["tpr_by_count"]) == counts
    assert "auc" in rules["face_blind"]
    assert set(summary["null_calibration"]) == {"name_familiarity", "face_association",
                                                "text_only"}
    # real faces through a locked face encoder: members are told from non-members
    assert rules["paper"]["tpr"] > rules["paper"]["fpr"]
    assert rules["face_association"]["auc"] > 0.5
    assert summary["synthetic"] is False and summary["model"] == f"lit:{out / 'model'}"
    faces = summary["faces"]
    assert faces["source"] == "lfw" and faces["people_under_test"] == TESTED
    assert faces["corpus_people"] == OTHERS and faces["descriptors_cached"] is True
    assert sum(faces["sex_from"].values()) == TESTED and faces["sex_from"]["declared"] == 0
    for path in ("report.html", "run/evaluation.json", "people.csv", "membership.csv"):
        assert (out / path).is_file(), path


def test_the_card_names_the_locked_face_encoder(faces_lab) -> None:
    out, summary = faces_lab
    card = read_card(out / "model" / "checkpoint.card.json")
    assert card.architecture == "lit" and card.crop == "none"
    assert card.image_encoder["name"] == "dlib-resnet-v1"
    assert card.image_encoder["trained"] is False
    assert card.image_encoder["identity"] == summary["faces"]["face_encoder"]
    assert card.image_encoder["faces"].endswith("else box(0.25,0.3,0.73,0.79)")  # LFW's box
    assert card.trained_on["real_people"] == {"source": "lfw", "photos_may_be_shown": False}
    assert card.path_of("people") == out / "people" and card.path_of("audit_run") == out / "run"


def test_held_out_photos_never_trained_on_and_the_corpus_names_other_people(faces_lab) -> None:
    out, _ = faces_lab
    trained = pd.read_csv(out / "trainset" / "train.csv")
    trained_files = {Path(p).name for p in trained["filepath"]}
    held_out = {p.name for p in (out / "people").glob("*/*.jpg")}
    assert len(held_out) == TESTED * 6 and not trained_files & held_out
    membership = pd.read_csv(out / "membership.csv")
    tested = set(membership["name"])
    corpus = pd.read_csv(out / "trainset" / "train.csv")
    named_in_corpus = {Path(p).parent.name.replace("_", " ") for p in corpus["filepath"]}
    assert len(named_in_corpus - tested) == OTHERS
    non_members = membership.loc[~membership["member"], "name"]
    assert not any(name in caption for name in non_members for caption in trained["caption"])
    assert set(membership["sex"].dropna()) <= {"f", "m"}


def test_idia_audit_reproduces_the_verdicts_through_the_lit_spec(faces_lab, tmp_path) -> None:
    out, _ = faces_lab
    result = CliRunner().invoke(app, [
        "audit", "--people", str(out / "people"), "--model", f"lit:{out / 'model'}",
        "--membership", str(out / "membership.csv"), "--num-names", "300",
        "--name-decoys", "200", "--out", str(tmp_path / "run"), "--quiet",
        "--cache-dir", str(tmp_path / "c")])  # the quick preset's candidates and decoys
    assert result.exit_code == 0, result.output
    lab = pd.read_csv(out / "run" / "results.csv")
    again = pd.read_csv(tmp_path / "run" / "results.csv")
    for column in ("member", "score", "p_name", "p_face", "verdict"):
        pd.testing.assert_series_equal(lab[column], again[column])


def test_the_web_page_offers_the_model_but_shows_no_real_persons_photos(faces_lab) -> None:
    out, _ = faces_lab
    specs = find_local_models([out])
    assert specs == [f"lit:{out / 'model'}"]
    demo = WebDemo(specs)
    (label, lab), = demo.labs.items()
    assert lab.real_people and lab.examples == ()
    assert lab.people_dir == out / "people"  # still the face test's reference, never shown
    assert "not shown" in examples_markdown(label, lab)
    person = next(lab.people_dir.iterdir()).name.replace("_", " ")
    assert "Choose one of the examples" in demo.run_example(label, person).verdict


def test_lfw_descriptors_are_cached_and_a_people_folders_never(
    faces_lab, lfw_folder, origin_cache, tmp_path, monkeypatch
) -> None:
    cached = list((origin_cache / CACHE_SUBDIR).glob("*.npz"))
    assert len(cached) == 1 and cached[0].stat().st_mode & 0o777 == 0o600
    source = faces_source(f"lfw:{lfw_folder}")
    selection = select_people(source.people, FACES_PRESETS["quick"])
    monkeypatch.setattr(reference_faces, "describe_paths",
                        lambda *a, **k: pytest.fail("LFW described again"))
    again = describe_selection(source, [*selection.tested, *selection.corpus], origin_cache, 1)
    assert len(again) == TESTED * PHOTOS + sum(len(p.photos) for p in selection.corpus)
    monkeypatch.undo()
    people = selection.tested[:2]
    folder = tmp_path / "people"
    for person in people:
        shutil.copytree(person.folder, folder / person.folder.name)
    (folder / "people.csv").write_text(f"name,sex\n{people[0].name},female\n")
    own = faces_source(str(folder))
    assert not own.public
    described = describe_selection(own, own.people, tmp_path / "own-cache", workers=1)
    assert len(described) == 2 * PHOTOS and not (tmp_path / "own-cache").exists()
    sexes = sexes_of(own.people, own.declared_sexes, origin_cache)
    assert sexes[0] == ("f", "declared") and sexes[1][1] in ("name tables", "unknown")


def test_real_faces_labs_refuse_what_cannot_apply(faces_lab, tmp_path) -> None:
    out, _ = faces_lab
    with pytest.raises(DefenceError, match="locked face encoder"):
        read_lab(out)
    runner = CliRunner()
    result = runner.invoke(app, ["lab", "--faces", "lfw", "--defence", "unlearn",
                                 "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "synthetic labs only" in result.output
    result = runner.invoke(app, ["lab", "--threads", "1", "--out", str(tmp_path / "y")])
    assert result.exit_code == 2 and "with --faces" in result.output


def test_namesakes_on_real_faces_rename_corpus_people_of_their_sex() -> None:
    from idia.lab.controls import part_exposure
    from idia.lab.faces import corpus_namesakes
    from idia.people import Person

    def person(i: int, name: str) -> Person:
        return Person(i, name, Path(name), (Path(f"{name}/1.jpg"),))

    tested = [person(i, n) for i, n in enumerate(
        ["Anna Lind", "Tom Baker", "Mary Stone", "John Reed", "Lucy Hart", "Paul Wood",
         "Emma Frost", "Mark Hill"])]
    sexes = ["f", "m", "f", "m", "f", "m", "f", "m"]
    corpus = [person(i, f"Corpus Person{i}") for i in range(40)]
    corpus_sexes = ["f", "m"] * 20
    counts = {p.name: (5 if i < 4 else 0) for i, p in enumerate(tested)}
    renamed, namesakes = corpus_namesakes(tested, sexes, corpus, corpus_sexes, counts, seed=1)
    assert renamed == corpus_namesakes(tested, sexes, corpus, corpus_sexes, counts, seed=1)[0]
    carriers = [i for i, (old, new) in enumerate(zip(corpus, renamed, strict=True)) if old != new]
    assert len(carriers) == len(namesakes) > 0
    for namesake in namesakes:
        index = next(i for i in carriers if renamed[i].name == namesake.person.name)
        assert renamed[index].photos == corpus[index].photos, "a real face carries the name"
        assert corpus_sexes[index] == {"woman": "f", "man": "m"}[namesake.person.traits.gender]
    exposure = part_exposure([p.name for p in tested], [p.name for p in renamed])
    assert set(exposure["kind"]) == {"none", "first", "surname", "both"}
    assert not {p.name for p in tested} & {p.name for p in renamed}, "never the whole name"
    with pytest.raises(Exception, match="too few people of known sex"):
        corpus_namesakes(tested, sexes, corpus[:2], corpus_sexes[:2], counts, seed=1)
    mononym = [*tested, person(8, "Thalia")]  # real corpora have one-word names: no namesakes
    _, with_mononym = corpus_namesakes(mononym, [*sexes, "f"], corpus, corpus_sexes,
                                       {**counts, "Thalia": 5}, seed=1)
    assert "Thalia" not in {n.shares_with for n in with_mononym}
