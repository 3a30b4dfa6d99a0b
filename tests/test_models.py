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


# Precision: the paper computed in fp32; a GPU's autocast may flip near-ties.


def test_precision_changes_the_numbers_and_the_identity(tiny_open_clip):
    config, checkpoint = tiny_open_clip
    spec = f"open_clip:{config}:{checkpoint}"
    auto = load_model(spec, device="cpu")
    fp32 = load_model(spec, device="cpu", precision="fp32")
    bf16 = load_model(spec, device="cpu", precision="bf16")
    assert (auto.precision, fp32.precision, bf16.precision) == ("fp32", "fp32", "bf16")
    assert auto.identity == fp32.identity != bf16.identity, "precision is in the cache key"
    prompts = render_prompts(PAPER_TEMPLATES[:3], NAMES)
    images = [Image.new("RGB", (40, 40), c) for c in ("red", "navy")]
    assert np.array_equal(auto.encode_texts(prompts), fp32.encode_texts(prompts))
    text_gap = np.abs(fp32.encode_texts(prompts) - bf16.encode_texts(prompts)).max()
    image_gap = np.abs(fp32.encode_images(images) - bf16.encode_images(images)).max()
    assert 0 < text_gap < 0.1 and 0 < image_gap < 0.1, (text_gap, image_gap)


def test_hf_backend_takes_a_precision(tiny_hf_clip):
    fp32 = load_model(f"hf:{tiny_hf_clip}", device="cpu", precision="fp32")
    fp16 = load_model(f"hf:{tiny_hf_clip}", device="cpu", precision="fp16")
    assert fp32.identity != fp16.identity
    prompts = ["a photo of Al", "actor Conan O'Brien"]
    assert 0 < np.abs(fp32.encode_texts(prompts) - fp16.encode_texts(prompts)).max() < 0.1


def test_auto_precision_is_fp32_on_cpu_and_half_on_cuda(monkeypatch):
    from idia.models.torch_utils import numerics, precision_tag, resolve_precision

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert resolve_precision("auto", cpu) == resolve_precision(None, cpu) == "fp32"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert resolve_precision("auto", cuda) == "bf16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert resolve_precision("auto", cuda) == "fp16"
    assert resolve_precision("fp32", cuda) == "fp32" and resolve_precision("bf16", cpu) == "bf16"
    assert precision_tag(cuda, "bf16") == "cuda-bf16" and precision_tag(cpu, "fp32") == "cpu-fp32"
    with pytest.raises(ValueError, match="fp32, bf16, fp16"):
        resolve_precision("fp64", cpu)
    # fp32 on CUDA means fp32: no TF32 inside, the caller's settings restored after
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    try:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        with numerics(cuda, "fp32"):
            assert not torch.backends.cuda.matmul.allow_tf32
            assert not torch.backends.cudnn.allow_tf32
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved
    with numerics(cpu, "bf16"):
        assert torch.is_autocast_enabled("cpu")
    with numerics(cpu, "fp32"):
        assert not torch.is_autocast_enabled("cpu")


def test_precision_through_the_attack_and_the_cli(tiny_open_clip, tmp_path):
    from typer.testing import CliRunner

    from idia import create_attack
    from idia.cli import app
    from idia.engine import AttackInputError

    config, checkpoint = tiny_open_clip
    spec = f"open_clip:{config}:{checkpoint}"
    attack = create_attack(spec, device="cpu", precision="bf16", use_cache=False,
                                     progress=False)
    assert attack.classifier.model.precision == "bf16"
    with pytest.raises(AttackInputError, match="spec string"):
        create_attack(attack.classifier.model, precision="fp32")
    with pytest.raises(ModelLoadError, match="fp32, bf16, fp16"):
        load_model(spec, precision="fp64")
    with pytest.raises(ModelLoadError, match="in-process models only"):
        load_model("http://127.0.0.1:9", precision="fp32")
    photo = tmp_path / "me.png"
    Image.new("RGB", (40, 40), "red").save(photo)
    runner = CliRunner()
    base = ["check", str(photo), "--name", "Jane Doe", "--model", spec, "--crop", "none",
            "--num-names", "20", "--name-decoys", "200", "--json", "--cache-dir",
            str(tmp_path / "c")]
    result = runner.invoke(app, [*base, "--precision", "fp16"])
    assert result.exit_code == 0, result.output
    bad = runner.invoke(app, [*base, "--precision", "fp64"])
    assert bad.exit_code == 2 and "error:" in bad.output and "fp64" in bad.output
