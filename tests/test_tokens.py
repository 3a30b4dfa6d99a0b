"""Remembered token ids: exactly what the tokenizer gives, each text tokenized once per
tokenizer, shared by the models that load the same tokenizer, bounded in memory."""

from __future__ import annotations

import numpy as np
import open_clip
import pytest
import torch
from open_clip.tokenizer import SimpleTokenizer

from idia.models.openclip import OpenCLIPModel
from idia.models.tokens import TokenMemo, remembering

TEXTS = [
    "a photo of Adrianne León.", "actor Lin-Manuel Miranda", "Conan O'Brien", "",
    "an image of 박지성 at work", "Ａｎｄｒé &amp; friends",
    " ".join(["word"] * 100),  # longer than the context: truncated, no padding
]


class Counting:
    def __init__(self, tokenizer) -> None:
        self.tokenizer, self.seen = tokenizer, []

    def __call__(self, texts):
        self.seen.extend(texts)
        return self.tokenizer(texts)


def test_the_memo_gives_exactly_what_the_tokenizer_gives_and_tokenizes_each_text_once():
    tokenizer = SimpleTokenizer()
    counting = Counting(tokenizer)
    memo = TokenMemo(counting)
    first = memo(TEXTS[:4])
    assert torch.equal(first, tokenizer(TEXTS[:4])) and first.dtype == torch.long
    mixed = TEXTS[::-1] + TEXTS[:2]  # seen and unseen texts, and repeats
    assert torch.equal(memo(mixed), tokenizer(mixed))
    assert torch.equal(memo(TEXTS), tokenizer(TEXTS))  # all from memory
    assert sorted(counting.seen) == sorted(TEXTS), "each text tokenized once"
    assert memo([]).shape == tokenizer([]).shape


def test_the_memo_forgets_its_oldest_texts_past_its_bound():
    counting = Counting(SimpleTokenizer())
    memo = TokenMemo(counting, max_texts=8)
    texts = [f"a photo of person {i}" for i in range(9)]
    memo(texts)
    assert len(memo) == 6, "past the bound, a quarter of it is kept free"
    counting.seen.clear()
    assert torch.equal(memo(texts[-6:]), SimpleTokenizer()(texts[-6:]))
    assert counting.seen == [], "the newest stay"
    memo(texts[:1])
    assert counting.seen == texts[:1], "the oldest went"
    with pytest.raises(ValueError, match="at least 1"):
        TokenMemo(counting, max_texts=0)


def test_models_of_one_config_share_the_tokenizer_and_its_memo(tiny_open_clip):
    config, checkpoint = tiny_open_clip
    one = OpenCLIPModel.from_spec(str(config), str(checkpoint), device="cpu")
    two = OpenCLIPModel.from_spec(str(config), "random", device="cpu")
    assert one.tokenizer is two.tokenizer
    assert remembering(one.tokenizer) is remembering(two.tokenizer)
    prompts = ["a photo of Jane Doe.", "actor Max Mustermann"]
    two.encode_texts(prompts)  # remembered: the first model reads them from memory
    unshared = OpenCLIPModel(one.model, one.preprocess, open_clip.get_tokenizer(config.stem))
    assert unshared.tokenizer is not one.tokenizer
    np.testing.assert_array_equal(one.encode_texts(prompts), unshared.encode_texts(prompts))
