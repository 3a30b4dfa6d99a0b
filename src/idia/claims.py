"""Two claims, tested apart: "the model has seen this name" and "the model links this name to
this face"; and a third test that needs no photo at all.

The paper's rule (templates won >= tau) mixes two causes. A name that occurred in the training
captions is familiar to the text tower and ranks high on *any* face (name familiarity); a model
that learned the person ranks the name high on *their* face more than on other faces (face
association, the privacy claim). Each test here compares one observed statistic with a null
sample built the same way, and returns ``p = (1 + #null >= observed) / (1 + #null)``: ties
count against the person, so the p-value is valid (never anti-conservative) under its null.

The per-photo statistic is the **surprise** of a name: under template t the name stands at
position ``pos`` among the decoy names (how many decoys the model scores strictly higher);
its surprise is ``-log((1 + pos) / (1 + D))`` for D decoys, averaged over templates. For a
name the model treats like any decoy, ``pos`` is uniform and the surprise averages 1 nat; a
name ranked first every time scores ``log(1 + D)`` (6.9 nats for 999 decoys). Ranks make the
statistic free of the model's temperature, and ranking against decoys only keeps other real
names (members of an audit, who take the top ranks on their own photos) out of it.

- **Name familiarity** (``name_test``): the real name's mean surprise over the person's photos
  against that of every same-sex decoy on the same photos. Null: the model treats the real name
  like a random same-sex name from the decoy pool (it never saw the name, and the name is not
  unusual in a way the model can read, e.g. its language or length).
- **Face association** (``face_test``): the real name's mean surprise on the person's photos
  against its mean surprise on each reference person's photos (other people, same sex where
  known, as many photos each). Null: the model responds to this name no more on this person's
  face than on other people's faces. A model that knows the name only as text fails to reject.
- **Text only** (``text_only_statistics``): no photo. The mean cosine distance of the name's
  prompt embeddings to their nearest decoy prompts, against the same statistic for each
  same-sex decoy. Training on a name pulls its embedding away from the crowd of names the model
  never saw. Null: as for name familiarity.
- **Top-1 counts** (``hit_counts``): for a closed-box model that reveals only its top answer,
  the same tests count how often (photo x template) a name is the top answer. Most names are
  never the top answer, so the counts tie often and the p-values are coarser: less power.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

Claim = Literal["name_familiarity", "face_association", "text_only"]
CLAIMS: tuple[Claim, ...] = ("name_familiarity", "face_association", "text_only")
DEFAULT_ALPHA = 0.05
TEXT_NEIGHBOURS = 10  # nearest decoy prompts per name in the text-only statistic

NULLS: dict[Claim, str] = {
    "name_familiarity": "the model treats the real name like a random same-sex name from the "
    "decoy pool, on these photos",
    "face_association": "the model responds to this name no more on this person's photos than "
    "on other people's photos (same sex, as many photos each)",
    "text_only": "the text encoder treats the real name like a random same-sex name from the "
    "decoy pool (no photo used)",
}
SENTENCES: dict[Claim, str] = {
    "name_familiarity": "the model has seen this name",
    "face_association": "the model links this face to this name",
    "text_only": "the model's text encoder knows this name",
}


@dataclass(frozen=True)
class TestResult:
    """One claim tested for one person.

    ``statistic``: the observed value (mean surprise in nats, top-1 hits, or text distance);
    ``z``: how many null standard deviations it lies above the null mean (a continuous score
    for ROC curves); ``n_null``: the size of the null sample (the smallest possible p-value is
    1 / (1 + n_null)). ``tested`` is False with a ``reason`` when the test could not run.
    """

    claim: Claim
    tested: bool
    p_value: float | None = None
    statistic: float | None = None
    z: float | None = None
    n_null: int = 0
    method: str = ""
    null: str = ""
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def holds(self, alpha: float = DEFAULT_ALPHA) -> bool:
        return self.tested and self.p_value is not None and self.p_value <= alpha


def not_tested(claim: Claim, reason: str) -> TestResult:
    return TestResult(claim=claim, tested=False, null=NULLS[claim], reason=reason)


# --- Per-photo statistics -------------------------------------------------------------------


def count_greater(reference: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per row, how many entries of ``reference`` (..., D) exceed each of ``values`` (..., Q).

    Rows are shifted apart so that one sort and one ``searchsorted`` serve all of them.
    """
    reference = np.asarray(reference, np.float64)
    values = np.asarray(values, np.float64)
    if reference.shape[:-1] != values.shape[:-1]:
        raise ValueError("reference and values must share their leading dimensions")
    lead, width, queries = reference.shape[:-1], reference.shape[-1], values.shape[-1]
    ref = reference.reshape(-1, width)
    val = values.reshape(-1, queries)
    if not (np.isfinite(ref).all() and np.isfinite(val).all()):
        raise ValueError("scores must be finite")
    if ref.size == 0 or val.size == 0:
        return np.zeros(lead + (queries,), dtype=np.int64)
    low = min(ref.min(), val.min())
    span = max(ref.max(), val.max()) - low + 1.0
    shift = np.arange(ref.shape[0])[:, None] * span
    flat = np.sort((ref - low + shift).ravel())
    at_most = np.searchsorted(flat, (val - low + shift).ravel(), side="right").reshape(val.shape)
    greater = (np.arange(ref.shape[0])[:, None] + 1) * width - at_most
    return greater.reshape(lead + (queries,))


