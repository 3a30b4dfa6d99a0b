"""Text encoding: tokenizing anew vs remembered token ids (idia.models.tokens); the
padded-to-77 path vs the fast path (real token length), both with the ids remembered; and a
cached re-run.

    python benchmarks/bench_text_encoding.py [--names N] [--model ViT-B-32] [--threads T]

Random-initialised weights (speed does not depend on them). Prints the tokenizing times
(open_clip's tokenizer; filling the memo, which tokenizes word by word; from the memo; all
after one untimed pass that fills open_clip's own BPE cache), prompts/s for both paths,
their ratio, whether predictions for a few images are identical, and cold vs cached timings
of the full zero-shot step. The last line reads ``fast-path speedup: <ratio>x``.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import torch
from PIL import Image

from idia.cache import EmbeddingCache
from idia.models.openclip import OpenCLIPModel
from idia.models.tokens import remembering
from idia.names import build_candidates
from idia.prompts import PAPER_TEMPLATES, render_prompts
from idia.zeroshot import EmbeddingZeroShot


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--names", type=int, default=1000)
    parser.add_argument("--model", default="ViT-B-32")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    fast = OpenCLIPModel.from_spec(args.model, "random", device="cpu", text_batch_size=256)
    padded = OpenCLIPModel(fast.model, fast.preprocess, fast.tokenizer, fast_text=False,
                           text_batch_size=256, device="cpu")
    candidates = build_candidates(["Adrianne León", "Lin-Manuel Miranda"], args.names, seed=0)
    prompts = render_prompts(PAPER_TEMPLATES, candidates.names)
    fast.tokenizer(prompts)  # open_clip's BPE cache filled for both ways of tokenizing
    tokens, tokenize_s = timed(lambda: fast.tokenizer(prompts))
    memo = remembering(fast.tokenizer)
    filled, fill_s = timed(lambda: memo(prompts))
    assert torch.equal(filled, tokens), "word-by-word ids differ from the tokenizer's"
    remembered, remembered_s = timed(lambda: memo(prompts))
    assert torch.equal(remembered, tokens), "remembered ids differ from the tokenizer's"
    lengths = (tokens != 0).sum(dim=1).float()
    print(f"model {args.model} (random init), CPU threads {args.threads}, "
          f"{len(PAPER_TEMPLATES)} templates x {args.names} names = {len(prompts)} prompts, "
          f"mean token length {lengths.mean():.1f} (max {int(lengths.max())}) of 77")

    print(f"tokenizing: open_clip {tokenize_s:6.2f} s; filling the memo (word by word) "
          f"{fill_s:6.2f} s ({tokenize_s / fill_s:.0f}x faster); remembered {remembered_s:6.2f} s "
          f"({tokenize_s / remembered_s:.0f}x faster); identical ids; both paths below read "
          "remembered ids")
    fast_vectors, fast_s = timed(lambda: fast.encode_texts(prompts))
    print(f"fast path:   {fast_s:8.1f} s  {len(prompts) / fast_s:8.1f} prompts/s")
    padded_vectors, padded_s = timed(lambda: padded.encode_texts(prompts))
    print(f"padded (77): {padded_s:8.1f} s  {len(prompts) / padded_s:8.1f} prompts/s")

    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (224, 224, 3), dtype=np.uint8))
              for _ in range(8)]
    image_vectors = fast.encode_images(images)
    shape = (len(PAPER_TEMPLATES), args.names, -1)
    pick_fast = np.einsum("nd,gkd->ngk", image_vectors, fast_vectors.reshape(shape)).argmax(-1)
    pick_padded = np.einsum("nd,gkd->ngk", image_vectors, padded_vectors.reshape(shape)).argmax(-1)
    identical = bool(np.array_equal(pick_fast, pick_padded))
    print(f"max |embedding difference| {np.abs(fast_vectors - padded_vectors).max():.2e}; "
          f"predictions identical for {len(images)} images x {len(PAPER_TEMPLATES)} templates: "
          f"{identical}")

    with tempfile.TemporaryDirectory() as cache_dir:
        groups = [render_prompts([t], candidates.names) for t in PAPER_TEMPLATES]
        cold = EmbeddingZeroShot(fast, EmbeddingCache(cache_dir))
        _, cold_s = timed(lambda: cold.zero_shot(images, groups))
        warm = EmbeddingZeroShot(fast, EmbeddingCache(cache_dir))  # a new process, same disk
        _, warm_s = timed(lambda: warm.zero_shot(images, groups))
        print(f"zero-shot step, cold (fast path + cache write): {cold_s:7.2f} s; "
              f"cached re-run: {warm_s:7.3f} s ({cold_s / warm_s:.0f}x faster; "
              f"{warm.encoded_texts} prompts and {warm.encoded_images} images re-encoded)")
    print(f"fast-path speedup: {padded_s / fast_s:.1f}x")


if __name__ == "__main__":
    main()
