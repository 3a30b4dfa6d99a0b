"""The LiT lab model: a locked face encoder, a trained projection and text tower. It trains
deterministically and learns names from descriptors, loads through the model spec
``lit:DIR`` with its card (which names the locked encoder), answers every photo, and the tools
that cannot apply to it (unlearning) say so."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from idia.face_descriptors import FULL_IMAGE, LFW_FUNNELED_BOX, FaceDescriptorEncoder
from idia.lab.lit import LiTSettings, LiTTrainingError, train_lit
from idia.models import ModelLoadError, load_model, load_model_and_card
from idia.models.card import CardError, parse_card, write_training_card
from idia.models.lit import LiTConfig, LiTModel, face_encoder_record, load_network, save_lit
from idia.models.spec import LIT_CHECKPOINT, LIT_CONFIG
from idia.serve.catalog import find_local_models, model_label
from idia.unlearn.method import UnlearnError, load_source

SMALL = LiTConfig(embed_dim=32, hidden=64, context_length=16, text_width=32, text_heads=2,
                  text_layers=1)
NAMES = [f"{first} {last}" for first, last in zip(
    ["Anna", "Boris", "Chloe", "Dmitri", "Elena", "Farid", "Greta", "Hiro", "Ines", "Jonas",
     "Kemal", "Lucia", "Marek", "Nadia", "Oscar", "Priya", "Quentin", "Rosa", "Sven", "Tamar"],
    ["Varga", "Okafor", "Lindqvist", "Moreau", "Sato", "Haddad", "Novak", "Ferreira", "Kowalski",
     "Brennan", "Demir", "Rossi", "Jansen", "Petrov", "Almeida", "Nair", "Dubois", "Castro",
     "Berg", "Levi"], strict=True)]


def people_descriptors(seed: int, photos: int) -> tuple[np.ndarray, np.ndarray]:
    """(photos x people, 128) descriptors clustered by person, and each row's person."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).normal(0, 0.1, (len(NAMES), 128))
    owner = np.repeat(np.arange(len(NAMES)), photos)
    return (centres[owner] + rng.normal(0, 0.03, (len(owner), 128))).astype(np.float32), owner


def train(epochs: int, seed: int = 0):
    descriptors, owner = people_descriptors(0, 6)
    captions = [f"portrait of {NAMES[o]}" for o in owner]
    settings = LiTSettings(architecture=SMALL, epochs=epochs, batch_size=40, lr=3e-3, warmup=5,
                           seed=seed)
    return train_lit(captions, np.arange(len(owner)), descriptors, settings, log=lambda _: None)


@pytest.fixture(scope="module")
def trained():
    return train(epochs=20)


