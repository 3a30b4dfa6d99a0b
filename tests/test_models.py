"""Backends load through the public spec path, safely, and the text fast path is exact."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from idia.models import ModelLoadError, load_model, parse_spec
from idia.models.openclip import OpenCLIPModel
from idia.prompts import PAPER_TEMPLATES, render_prompts

NAMES = ["Adrianne León", "Lin-Manuel Miranda", "Conan O'Brien", "Al", "Mary-Kate Olsen-Smith"]


def test_parse_spec():
    assert parse_spec("open_clip:ViT-B-32:laion400m_e32") == (
        "open_clip", "ViT-B-32", "laion400m_e32")
    assert parse_spec("open_clip:/m/cfg.json:/m/epoch_3.pt") == (
        "open_clip", "/m/cfg.json", "/m/epoch_3.pt")
    assert parse_spec("open_clip:hf-hub:timm/x") == ("open_clip", "hf-hub:timm/x", None)
    assert parse_spec("hf:openai/clip-vit-base-patch32")[1] == "openai/clip-vit-base-patch32"
    for bad in ("ViT-B-32", "torch:x", "open_clip:"):
        with pytest.raises(ModelLoadError):
            parse_spec(bad)


def test_open_clip_train_checkpoint_loads_through_the_spec(tiny_open_clip):
    config, checkpoint = tiny_open_clip
    model = load_model(f"open_clip:{config}:{checkpoint}", device="cpu")
    saved = torch.load(checkpoint, weights_only=True)["state_dict"]
    loaded = model.model.state_dict()
    assert all(torch.equal(loaded[k[len("module."):]], v) for k, v in saved.items())
    assert model.fast_text
    image = model.encode_images([Image.new("RGB", (50, 70), "red")])
    assert image.shape == (1, 32) and abs(np.linalg.norm(image) - 1) < 1e-5
    again = load_model(f"open_clip:{config}:{checkpoint}", device="cpu")
    assert again.identity == model.identity, "identity is stable across loads"


def test_identity_changes_with_the_weights(tiny_open_clip, tmp_path):
    config, checkpoint = tiny_open_clip
    state = torch.load(checkpoint, weights_only=True)
    key = next(iter(state["state_dict"]))
    state["state_dict"][key] = state["state_dict"][key] + 1
    other = tmp_path / "other.pt"
    torch.save(state, other)
    a = load_model(f"open_clip:{config}:{checkpoint}", device="cpu")
    b = load_model(f"open_clip:{config}:{other}", device="cpu")
    assert a.identity != b.identity


def test_fast_text_path_equals_the_padded_path(tiny_open_clip):
    config, checkpoint = tiny_open_clip
    fast = load_model(f"open_clip:{config}:{checkpoint}", device="cpu")
    padded = OpenCLIPModel(fast.model, fast.preprocess, fast.tokenizer, fast_text=False)
    assert fast.fast_text and not padded.fast_text
    prompts = render_prompts(PAPER_TEMPLATES, NAMES)
    a, b = fast.encode_texts(prompts), padded.encode_texts(prompts)
    assert np.abs(a - b).max() < 1e-5
    images = fast.encode_images([Image.new("RGB", (40, 40), c) for c in ("red", "navy", "gray")])
    groups_a = np.einsum("nd,gkd->ngk", images, a.reshape(21, len(NAMES), -1)).argmax(-1)
    groups_b = np.einsum("nd,gkd->ngk", images, b.reshape(21, len(NAMES), -1)).argmax(-1)
    assert np.array_equal(groups_a, groups_b)


def test_fast_path_is_refused_for_bidirectional_towers():
    import open_clip

    config = {
        "embed_dim": 16,
        "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16,
                       "head_width": 16},
        "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2,
                     "layers": 1, "no_causal_mask": True, "pool_type": "last"},
        "custom_text": True,
    }
    model = open_clip.CustomTextCLIP(**{k: v for k, v in config.items() if k != "custom_text"})
    wrapped = OpenCLIPModel(model, lambda im: torch.zeros(3, 32, 32),
                            open_clip.get_tokenizer("ViT-B-32", context_length=16))
    assert not wrapped.fast_text
    assert wrapped.encode_texts(["a photo of Al"]).shape == (1, 16)


def test_bad_specs_say_what_to_do(tiny_open_clip, tmp_path):
    config, _ = tiny_open_clip
    with pytest.raises(ModelLoadError, match="unknown open_clip architecture"):
        load_model("open_clip:ViT-Nope-99:laion400m_e32")
    with pytest.raises(ModelLoadError, match="neither a checkpoint file nor"):
        load_model("open_clip:ViT-B-32:no_such_tag")
    with pytest.raises(ModelLoadError, match="not found"):
        load_model(f"open_clip:{tmp_path / 'missing.json'}:x.pt")
    with pytest.raises(ModelLoadError, match="could not load"):
        wrong = tmp_path / "wrong.pt"
        torch.save({"state_dict": {"foo": torch.zeros(2)}}, wrong)
        load_model(f"open_clip:{config}:{wrong}")
    with pytest.raises(ModelLoadError, match="could not load the Hugging Face model"):
        load_model(f"hf:{tmp_path / 'empty_dir_that_is_missing'}")


class _Boom:
    def __reduce__(self):
        return (print, ("arbitrary code ran",))


def test_checkpoints_are_loaded_without_arbitrary_pickles(tiny_open_clip, tmp_path):
    config, checkpoint = tiny_open_clip
    state = torch.load(checkpoint, weights_only=True)
    state["payload"] = _Boom()
    evil = tmp_path / "evil.pt"
    with evil.open("wb") as handle:
        pickle.dump(state, handle)
    with pytest.raises(ModelLoadError):
        load_model(f"open_clip:{config}:{evil}")


def _hf_tokenizer_files(folder: Path) -> None:
    """CLIP's BPE vocabulary (shipped by open_clip) in the files transformers reads."""
    from open_clip.tokenizer import SimpleTokenizer

    simple = SimpleTokenizer()
    rename = {"<start_of_text>": "<|startoftext|>", "<end_of_text>": "<|endoftext|>"}
    vocab = {rename.get(k, k): v for k, v in simple.encoder.items()}
    (folder / "vocab.json").write_text(json.dumps(vocab))
    merges = sorted(simple.bpe_ranks, key=simple.bpe_ranks.get)
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges))


