"""Remembered token ids: exactly what the tokenizer gives, each text tokenized once per
tokenizer, shared by the models that load the same tokenizer, bounded in memory."""

from __future__ import annotations

import numpy as np
import open_clip
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from open_clip.tokenizer import SimpleTokenizer, basic_clean

from idia.models.openclip import OpenCLIPModel
from idia.models.tokens import TokenMemo, WordwiseTokenizer, remembering
from idia.prompts import PAPER_TEMPLATES, render_prompts

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


NAMES = [
    "Adrianne Leon", "Conan O'Brien", "Lin-Manuel Miranda", "T.J. Thyne", "Jr.", "R2 D2",
    "DOUBLE  Space", " padded ", "the CAT'S pyjamas", "<start_of_text> <end_of_text>",
    "A&B", "Tom &amp; Jerry", "<b>bold</b>", "tab\tname", "line\nbreak", "Adrianne León",
    "Ａｎｄｒé", "박지성", "Владимир", "x" * 300, "", "   ", "!!!", "'s 't 're", "Ann Lee's",
    "<b> &amp;amp;amp;",  # ftfy unescapes HTML only where no '<' is in the text: not word-wise
]


class CountingEncode:
    """A SimpleTokenizer whose encode calls are recorded."""

    def __init__(self) -> None:
        self.tokenizer, self.seen = SimpleTokenizer(), []

    def __getattr__(self, name):
        return getattr(self.tokenizer, name)

    def encode(self, text):
        self.seen.append(text)
        return self.tokenizer.encode(text)


def test_open_clips_tokenizer_is_tokenized_word_by_word_with_its_own_ids():
    prompts = render_prompts(PAPER_TEMPLATES, NAMES)
    counting = CountingEncode()
    wordwise = WordwiseTokenizer(counting, max_texts=1000)
    ids = wordwise(prompts)
    assert ids.dtype == torch.long and torch.equal(ids, SimpleTokenizer()(prompts))
    assert torch.equal(TokenMemo(SimpleTokenizer())(prompts), ids), "the memo takes this path"
    whole = {text for text in counting.seen if " " in text.strip()}
    assert whole and all(not text.isascii() or "&" in text or "\t" in text or "\n" in text
                         for text in whole), "printable ASCII without '&' goes word by word"
    assert len(set(counting.seen)) == len(counting.seen), "each word is encoded once"


def test_other_tokenizers_keep_their_own_path():
    canonical = SimpleTokenizer(clean="canonicalize")
    assert TokenMemo(canonical)._tokenize_unseen is canonical
    assert TokenMemo(SimpleTokenizer())._tokenize_unseen is not canonical
    spaced = SimpleTokenizer(additional_special_tokens=["<two words>"])
    assert TokenMemo(spaced)._tokenize_unseen is spaced, "a special token spans two words"
    assert torch.equal(TokenMemo(spaced)(["a photo of <two words>"]),
                       spaced(["a photo of <two words>"]))


printable_ascii = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60)
reference = SimpleTokenizer()
forgetful = WordwiseTokenizer(SimpleTokenizer(), max_texts=3)  # forgets its words often


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(printable_ascii, st.text(max_size=20)), min_size=1, max_size=4))
def test_word_by_word_gives_the_tokenizers_ids_on_any_text(texts):
    assert torch.equal(forgetful(texts), reference(texts))


@settings(max_examples=300, deadline=None)
@given(printable_ascii.filter(lambda text: "&" not in text))
def test_the_cleaning_leaves_printable_ascii_without_ampersands_alone(text):
    """The assumption that lets such texts be split into words before cleaning."""
    assert basic_clean(text) == text.strip()


def test_the_words_are_forgotten_after_as_many_texts_as_the_memo_keeps():
    """A name's parts are held no longer than the memo holds a text (docs/security.md)."""
    counting = CountingEncode()
    wordwise = WordwiseTokenizer(counting, max_texts=4)
    texts = ["Ann Lee"] * 5
    assert torch.equal(wordwise(texts), SimpleTokenizer()(texts))
    assert counting.seen == ["ann", "lee", "ann", "lee"], "forgotten at the fifth text"