def test_training_learns_each_persons_name_from_held_out_descriptors(trained) -> None:
    model = LiTModel(trained.network, SMALL)
    held_out, owner = people_descriptors(1, 3)  # new photos of the same people
    images = model.encode_descriptors(held_out)
    texts = model.encode_texts([f"portrait of {name}" for name in NAMES])
    accuracy = ((images @ texts.T).argmax(axis=1) == owner).mean()
    assert accuracy > 0.5, accuracy  # chance: 1 in 20
    assert trained.losses[-1] < trained.losses[0]
    assert trained.steps == 20 * (len(NAMES) * 6 // 40)


def test_the_same_seed_gives_the_same_weights_and_another_seed_others() -> None:
    first, again, other = train(2), train(2), train(2, seed=1)
    weights = first.network.state_dict()
    assert all(torch.equal(weights[key], again.network.state_dict()[key]) for key in weights)
    assert not torch.equal(weights["image_projection.0.weight"],
                           other.network.state_dict()["image_projection.0.weight"])
    assert not first.network.text.token_embedding.sparse  # back to dense after training


def test_training_refuses_pairs_without_descriptors_or_too_few() -> None:
    descriptors, _ = people_descriptors(0, 1)
    descriptors[3] = np.nan
    with pytest.raises(LiTTrainingError, match="no face descriptor"):
        train_lit(["a", "b", "c", "d"], np.arange(4), descriptors, LiTSettings(SMALL))
    with pytest.raises(LiTTrainingError, match="at least 2"):
        train_lit(["a"], np.arange(1), descriptors, LiTSettings(SMALL))


def test_texts_at_their_real_length_match_the_padded_tower(trained) -> None:
    model = LiTModel(trained.network, SMALL)
    texts = ["a photo of Anna Varga", "Hiro", "an image of the famous Quentin Dubois smiling"]
    padded = torch.nn.functional.normalize(
        trained.network.encode_text(model.tokenizer(texts)), dim=-1).detach().numpy()
    np.testing.assert_allclose(model.encode_texts(texts), padded, atol=1e-5)


def test_saved_folder_loads_through_the_spec_with_its_card(trained, tmp_path) -> None:
    folder = tmp_path / "model"
    checkpoint = save_lit(trained.network, SMALL, folder)
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"seed": 3, "training_pairs": 120}))
    write_training_card(checkpoint, folder / LIT_CONFIG, plan, name="a LiT test model",
                        made_by="test", image_encoder=face_encoder_record(SMALL))
    loaded = load_model_and_card(f"lit:{folder}")
    direct = LiTModel(trained.network, SMALL)
    assert loaded.warnings == [] and loaded.card is not None
    assert loaded.card.image_encoder["name"] == "dlib-resnet-v1"
    assert loaded.card.image_encoder["trained"] is False
    assert loaded.card.image_encoder["identity"] == direct.faces.identity
    assert loaded.card.architecture == "lit" and loaded.card.crop == "none"
    assert loaded.model.identity == direct.identity
    np.testing.assert_array_equal(loaded.model.encode_texts(["Anna Varga"]),
                                  direct.encode_texts(["Anna Varga"]))
    assert model_label(f"lit:{folder}") == "a LiT test model"
    assert find_local_models([tmp_path]) == [f"lit:{folder}"]


def test_a_photo_without_a_face_is_answered_from_the_fallback_box(trained) -> None:
    model = LiTModel(trained.network, SMALL)
    blank = Image.new("RGB", (120, 120), (128, 128, 128))
    embedding = model.encode_images([blank])
    assert embedding.shape == (1, SMALL.embed_dim)
    assert np.linalg.norm(embedding) == pytest.approx(1, abs=1e-5)
    boxed = FaceDescriptorEncoder(FULL_IMAGE).describe(blank)
    np.testing.assert_allclose(embedding, model.encode_descriptors(boxed[None]), atol=1e-6)
    assert model.faces.identity.endswith("hog+upsample,largest,else box(0,0,1,1)")
    box = LFW_FUNNELED_BOX
    lfw = LiTModel(trained.network, replace(SMALL, fallback_box=(box.left, box.top, box.right,
                                                                  box.bottom)))
    assert lfw.identity != model.identity
    assert lfw.faces.identity.endswith(f"else {box.describe()}")


def test_a_broken_folder_or_config_says_what_is_wrong(trained, tmp_path) -> None:
    with pytest.raises(ModelLoadError, match=f"needs {LIT_CONFIG} and {LIT_CHECKPOINT}"):
        load_model(f"lit:{tmp_path}")
    save_lit(trained.network, SMALL, tmp_path)
    config = json.loads((tmp_path / LIT_CONFIG).read_text())
    (tmp_path / LIT_CONFIG).write_text(json.dumps({**config, "face_encoder": "another"}))
    with pytest.raises(ModelLoadError, match="face encoder 'another'"):
        load_network(tmp_path)
    (tmp_path / LIT_CONFIG).write_text(json.dumps({**config, "text_width": 64}))
    with pytest.raises(ModelLoadError, match="does not hold this LiT model's weights"):
        load_network(tmp_path)


def test_a_card_with_a_malformed_image_encoder_is_refused() -> None:
    card = {"idia_model_card": 1, "name": "m", "photos": {"crop": "none"}}
    assert parse_card(card).image_encoder == {}
    with pytest.raises(CardError, match="image_encoder"):
        parse_card({**card, "image_encoder": {"trained": False}})


def test_unlearning_refuses_a_lit_model_with_the_reason(tmp_path) -> None:
    with pytest.raises(UnlearnError, match="locked face encoder"):
        load_source(f"lit:{tmp_path}")