@pytest.fixture(scope="module")
def tiny_hf_clip(tmp_path_factory) -> Path:
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTokenizer

    folder = tmp_path_factory.mktemp("hf_clip")
    _hf_tokenizer_files(folder)
    torch.manual_seed(0)
    small = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
             "num_attention_heads": 2}
    config = CLIPConfig(
        text_config={**small, "vocab_size": 49408, "max_position_embeddings": 77},
        vision_config={**small, "image_size": 32, "patch_size": 8},
        projection_dim=16,
    )
    CLIPModel(config).save_pretrained(folder)
    CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt")).save_pretrained(folder)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
                       ).save_pretrained(folder)
    return folder


def test_hf_clip_loads_from_a_folder_and_dynamic_padding_is_exact(tiny_hf_clip):
    model = load_model(f"hf:{tiny_hf_clip}", device="cpu")
    assert not model.fixed_padding
    prompts = render_prompts(PAPER_TEMPLATES[:6], NAMES)
    dynamic = model.encode_texts(prompts)
    model.fixed_padding = True  # pad everything to 77, as the slow path would
    padded = model.encode_texts(prompts)
    assert np.abs(dynamic - padded).max() < 1e-5
    images = model.encode_images([Image.new("RGB", (64, 48), "green")])
    assert images.shape == (1, 16)


def test_siglip_keeps_fixed_padding(tmp_path):
    from transformers import CLIPImageProcessor, CLIPTokenizer, SiglipConfig, SiglipModel

    from idia.models.hf import HFCLIPModel

    _hf_tokenizer_files(tmp_path)
    small = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
             "num_attention_heads": 2}
    config = SiglipConfig(
        text_config={**small, "vocab_size": 49410, "max_position_embeddings": 16},
        vision_config={**small, "image_size": 32, "patch_size": 16},
    )
    tokenizer = CLIPTokenizer(str(tmp_path / "vocab.json"), str(tmp_path / "merges.txt"))
    processor = CLIPImageProcessor(size={"shortest_edge": 32},
                                   crop_size={"height": 32, "width": 32})
    model = HFCLIPModel(SiglipModel(config), tokenizer, processor, device="cpu")
    assert model.fixed_padding and model.max_length == 16
    vectors = model.encode_texts(["a photo of Al", "a photo of Mary-Kate Olsen-Smith"])
    assert vectors.shape == (2, 32)