def surprise(position: np.ndarray, n_decoys: int) -> np.ndarray:
    """``-log((1 + position) / (1 + n_decoys))``: 0 for last place, log(1 + D) for first."""
    return np.log1p(n_decoys) - np.log1p(position)


@dataclass(frozen=True)
class Responses:
    """Per-photo surprises of names, averaged over templates (float32).

    ``name``: (P, 1 + D): column 0 is the person's own name, then every decoy, each ranked
    within {own name} + decoys. ``cross``: (P, R): every real name of the candidate set, each
    ranked against the decoys alone: how much each real name responds to this person's photos.
    """

    name: np.ndarray
    cross: np.ndarray


def responses(
    scores: np.ndarray, own: int, real: np.ndarray, decoys: np.ndarray
) -> Responses:
    """Surprises from similarities ``scores`` (P, T, K) of P photos under T templates."""
    scores = np.asarray(scores)
    real, decoys = np.asarray(real, np.int64), np.asarray(decoys, np.int64)
    if len(decoys) < 1:
        raise ValueError("at least one decoy name is needed")
    own_set = scores[..., np.r_[own, decoys]]  # (P, T, 1 + D)
    n_decoys = len(decoys)
    name = surprise(count_greater(own_set, own_set), n_decoys).mean(axis=1)
    cross = surprise(count_greater(scores[..., decoys], scores[..., real]), n_decoys).mean(axis=1)
    return Responses(name=name.astype(np.float32), cross=cross.astype(np.float32))


def hit_counts(best: np.ndarray, n_candidates: int) -> np.ndarray:
    """Top-1 answers per candidate over photos x templates: (..., P, T) -> (..., K)."""
    best = np.asarray(best)
    flat = best.reshape(-1, best.shape[-2] * best.shape[-1])
    rows = np.arange(flat.shape[0])[:, None]
    valid = flat >= 0
    codes = (rows * n_candidates + np.where(valid, flat, 0))[valid]
    counts = np.bincount(codes, minlength=flat.shape[0] * n_candidates)
    return counts.reshape(best.shape[:-2] + (n_candidates,))


# --- Rank tests -----------------------------------------------------------------------------


def rank_p_values(observed: np.ndarray, null: np.ndarray, valid: np.ndarray | None = None):
    """p = (1 + #null >= observed) / (1 + #null), and z = (observed - mean) / sd.

    ``observed`` (...,), ``null`` (..., n) with ``valid`` (..., n) marking which null entries
    count (e.g. same-sex decoys, other people). Vectorised over leading axes; NaN where the
    null is empty (z also where it has no spread).
    """
    observed = np.asarray(observed, np.float64)
    null = np.asarray(null, np.float64)
    valid = np.ones(null.shape, bool) if valid is None else np.asarray(valid, bool)
    n = valid.sum(axis=-1)
    at_least = ((null >= observed[..., None]) & valid).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(n > 0, (1 + at_least) / (1 + n), np.nan)
        mean = np.where(valid, null, 0).sum(axis=-1) / n
        var = np.where(valid, (null - mean[..., None]) ** 2, 0).sum(axis=-1) / (n - 1)
        z = np.where((n > 1) & (var > 0), (observed - mean) / np.sqrt(var), np.nan)
    return p, z, n


def _result(claim: Claim, method: str, p, z, n, statistic) -> TestResult:
    if not n:
        return not_tested(claim, "the null sample is empty")
    return TestResult(
        claim=claim,
        tested=True,
        p_value=float(p),
        statistic=float(statistic),
        z=None if np.isnan(z) else float(z),
        n_null=int(n),
        method=method,
        null=NULLS[claim],
    )


def same_sex(sex: str | None, decoy_sexes: np.ndarray) -> np.ndarray:
    """Which decoys form the null for a name of ``sex`` (all of them when it is unknown)."""
    decoy_sexes = np.asarray(decoy_sexes, dtype=object)
    if sex is None:
        return np.ones(len(decoy_sexes), bool)
    return decoy_sexes == sex


