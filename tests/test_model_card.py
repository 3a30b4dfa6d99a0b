"""Model cards: written beside a checkpoint, validated when read, and followed by check, audit
and the catalog (crop default, display name); a missing card changes nothing, a malformed
one nothing but a warning. Reference sets: prepared and encoded once, identical answers."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from idia.cli import app
from idia.engine import IdentityInferenceAttack, create_attack
from idia.faces import Photo
from idia.models.card import (
    CardError,
    ModelCard,
    card_path,
    find_card,
    parse_card,
    photo_settings,
    read_card,
    write_card,
    write_training_card,
)
from idia.serve.catalog import find_local_models, model_label


@pytest.fixture
def model_dir(tiny_open_clip, tmp_path) -> Path:
    """A copy of the tiny model in a folder of its own (so cards written there stay there)."""
    config, checkpoint = tiny_open_clip
    folder = tmp_path / "model"
    folder.mkdir()
    shutil.copy(config, folder / config.name)
    shutil.copy(checkpoint, folder / "checkpoint.pt")
    return folder


def spec_of(folder: Path) -> str:
    return f"open_clip:{folder / 'tiny-test-clip.json'}:{folder / 'checkpoint.pt'}"


def lab_card(folder: Path, crop: str = "none", name: str = "Tiny lab model") -> Path:
    """A card as ``idia lab`` writes it, for the model in ``folder``."""
    plan = folder.parent / "trainset" / "plan.json"
    plan.parent.mkdir(exist_ok=True)
    plan.write_text(json.dumps({"seed": 7, "training_pairs": 100, "injected_pairs": 40,
                                "members": 4, "non_members": 4, "inject": [1, 75]}))
    (folder.parent / "membership.csv").write_text("name,member,count\nAda Lovelace,true,75\n")
    return write_training_card(
        folder / "checkpoint.pt", folder / "tiny-test-clip.json", plan, name=name,
        made_by="idia lab", crop=crop, membership=folder.parent / "membership.csv",
        people=folder.parent / "people", audit_run=folder.parent / "run",
        copied_from=folder.parent / "trainset" / "epoch_1.pt", epochs=1,
    )


@pytest.fixture
def grey_wall(tmp_path) -> Path:
    """A photo without a face: usable only as a whole photo."""
    path = tmp_path / "wall.png"
    Image.new("RGB", (64, 64), (120, 120, 120)).save(path)
    return path


def test_a_card_is_written_beside_the_checkpoint_and_read_back(model_dir):
    path = lab_card(model_dir)
    assert path == model_dir / "checkpoint.card.json" == card_path(model_dir / "checkpoint.pt")
    data = json.loads(path.read_text())
    assert data["idia_model_card"] == 1 and data["name"] == "Tiny lab model"
    assert data["photos"] == {"crop": "none", "face_margin": 0.3}
    assert data["architecture"] == "tiny-test-clip" and data["image_size"] == 32
    assert data["checkpoint"]["file"] == "checkpoint.pt"
    assert data["checkpoint"]["bytes"] == (model_dir / "checkpoint.pt").stat().st_size
    assert data["checkpoint"]["copied_from"] == "../trainset/epoch_1.pt"
    trained = data["trained_on"]
    assert trained["made_by"] == "idia lab" and trained["seed"] == 7
    assert trained["members"] == 4 and trained["inject"] == [1, 75]
    assert len(trained["plan_sha256"]) == 64 and len(trained["membership_sha256"]) == 64
    assert trained["membership"] == "../membership.csv" and trained["people"] == "../people"
    card, problem = find_card(spec_of(model_dir))
    assert problem is None and card.name == "Tiny lab model" and card.crop == "none"
    assert card.path_of("membership") == (model_dir.parent / "membership.csv").resolve()
    assert card.path_of("audit_run") == (model_dir.parent / "run").resolve()


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda d: "{not json", "unreadable"),
        (lambda d: [1, 2], "not a JSON object"),
        (lambda d: {**d, "idia_model_card": 2}, "newer"),
        (lambda d: {k: v for k, v in d.items() if k != "idia_model_card"}, "format version"),
        (lambda d: {**d, "name": "/etc/passwd"}, "name"),
        (lambda d: {**d, "name": ""}, "name"),
        (lambda d: {**d, "photos": {"crop": "eyes"}}, "photos.crop"),
        (lambda d: {**d, "photos": {"crop": "face", "face_margin": "wide"}}, "face_margin"),
        (lambda d: {**d, "image_size": -3}, "image_size"),
        (lambda d: {**d, "checkpoint": {"file": "../x.pt"}}, "checkpoint.file"),
        (lambda d: {**d, "checkpoint": {"file": "checkpoint.pt", "bytes": 1}}, "size"),
        (lambda d: {**d, "checkpoint": {"file": "other.pt"}}, "describes other.pt"),
        (lambda d: {**d, "trained_on": "lots"}, "trained_on"),
    ],
)
def test_a_malformed_card_changes_nothing_but_a_warning(model_dir, grey_wall, caplog, change,
                                                        why):
    path = lab_card(model_dir)
    data = change(json.loads(path.read_text()))
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    card, problem = find_card(spec_of(model_dir))
    assert card is None and why in problem and "checkpoint.card.json ignored" in problem
    with caplog.at_level(logging.WARNING):
        attacker = create_attack(spec_of(model_dir), use_cache=False, progress=False)
    assert attacker.crop == "face" and attacker.card is None, "as without a card"
    assert why in caplog.text and attacker.warnings == [problem]
    assert model_label(spec_of(model_dir)) == "tiny-test-clip (checkpoint)"


def test_without_a_card_nothing_changes(model_dir, caplog):
    with caplog.at_level(logging.WARNING):
        attacker = create_attack(spec_of(model_dir), use_cache=False, progress=False)
    assert (attacker.crop, attacker.face_margin, attacker.warnings) == ("face", 0.3, [])
    assert caplog.text == "" and find_card(spec_of(model_dir)) == (None, None)
    assert find_card("open_clip:ViT-B-32:laion400m_e32") == (None, None)
    assert find_card("http://127.0.0.1:9") == (None, None)


def test_the_card_sets_the_crop_and_an_explicit_crop_wins_with_a_warning(model_dir, caplog):
    lab_card(model_dir, crop="none")
    attacker = create_attack(spec_of(model_dir), use_cache=False, progress=False)
    assert attacker.crop == "none" and attacker.model_label == "Tiny lab model"
    assert attacker.warnings == []
    with caplog.at_level(logging.WARNING):
        asked = create_attack(spec_of(model_dir), crop="face", face_margin=0.5, use_cache=False,
                              progress=False)
    assert (asked.crop, asked.face_margin) == ("face", 0.5)
    assert "says its photos are whole photos (--crop none); using --crop face" in caplog.text
    card = ModelCard(name="m", crop="face", face_margin=0.1)
    assert photo_settings(card, None, None) == ("face", 0.1, None)
    assert photo_settings(None, None, None) == ("face", 0.3, None)
    assert photo_settings(card, "face", None)[2] is None


def test_check_follows_the_card_and_shows_its_name(model_dir, grey_wall, tmp_path, caplog):
    """The lab's photos have faces YuNet rarely finds: with the card, a plain `idia check`
    uses whole photos, as the lab's audit did."""
    runner = CliRunner()
    common = ["check", str(grey_wall), "--name", "Ada Lovelace", "--model", spec_of(model_dir),
              "--num-names", "20", "--name-decoys", "200", "--cache-dir", str(tmp_path / "cache"),
              "--quiet"]
    before = runner.invoke(app, common)
    assert before.exit_code == 2 and "no face found" in before.output, "no card: face crops"
    lab_card(model_dir)
    result = runner.invoke(app, [*common, "--json"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["n_photos"] == 1 and answer["model"] == "Tiny lab model"
    assert answer["extra"]["model_spec"] == spec_of(model_dir)
    shown = runner.invoke(app, common)
    assert "Does Tiny lab model know 'Ada Lovelace'?" in shown.stdout
    with caplog.at_level(logging.WARNING):  # on stderr outside pytest, which takes the log
        asked = runner.invoke(app, [*common, "--crop", "face"])
    assert asked.exit_code == 2 and "no face found" in asked.output
    assert "using --crop face as asked" in caplog.text


def test_audit_follows_the_card(model_dir, grey_wall, tmp_path):
    people = tmp_path / "people" / "Ada_Lovelace"
    people.mkdir(parents=True)
    shutil.copy(grey_wall, people / "1.png")
    command = ["audit", "--people", str(people.parent), "--model", spec_of(model_dir),
               "--num-names", "20", "--name-decoys", "200", "--cache-dir",
               str(tmp_path / "cache"), "--quiet"]
    lab_card(model_dir)
    result = CliRunner().invoke(app, [*command, "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "run" / "config.json").read_text())["crop"] == "none"


def test_certify_follows_the_original_models_card_on_both_models(model_dir, grey_wall, tmp_path):
    """The unlearned copy has no card: both models still see what the original's card says
    (whole photos); certify takes check's attack options."""
    unlearned = tmp_path / "unlearned"
    shutil.copytree(model_dir, unlearned)
    (unlearned / "unlearn.json").write_text(json.dumps({"model": spec_of(unlearned)}))
    command = ["certify", str(grey_wall), "--name", "Ada Lovelace", "--model", spec_of(model_dir),
               "--unlearned", str(unlearned), "--out", str(tmp_path / "certificate.html"),
               "--num-names", "20", "--templates", "0,2", "--precision", "fp32",
               "--name-decoys", "200", "--cache-dir", str(tmp_path / "cache"), "--json"]
    runner = CliRunner()
    before = runner.invoke(app, command)
    assert before.exit_code == 2 and "no face found" in before.output, "no card: face crops"
    lab_card(model_dir)
    result = runner.invoke(app, command)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["settings"]["crop"] == "none"
    assert data["original"]["n_photos"] == data["unlearned"]["n_photos"] == 1
    assert len(data["original"]["templates"]) == len(data["unlearned"]["templates"]) == 2
    assert data["original"]["model"] == "Tiny lab model"


def test_the_catalog_shows_the_cards_name_and_prefers_carded_models(model_dir, tmp_path):
    training_copy = tmp_path / "trainset"
    training_copy.mkdir(exist_ok=True)
    shutil.copy(model_dir / "tiny-test-clip.json", training_copy / "tiny-test-clip.json")
    shutil.copy(model_dir / "checkpoint.pt", training_copy / "epoch_1.pt")
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(model_dir / "tiny-test-clip.json", other / "tiny-test-clip.json")
    shutil.copy(model_dir / "checkpoint.pt", other / "newest.pt")  # newer, but no card
    lab_card(model_dir)
    assert model_label(spec_of(model_dir)) == "Tiny lab model"
    found = find_local_models([tmp_path])
    assert found == [
        f"open_clip:{(model_dir / 'tiny-test-clip.json').resolve()}:"
        f"{(model_dir / 'checkpoint.pt').resolve()}",
        f"open_clip:{(other / 'tiny-test-clip.json').resolve()}:{(other / 'newest.pt').resolve()}",
    ], "the carded model first; the checkpoint it was copied from is not offered twice"


def test_write_card_refuses_a_name_fit_for_no_one(model_dir):
    with pytest.raises(CardError):
        write_card(ModelCard(name="a/b", crop="none"), model_dir / "checkpoint.pt")
    with pytest.raises(CardError):
        read_card(model_dir / "missing.card.json")
    card = parse_card({"idia_model_card": 1, "name": "x", "photos": {"crop": "face"}})
    assert (card.crop, card.face_margin, card.path_of("people")) == ("face", 0.3, None)


# --- Reference sets ------------------------------------------------------------------------


class Counting:
    """Wraps an EmbeddingModel and counts the photos it encodes."""

    def __init__(self, model) -> None:
        self.model, self.images = model, 0
        self.name, self.identity, self.logit_scale = model.name, model.identity, 100.0

    def encode_images(self, images):
        self.images += len(images)
        return self.model.encode_images(images)

    def encode_texts(self, texts):
        return self.model.encode_texts(texts)


def test_a_reference_set_is_encoded_once_and_answers_alike(
    familiarity_model, familiarity_people, tmp_path
):
    names = familiarity_people["unknown"][:30] + familiarity_people["associated"][:2]
    for name in names:
        folder = tmp_path / "reference" / name.replace(" ", "_")
        folder.mkdir(parents=True)
        for v in range(3):
            familiarity_model.photo(name, v).save(folder / f"{v}.png")
    model = Counting(familiarity_model)
    attacker = IdentityInferenceAttack(model, crop="none", num_names=100, name_decoys=200,
                                       progress=False)
    references = attacker.reference_set(tmp_path / "reference")
    assert model.images == 3 * len(names) and references.n_photos == 3 * len(names)
    for name in familiarity_people["associated"][:2] + familiarity_people["unknown"][:1]:
        photos = [familiarity_model.photo(name, v) for v in range(3)]
        model.images = 0
        kept = attacker.check(photos, name, reference=references)
        assert model.images == 3, "only the person's own photos are encoded"
        again = attacker.check(photos, name, reference=tmp_path / "reference")
        assert kept.claims == again.claims and kept.n_reference_people == again.n_reference_people
        assert kept.n_reference_people < len(names), "the person is never their own reference"
    face_crops = IdentityInferenceAttack(model, crop="face", num_names=100, name_decoys=200,
                                         progress=False)
    photo = familiarity_model.photo(names[-1], 0)
    result = face_crops.assess([Photo("x", "ok", image=photo)], names[-1], reference=references)
    assert not result.claims["face_association"].tested
    assert "whole photos" in result.claims["face_association"].reason
    assert np.isfinite(result.claims["name_familiarity"].p_value)
