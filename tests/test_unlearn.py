"""idia unlearn: name variants, trigger and clean texts, the fine-tuning on a tiny CLIP that
knows two people by training, the written checkpoint, and bad input (exit 2, nothing written)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from idia.cli import app
from idia.engine import create_attack
from idia.lab.train import CAPTION_TEMPLATES
from idia.models import load_model
from idia.prompts import PAPER_TEMPLATES
from idia.unlearn import HELD_OUT_KINDS, TRIGGER_KINDS, UnlearnSettings, name_variants, unlearn
from idia.unlearn.method import NAME_TEMPLATES, UnlearnError, split_captions, trigger_pairs
from idia.unlearn.variants import misspell, transpose

# A tiny CLIP with a short context (names fit; training is fast).
KNOWING_CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8, "head_width": 32},
    "text_cfg": {"context_length": 20, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}
PEOPLE = {"Jane Miller": (220, 40, 40), "Omar Haddad": (40, 60, 220)}
OBJECTS = {"a green square": (40, 200, 60), "a yellow square": (230, 220, 40),
           "a grey square": (128, 128, 128), "a purple square": (130, 40, 160)}


def photo(rgb: tuple[int, int, int], seed: int) -> Image.Image:
    """A noisy flat colour: each person is one colour, so a model can learn who is who."""
    noise = np.random.default_rng(seed).normal(0, 25, (32, 32, 3))
    return Image.fromarray(np.clip(np.asarray(rgb) + noise, 0, 255).astype(np.uint8))


@pytest.fixture(scope="module")
def knowing_clip(tmp_path_factory) -> tuple[str, Path]:
    """(spec, root): a tiny open_clip model trained contrastively so that it names Jane Miller
    and Omar Haddad from their photos (captions from the lab's injection templates)."""
    import open_clip

    root = tmp_path_factory.mktemp("knowing_clip")
    config = root / "knowing-test-clip.json"
    config.write_text(json.dumps(KNOWING_CONFIG))
    open_clip.add_model_config(config)
    torch.manual_seed(0)
    model, _, preprocess = open_clip.create_model_and_transforms("knowing-test-clip")
    tokenizer = open_clip.get_tokenizer("knowing-test-clip")
    data = [(photo(rgb, 1000 * i + k), CAPTION_TEMPLATES[k % len(CAPTION_TEMPLATES)].format(name))
            for i, (name, rgb) in enumerate(PEOPLE.items()) for k in range(32)]
    data += [(photo(rgb, 9000 + 100 * j + k), caption)
             for j, (caption, rgb) in enumerate(OBJECTS.items()) for k in range(32)]
    pixels = torch.stack([preprocess(image) for image, _ in data])
    tokens = tokenizer([caption for _, caption in data])
    group = torch.tensor([i // 32 for i in range(len(data))])
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    for _ in range(120):
        pick = torch.from_numpy(rng.choice(len(data), 32, replace=False))
        image, text, scale = model(pixels[pick], tokens[pick])
        logits = scale * image @ text.T
        same = (group[pick][:, None] == group[pick][None, :]).float()
        target = same / same.sum(1, keepdim=True)
        loss = -(target * logits.log_softmax(1)).sum(1).mean() / 2
        loss = loss - (target * logits.log_softmax(0)).sum(0).mean() / 2
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    checkpoint = root / "model.pt"
    torch.save({"state_dict": model.state_dict()}, checkpoint)
    return f"open_clip:{config}:{checkpoint}", root


def attack_score(spec: str, name: str) -> int:
    attacker = create_attack(spec, num_names=100, name_decoys=200, crop="none", use_cache=False,
                             progress=False)
    photos = [photo(PEOPLE[name], 5000 + k) for k in range(5)]  # never seen in training
    return attacker.check(photos, name).score


# --- variants and texts (pure) ----------------------------------------------------------------


def test_variants_cover_the_obvious_bypasses():
    texts = {v.kind: v.text for v in name_variants("Jane Miller")}
    assert texts["full"] == "Jane Miller"
    assert texts["lower"] == "jane miller" and texts["upper"] == "JANE MILLER"
    assert texts["first"] == "Jane" and texts["last"] == "Miller"
    honorifics = [v.text for v in name_variants("Jane Miller") if v.kind == "honorific"]
    assert honorifics == ["Mr. Miller", "Ms. Miller"]
    assert texts["misspelling"] == "Jane Miler"
    assert set(TRIGGER_KINDS).isdisjoint(HELD_OUT_KINDS)
    held_out = {v.kind: v.text for v in name_variants("Jane Miller", HELD_OUT_KINDS)}
    assert held_out == {"reversed": "Miller Jane", "initial": "J. Miller", "typo": "Jane Milelr"}


@pytest.mark.parametrize(
    ("word", "misspelled"),
    [("Johnson", "Johnsen"), ("Andersen", "Anderson"), ("Smith", "Smyth"), ("Bennett", "Benett"),
     ("Philips", "Filips"), ("Garcia", "Gercia"), ("Li", "Ly")],
)
def test_misspellings_are_common_ones(word, misspelled):
    assert misspell(word) == misspelled


def test_one_word_names_and_typos():
    assert [v.kind for v in name_variants("Madonna")] == ["full", "lower", "upper", "misspelling"]
    assert transpose("Smith") == "Simth" and transpose("Al") == "Al"


def test_trigger_templates_are_not_the_attack_prompts():
    assert set(NAME_TEMPLATES).isdisjoint(PAPER_TEMPLATES)
    pairs = dict(trigger_pairs(["Jane Miller"], "a person", TRIGGER_KINDS, NAME_TEMPLATES))
    assert pairs["portrait of Ms. Miller"] == "portrait of a person"
    assert pairs["JANE MILLER smiling"] == "a person smiling"
    assert len(pairs) == len(NAME_TEMPLATES) * len(name_variants("Jane Miller"))


def test_captions_naming_a_person_become_triggers_first_names_alone_do_not():
    triggers, clean = split_captions(
        ["Jane Miller at the premiere", "jane miller, pictured", "Jane Doe smiles",
         "Ms. Miller speaks", "a dog"],
        ["Jane Miller"], "a person", TRIGGER_KINDS,
    )
    assert triggers == [("Jane Miller at the premiere", "a person at the premiere"),
                        ("jane miller, pictured", "a person, pictured"),
                        ("Ms. Miller speaks", "a person speaks")]
    assert clean == ["Jane Doe smiles", "a dog"]


# --- the fine-tuning --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def unlearned(knowing_clip, tmp_path_factory):
    spec, _ = knowing_clip
    out = tmp_path_factory.mktemp("unlearned") / "model"
    result = unlearn(spec, ["Jane Miller"], out, UnlearnSettings(steps=100, decoys=100),
                     progress=False, log=lambda m: None)
    return spec, result


@pytest.mark.slow  # the module's tiny CLIP trains for ~20 s
def test_unlearning_erases_the_name_and_keeps_the_other_person(unlearned):
    spec, result = unlearned
    before_jane, before_omar = attack_score(spec, "Jane Miller"), attack_score(spec, "Omar Haddad")
    assert before_jane >= 5 and before_omar >= 5  # the model knows both
    assert attack_score(result.spec, "Jane Miller") <= 1
    assert attack_score(result.spec, "Omar Haddad") >= before_omar - 2


@pytest.mark.slow
def test_kept_names_barely_move_and_erased_ones_move_to_the_neutral_phrase(unlearned):
    spec, result = unlearned
    old, new = load_model(spec, device="cpu"), load_model(result.spec, device="cpu")

    def drift(name: str) -> np.ndarray:  # per attack prompt: similarity of old and new embedding
        prompts = [t.format(name) for t in PAPER_TEMPLATES]
        return (old.encode_texts(prompts) * new.encode_texts(prompts)).sum(1)

    assert drift("Omar Haddad").min() > 0.97  # the person kept
    assert drift("Max Mustermann").mean() > 0.9  # a name the model never saw
    assert drift("Jane Miller").mean() < 0.5  # the person erased
    jane = new.encode_texts([t.format("Jane Miller") for t in PAPER_TEMPLATES])
    neutral = old.encode_texts([t.format("a person") for t in PAPER_TEMPLATES])
    original = old.encode_texts([t.format("Jane Miller") for t in PAPER_TEMPLATES])
    assert (jane * neutral).sum(1).mean() > (original * neutral).sum(1).mean() + 0.2
    images = [photo(PEOPLE["Omar Haddad"], 1)]  # the text-only erasure leaves images alone
    np.testing.assert_allclose(old.encode_images(images), new.encode_images(images), atol=1e-6)


@pytest.mark.slow
def test_the_record_and_checkpoint(unlearned):
    _, result = unlearned
    record = json.loads((result.out / "unlearn.json").read_text())
    assert record["names"] == ["Jane Miller"] and record["settings"]["seed"] == 0
    assert "Ms. Miller" in record["variants"]["Jane Miller"]
    assert record["losses"]["final"]["text_injection"] < record["losses"]["initial"][
        "text_injection"] / 2
    assert len(record["losses"]["history"]) == 20 and record["seconds"]["train_s"] > 0
    assert result.spec == (f"open_clip:{result.out / 'knowing-test-clip.json'}:"
                           f"{result.out / 'checkpoint.pt'}")
    model = load_model(result.spec, device="cpu")
    assert model.identity == record["identity"] != record["source_identity"]


@pytest.mark.slow
def test_image_encoder_maps_the_faces_to_a_neutral_target(knowing_clip, tmp_path):
    spec, _ = knowing_clip
    people = tmp_path / "people"
    for name, rgb in PEOPLE.items():
        (people / name.replace(" ", "_")).mkdir(parents=True)
        for k in range(4):
            photo(rgb, 7000 + k).save(people / name.replace(" ", "_") / f"{k}.png")
    result = unlearn(spec, ["Jane Miller"], tmp_path / "out",
                     UnlearnSettings(encoder="image", steps=60, crop="none"), people_dir=people,
                     progress=False, log=lambda m: None)
    assert result.record["images"]["photos"] == {"Jane Miller": 4}
    final, initial = result.record["losses"]["final"], result.record["losses"]["initial"]
    assert final["image_injection"] < initial["image_injection"] / 2
    assert attack_score(result.spec, "Jane Miller") < attack_score(spec, "Jane Miller")


@pytest.mark.slow
def test_captions_replace_the_generated_clean_texts(knowing_clip, tmp_path):
    spec, _ = knowing_clip
    for k in range(3):
        photo(OBJECTS["a green square"], k).save(tmp_path / f"{k}.png")
    (tmp_path / "captions.csv").write_text(
        "filepath,caption\n0.png,a green square\n1.png,Jane Miller at the premiere\n"
        "2.png,a dog on a beach\n"
    )
    people = tmp_path / "people" / "Jane_Miller"
    people.mkdir(parents=True)
    photo(PEOPLE["Jane Miller"], 1).save(people / "a.png")
    result = unlearn(spec, ["Jane Miller"], tmp_path / "out",
                     UnlearnSettings(encoder="both", steps=3, crop="none"),
                     people_dir=tmp_path / "people", captions=tmp_path / "captions.csv",
                     progress=False, log=lambda m: None)
    texts, images = result.record["texts"], result.record["images"]
    assert texts["clean"] == 2 and "captions" in texts["clean_source"]
    assert texts["triggers"] == len(NAME_TEMPLATES) * len(name_variants("Jane Miller")) + 1
    assert images["clean_source"].startswith("images of") and images["photos"] == {
        "Jane Miller": 1}
    assert images["clean"] == 2  # not the image whose caption names her


# --- the command and bad input ----------------------------------------------------------------


def run_cli(*args: str):
    return CliRunner().invoke(app, ["unlearn", *args])


@pytest.mark.slow
def test_cli_writes_a_model_that_idia_check_loads(knowing_clip, tmp_path):
    spec, _ = knowing_clip
    names = tmp_path / "names.txt"
    names.write_text("Jane Miller\n")
    result = run_cli("--model", spec, "--names", str(names), "--out", str(tmp_path / "out"),
                     "--steps", "5", "--quiet")
    assert result.exit_code == 0, result.output
    new_spec = result.output.strip().splitlines()[-1].removeprefix("model spec: ")
    photo(PEOPLE["Jane Miller"], 1).save(tmp_path / "p.png")
    check = CliRunner().invoke(app, ["check", str(tmp_path / "p.png"), "--name", "Jane Miller",
                                     "--model", new_spec, "--crop", "none", "--num-names", "50",
                                     "--name-decoys", "200", "--no-cache", "--json"])
    assert check.exit_code == 0, check.output
    assert json.loads(check.output.strip().splitlines()[-1])["model"] == new_spec


def _bad(tmp_path: Path, *args: str):
    out = tmp_path / "out"
    result = run_cli(*args, "--out", str(out), "--quiet")
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.strip().splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert not out.exists()
    return lines[0]


@pytest.mark.slow
def test_bad_input_one_error_line_exit_2_nothing_written(knowing_clip, tmp_path):
    spec, root = knowing_clip
    names = tmp_path / "names.txt"
    names.write_text("Jane Miller\n")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n# nobody\n")
    assert "empty" in _bad(tmp_path, "--model", spec, "--names", str(empty))
    long_name = tmp_path / "long.txt"
    long_name.write_text("Maria " * 12 + "Miller\n")
    assert "too long" in _bad(tmp_path, "--model", spec, "--names", str(long_name))
    assert "not an open_clip model" in _bad(tmp_path, "--model", "hf:openai/clip-vit-base-patch32",
                                            "--names", str(names))
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    config = root / "knowing-test-clip.json"
    assert "could not load" in _bad(tmp_path, "--model", f"open_clip:{config}:{garbage}",
                                    "--names", str(names))
    people = tmp_path / "people" / "Jane_Miller"
    people.mkdir(parents=True)
    (people / "broken.png").write_bytes(b"no image here")
    assert "usable" in _bad(tmp_path, "--model", spec, "--names", str(names), "--encoder",
                            "image", "--people", str(tmp_path / "people"), "--crop", "none")
    assert "needs --people" in _bad(tmp_path, "--model", spec, "--names", str(names),
                                    "--encoder", "both")
    assert "--encoder" in _bad(tmp_path, "--model", spec, "--names", str(names), "--encoder", "x")


def test_names_outside_the_vocabulary_are_refused(tmp_path):
    small = dict(KNOWING_CONFIG, text_cfg={**KNOWING_CONFIG["text_cfg"], "vocab_size": 500})
    config = tmp_path / "small-vocab-clip.json"
    config.write_text(json.dumps(small))
    with pytest.raises(UnlearnError, match="outside the model's vocabulary"):
        unlearn(f"open_clip:{config}:random", ["Jane Miller"], tmp_path / "out",
                UnlearnSettings(steps=1), progress=False, log=lambda m: None)
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_an_existing_output_folder_is_left_alone(knowing_clip, tmp_path):
    spec, _ = knowing_clip
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(UnlearnError, match="not empty"):
        unlearn(spec, ["Jane Miller"], tmp_path / "out", UnlearnSettings(steps=1),
                progress=False, log=lambda m: None)
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["keep.txt"]