def name_test(
    name_responses: np.ndarray, decoy_sexes: np.ndarray, sex: str | None
) -> TestResult:
    """Name familiarity from :attr:`Responses.name` (P, 1 + D) of one person's photos."""
    means = np.asarray(name_responses, np.float64).mean(axis=0)
    p, z, n = rank_p_values(means[0], means[1:], same_sex(sex, decoy_sexes))
    return _result("name_familiarity", "mean surprise (log-rank among decoys)", p, z, n, means[0])


def name_hit_test(
    hits: np.ndarray, own: int, decoys: np.ndarray, decoy_sexes: np.ndarray, sex: str | None
) -> TestResult:
    """Name familiarity from top-1 answers: hits (K,) of one person's photos."""
    hits = np.asarray(hits, np.float64)
    p, z, n = rank_p_values(hits[own], hits[np.asarray(decoys)], same_sex(sex, decoy_sexes))
    return _result("name_familiarity", "top-1 hits (closed box)", p, z, n, hits[own])


def face_test(own: float, reference: np.ndarray, method: str = "mean surprise") -> TestResult:
    """Face association: the name's statistic on the person's photos against the same
    statistic on each reference person's photos (as many photos each)."""
    reference = np.asarray(reference, np.float64)
    if reference.size == 0:
        return not_tested("face_association", "no reference people")
    p, z, n = rank_p_values(own, reference)
    return _result("face_association", method, p, z, n, own)


# --- Text only ------------------------------------------------------------------------------


def text_only_statistics(
    embeddings: np.ndarray, real: np.ndarray, decoys: np.ndarray, k: int = TEXT_NEIGHBOURS
) -> tuple[np.ndarray, np.ndarray]:
    """Distinctiveness of names in the text tower: (real (R,), decoys given each real (R, D)).

    ``embeddings``: (T, K, E) L2-normalised prompt embeddings per template and candidate. A
    name's statistic is 1 - the mean cosine similarity of its prompt to its ``k`` nearest
    other names' prompts in {real name} + decoys, averaged over templates. For each real name
    the decoys are scored in the set that contains it, so every name in a comparison is
    treated alike.
    """
    real, decoys = np.asarray(real, np.int64), np.asarray(decoys, np.int64)
    n_templates = embeddings.shape[0]
    k = min(k, len(decoys) - 1)
    if k < 1:
        raise ValueError("the text-only test needs at least two decoy names")
    real_out = np.zeros(len(real))
    decoy_out = np.zeros((len(real), len(decoys)))
    for t in range(n_templates):
        pool = np.asarray(embeddings[t, decoys], np.float64)
        among = pool @ pool.T
        np.fill_diagonal(among, -np.inf)
        top = -np.sort(-np.partition(among, -k, axis=1)[:, -k:], axis=1)  # (D, k) descending
        top_sum, kth = top.sum(axis=1), top[:, -1]
        to_real = np.asarray(embeddings[t, real], np.float64) @ pool.T  # (R, D)
        real_top = np.partition(to_real, -k, axis=1)[:, -k:]
        real_out += 1 - real_top.mean(axis=1)
        with_real = np.where(to_real > kth, top_sum - kth + to_real, top_sum) / k
        decoy_out += 1 - with_real
    return real_out / n_templates, decoy_out / n_templates


def text_test(
    real_statistic: float, decoy_statistics: np.ndarray, decoy_sexes: np.ndarray, sex: str | None
) -> TestResult:
    p, z, n = rank_p_values(real_statistic, decoy_statistics, same_sex(sex, decoy_sexes))
    return _result("text_only", f"distance to the {TEXT_NEIGHBOURS} nearest decoy prompts", p, z,
                   n, real_statistic)


# --- Verdicts -------------------------------------------------------------------------------


def benjamini_hochberg(p_values: np.ndarray) -> np.ndarray:
    """BH-adjusted p-values (q-values) along the last axis; NaN entries stay NaN and do not
    count as tests."""
    p = np.asarray(p_values, float)
    rows = p.reshape(-1, p.shape[-1]) if p.ndim else p.reshape(1, 1)
    out = np.full(rows.shape, np.nan)
    for row, target in zip(rows, out, strict=True):
        ok = ~np.isnan(row)
        values = row[ok]
        if not values.size:
            continue
        order = np.argsort(values, kind="stable")
        ranked = values[order] * values.size / np.arange(1, values.size + 1)
        adjusted = np.empty_like(values)
        adjusted[order] = np.minimum.accumulate(ranked[::-1])[::-1].clip(max=1.0)
        target[ok] = adjusted
    return out.reshape(p.shape)


def strongest_claim(results: dict[Claim, TestResult], alpha: float = DEFAULT_ALPHA) -> Claim | None:
    """The strongest claim the evidence supports: face association, then name familiarity
    (from photos), then text only; None when no test rejects its null at ``alpha``."""
    for claim in ("face_association", "name_familiarity", "text_only"):
        result = results.get(claim)
        if result is not None and result.holds(alpha):
            return claim
    return None
