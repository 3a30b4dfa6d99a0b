"""Token ids remembered per tokenizer, shared by every model that uses the same tokenizer.

CLIP's BPE tokenizer cleans each text with ftfy before splitting it: about 80 us a prompt on
one core, more than the text tower of a small model takes to encode it. An audit tokenizes
the same prompts for every model it attacks (a defence's model before and after erasure, the
checkpoints of one family), so the ids are kept here, per tokenizer object, up to
:data:`MAX_REMEMBERED` texts (the oldest quarter goes when that is reached). What is kept is
exactly what the tokenizer returned: each row without its trailing run of one value (the
padding), and that value.

Texts the memo has not seen go to the tokenizer, except for open_clip's plain BPE tokenizer
(``SimpleTokenizer``, lower-case cleaning, no reduction), whose texts of printable ASCII
without ``&`` are tokenized word by word, each word once (:class:`WordwiseTokenizer`): 21
templates x 1,000 names are some 1,400 distinct words. The ids are the tokenizer's own (see
the class for why; tests/test_tokens.py checks it on any text).
"""

from __future__ import annotations

import itertools
import re
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

# Texts per tokenizer: as many prompts as `idia web` keeps embedded (its prompt memory), so a
# server holds the names checked no longer as text than as embeddings; 247 bytes a paper
# prompt (tracemalloc), 24 MiB at the bound. A defence on a quick lab, at e7647c5 (before
# word-by-word tokenizing): 86 s (2**19: 75 s; no memo: 128 s).
MAX_REMEMBERED = 100_000

_Row = tuple[np.ndarray, int]  # a row without its trailing padding, and the padding value


class TokenMemo:
    """A tokenizer (``tokenizer(texts) -> (N, C)`` integer tensor) that tokenizes each text
    once and answers repeated texts from memory, in the same tensor the tokenizer gives."""

    def __init__(self, tokenizer: Callable[[list[str]], torch.Tensor],
                 max_texts: int = MAX_REMEMBERED) -> None:
        if max_texts < 1:
            raise ValueError(f"max_texts must be at least 1, not {max_texts}")
        self.tokenizer = tokenizer
        self._tokenize_unseen = _wordwise(tokenizer, max_texts) or tokenizer
        self.max_texts = max_texts
        self._rows: dict[str, _Row] = {}
        self._width: int | None = None
        self._dtype: torch.dtype | None = None
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._rows)

    def __call__(self, texts: Sequence[str]) -> torch.Tensor:
        texts = list(texts)
        if not texts:
            return self.tokenizer(texts)
        with self._lock:
            known = {text: self._rows.get(text) for text in texts}
        missing = [text for text, row in known.items() if row is None]
        if missing:
            fresh = self._tokenize_unseen(missing)
            known.update(self._remember(missing, fresh))
            if len(missing) == len(texts):
                return fresh
        assert self._width is not None and self._dtype is not None
        out = np.empty((len(texts), self._width), np.int64)
        for i, text in enumerate(texts):
            head, pad = known[text]  # type: ignore[misc]
            out[i, : len(head)] = head
            out[i, len(head):] = pad
        return torch.from_numpy(out).to(self._dtype)

    def _remember(self, texts: list[str], tokens: torch.Tensor) -> dict[str, _Row]:
        """Keep the texts' trimmed rows (the oldest go past the bound) and return them."""
        trimmed = dict(zip(texts, _trimmed(tokens.numpy()), strict=True))
        with self._lock:
            self._width, self._dtype = tokens.shape[1], tokens.dtype
            self._rows.update(trimmed)
            if len(self._rows) > self.max_texts:
                excess = len(self._rows) - 3 * self.max_texts // 4
                for text in list(itertools.islice(self._rows, excess)):
                    del self._rows[text]
        return trimmed


# Printable ASCII but '&': ftfy.fix_text leaves such a text as it is (its fixes act on other
# characters; HTML entities need '&'), and so does html.unescape.
_LEFT_ALONE_BY_FTFY = re.compile(r"[ -%'-~]*")


