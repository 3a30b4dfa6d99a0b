"""Repeated sampling of photos per person, and the paper's vote recomputed per draw as
batched matrix products."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from idia.evaluation._run import EvaluationError

# Memory for one chunk of people in the vectorised vote (bytes).
CHUNK_BYTES = 256 * 2**20


def size_rng(seed: int, size: int) -> np.random.Generator:
    """The generator for one attack size: a size's draws do not depend on the other sizes."""
    return np.random.default_rng([seed, size])


def sample_photo_indices(
    n_photos: np.ndarray, size: int, draws: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``size`` distinct photo indices per draw and person, uniformly without replacement.

    Returns ``(indices (draws, people, size), included (people,))``; people with fewer than
    ``size`` photos are not included and their indices are -1.
    """
    n_photos = np.asarray(n_photos)
    if size < 1 or draws < 1:
        raise EvaluationError(f"size and draws must be at least 1 (got {size}, {draws})")
    width = max(int(n_photos.max(initial=0)), size)
    keys = rng.random((draws, len(n_photos), width))
    keys[:, np.arange(width)[None, :] >= n_photos[:, None]] = np.inf
    indices = np.argpartition(keys, size - 1, axis=-1)[..., :size]
    included = n_photos >= size
    return np.where(included[None, :, None], indices, -1), included


def selection_mask(indices: np.ndarray, width: int) -> np.ndarray:
    """(draws, people, k) indices -> (draws, people, width) 0/1 float32 mask; -1 selects none."""
    mask = np.zeros(indices.shape[:2] + (width + 1,), dtype=np.float32)
    np.put_along_axis(mask, np.where(indices < 0, width, indices), 1.0, axis=-1)
    return mask[..., :width]


@dataclass(frozen=True)
class VoteTables:
    """Per person, everything a draw needs, prepared once, so that a draw's vote counts are
    batched matrix products: the real name's hits, and the other names as one-hot codes.

    Code 0 gathers the names a person's photos pick only once under a template: each of them
    can get at most one vote, so "any of them selected" is all the rule needs. Codes 1.. are
    the names picked at least twice. This keeps the codes few (often one or two).
    """

    real_hits: np.ndarray  # (people, photos, templates) float32: photo picked the real name
    other_codes: np.ndarray  # (people, photos, codes * templates) float32 one-hot
    n_codes: int


def vote_tables(grid: np.ndarray, real_index: np.ndarray) -> VoteTables:
    """Encode, per person and template, the other names their photos picked (see VoteTables)."""
    hits = grid == np.asarray(real_index)[:, None, None]
    others = np.where(hits | (grid < 0), -1, grid).transpose(0, 2, 1)  # (people, T, photos)
    n_people, n_templates, n_slots = others.shape
    order = np.argsort(others, axis=-1, kind="stable")
    ordered = np.take_along_axis(others, order, axis=-1)
    new_value = np.ones(ordered.shape, dtype=bool)
    new_value[..., 1:] = ordered[..., 1:] != ordered[..., :-1]
    group = np.cumsum(new_value, axis=-1) - 1  # per row: 0, 0, 1, 2, 2, 2, ...
    rows = np.arange(n_people * n_templates).reshape(n_people, n_templates, 1)
    flat_group = (rows * n_slots + group).ravel()
    group_size = np.bincount(flat_group, minlength=rows.size * n_slots)[flat_group]
    repeated = (group_size.reshape(ordered.shape) > 1) & (ordered >= 0)
    repeated_rank = np.cumsum(new_value & repeated, axis=-1)  # 1.. for repeated names
    sorted_codes = np.where(ordered < 0, -1, np.where(repeated, repeated_rank, 0))
    codes = np.empty_like(sorted_codes)
    np.put_along_axis(codes, order, sorted_codes, axis=-1)
    codes = codes.transpose(0, 2, 1)  # (people, photos, T)
    n_codes = max(int(codes.max(initial=0)) + 1, 1)
    one_hot = (codes[..., None, :] == np.arange(n_codes)[:, None]).astype(np.float32)
    return VoteTables(
        real_hits=hits.astype(np.float32),
        other_codes=one_hot.reshape(n_people, n_slots, n_codes * n_templates),
        n_codes=n_codes,
    )


def draw_scores(tables: VoteTables, selected: np.ndarray) -> np.ndarray:
    """Scores (draws, people) of the photo subsets in ``selected`` (draws, people, photos).

    Under the majority rule the real name is a template's prediction exactly when it gets
    more of the selected photos' votes than any other name (a tie at the top is no
    prediction), so a score needs only vote counts: batched products, no sorting.
    Equal to ``attack.score(attack.majority_votes(...))`` on the same photos (tested).
    """
    n_people, _, n_templates = tables.real_hits.shape
    per_person = selected.transpose(1, 0, 2)  # (people, draws, photos)
    row_bytes = 4 * (selected.shape[0] * n_templates * tables.n_codes + tables.other_codes[0].size)
    chunk = max(1, CHUNK_BYTES // max(row_bytes, 1))
    scores = np.empty((n_people, selected.shape[0]), dtype=np.int64)
    for start in range(0, n_people, chunk):
        part = slice(start, start + chunk)
        real_votes = np.matmul(per_person[part], tables.real_hits[part])  # (p, draws, T)
        other_votes = np.matmul(per_person[part], tables.other_codes[part])
        other_votes = other_votes.reshape(real_votes.shape[:2] + (tables.n_codes, n_templates))
        top_other = np.minimum(other_votes[:, :, 0], 1)  # names picked once: one vote at most
        for code in range(1, tables.n_codes):  # few codes: elementwise beats a reduction
            np.maximum(top_other, other_votes[:, :, code], out=top_other)
        scores[part] = np.count_nonzero(real_votes > top_other, axis=-1)
    return scores.T


def draw_means(values: np.ndarray, selected: np.ndarray) -> np.ndarray:
    """Mean of per-photo values (people, photos) over each draw's photos: (draws, people)."""
    counts = selected.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.einsum("dnp,np->dn", selected, np.nan_to_num(values)) / counts