class WordwiseTokenizer:
    """open_clip's plain BPE tokenizer (``SimpleTokenizer``), each word encoded once.

    The tokenizer cleans a text (``ftfy.fix_text``, ``html.unescape`` twice, whitespace runs to
    one space, lower case) and then splits it with a pattern none of whose matches holds
    whitespace, so the ids of a text are the ids of its words in turn. For a text that the
    cleaning leaves as it is (printable ASCII without ``&``, see above) but for whitespace and
    case, a word's ids are ``encode(word)`` of the lower-cased word, remembered; any other
    text is encoded whole. The words (names' parts among them) are all forgotten once
    ``max_texts`` texts have been split since they were last forgotten, or once more than
    ``max_texts`` words are held: no longer than :class:`TokenMemo` holds a text. Rows are then
    framed here as the tokenizer frames them (start and end tokens, cut to the context length
    with the end token last, zeros after): open_clip's own ``__call__`` makes a tensor per row,
    0.14 of its 0.16 s for 21,000 prompts."""

    def __init__(self, tokenizer: Any, max_texts: int) -> None:
        self.tokenizer = tokenizer
        self.max_texts = max_texts
        self._words: dict[str, list[int]] = {}
        self._texts_split = 0  # since the words were last forgotten

    def encode(self, text: str) -> list[int]:
        if not _LEFT_ALONE_BY_FTFY.fullmatch(text):
            return self.tokenizer.encode(text)
        words = self._words
        self._texts_split += 1
        if self._texts_split > self.max_texts or len(words) > self.max_texts:
            words.clear()
            self._texts_split = 1
        ids: list[int] = []
        for word in text.lower().split():
            known = words.get(word)
            if known is None:
                known = words[word] = self.tokenizer.encode(word)
            ids.extend(known)
        return ids

    def __call__(self, texts: Sequence[str]) -> torch.Tensor:
        width = self.tokenizer.context_length
        start, end = self.tokenizer.sot_token_id, self.tokenizer.eot_token_id
        out = np.zeros((len(texts), width), np.int64)
        for i, text in enumerate(texts):
            row = [start, *self.encode(text), end]
            if len(row) > width:
                row = row[:width]
                row[-1] = end
            out[i, : len(row)] = row
        return torch.from_numpy(out)


def _wordwise(tokenizer: Any, max_texts: int) -> WordwiseTokenizer | None:
    """The word-wise form of open_clip's plain BPE tokenizer; None for any other tokenizer."""
    try:
        from open_clip.tokenizer import SimpleTokenizer, get_clean_fn
    except ImportError:
        return None
    if (type(tokenizer) is not SimpleTokenizer or tokenizer.clean_fn is not get_clean_fn("lower")
            or tokenizer.reduction_fn is not None):
        return None
    specials = [tokenizer.decoder[i] for i in tokenizer.all_special_ids]
    if any(len(token.split()) != 1 for token in specials):  # a special token across words
        return None
    return WordwiseTokenizer(tokenizer, max_texts)


def _trimmed(rows: np.ndarray) -> list[_Row]:
    """Each row without its trailing run of its last value (the padding), and that value."""
    pads = rows[:, -1]
    differs = rows != pads[:, None]
    kept = np.where(differs.any(axis=1), rows.shape[1] - np.argmax(differs[:, ::-1], axis=1), 0)
    narrow = rows.astype(np.int32)
    return [(narrow[i, :k].copy(), pad)  # a copy: the rows kept do not hold the whole block
            for i, (k, pad) in enumerate(zip(kept.tolist(), pads.tolist(), strict=True))]


_memos: weakref.WeakKeyDictionary[Any, TokenMemo] = weakref.WeakKeyDictionary()
_memos_lock = threading.Lock()


def remembering(tokenizer: Any) -> TokenMemo:
    """The memo of this tokenizer object, shared by the models that hold it (a new one for a
    tokenizer that cannot be weakly referenced)."""
    with _memos_lock:
        try:
            memo = _memos.get(tokenizer)
        except TypeError:
            return TokenMemo(tokenizer)
        if memo is None:
            memo = _memos[tokenizer] = TokenMemo(tokenizer)
        return memo
