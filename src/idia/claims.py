"""Two claims, tested apart: "the model has seen this name" and "the model links this name to
this face"; and a third test that needs no photo at all.

The paper's rule (templates won >= tau) mixes two causes. A name that occurred in the training
captions is familiar to the text tower and ranks high on *any* face (name familiarity); a model
that learned the person ranks the name high on *their* face more than on other faces (face
association, the privacy claim). Each test here compares one observed statistic with a null
sample built the same way, and returns ``p = (1 + #null >= observed) / (1 + #null)``: ties
count against the person, so the p-value is valid (never anti-conservative) under its null.
The top-1 tests, whose counts tie often, break ties at random instead (seeded per person: the
observed value takes a uniformly random place among the null values it ties with), which makes
their p-values exactly uniform on {1, ..., 1 + #null} / (1 + #null) under exchangeability; the
conservative version is kept beside them.

The per-photo statistic is the **response** of a name: its image-text similarity under a
template, standardized by the mean and standard deviation of the decoy names' similarities to
the same photo under the same template, then averaged over templates. It is about 0 for a name
the model treats like any decoy and grows without bound, so that a name the model knows as
text (high on every face) can still show that it is higher on one face; standardizing per
photo takes out what makes one photo match all texts better than another.

- **Name familiarity** (``name_test``): the real name's mean response over the person's photos
  against that of every same-sex decoy on the same photos. Null: the model treats the real name
  like a random same-sex name from the decoy pool (it never saw the name, and the name is not
  unusual in a way the model can read, e.g. its language or length).
- **Face association** (``face_test``): the real name's mean response on the person's photos
  against its mean response on each reference person's photos (other people, same sex where
  known, as many photos each). Null: the model responds to this name no more on this person's
  face than on other people's faces. A model that knows the name only as text fails to reject.
- **Text only** (``text_only_statistics``): no photo. The mean cosine distance of the name's
  prompt embeddings to their nearest decoy prompts, against the same statistic for each
  same-sex decoy. Training on a name pulls its embedding away from the crowd of names the model
  never saw. Null: as for name familiarity.
- **Top-1 counts** (``hit_counts``): for a closed-box model that reveals only its top answer,
  the same tests count how often (photo x template) a name is the top answer. Most names are
  never the top answer, so the counts tie often and the p-values are coarser: less power.

**One verdict** over a person's claims (:func:`hierarchical_verdicts`, Benjamini-Bogomolov):
the claims' p-values are combined per person (Simes), Benjamini-Hochberg runs over people, and
the claims are tested within the people it selects at alpha R / N. The false-discovery rate of
"the model knows something about this person" is then at most alpha; one person alone (a
check) is the case N = 1.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

import numpy as np

Claim = Literal["name_familiarity", "face_association", "text_only"]
CLAIMS: tuple[Claim, ...] = ("name_familiarity", "face_association", "text_only")
STRENGTH: tuple[Claim, ...] = ("face_association", "name_familiarity", "text_only")  # strongest 1st
DEFAULT_ALPHA = 0.05
TEXT_NEIGHBOURS = 10  # nearest decoy prompts per name in the text-only statistic

LOOKALIKE_NULL = (
    "the model responds to this name no more on this face than on the faces of lookalike "
    "reference people (the nearest in a face-recognition encoder's space, of the same sex, as "
    "many photos each)"
)
NULLS: dict[Claim, str] = {
    "name_familiarity": "the model treats the real name like a random same-sex name from the "
    "decoy pool, on these photos",
    "face_association": "the model responds to this name no more on this person's photos than "
    "on other people's photos (same sex, as many photos each)",
    "text_only": "the text encoder treats the real name like a random same-sex name from the "
    "decoy pool (no photo used)",
}


@dataclass(frozen=True)
class TestResult:
    """One claim tested for one person.

    ``statistic``: the observed value (mean response, top-1 hits, or text distance);
    ``z``: how many null standard deviations it lies above the null mean (a continuous score
    for ROC curves); ``n_null``: the size of the null sample (the smallest possible p-value is
    1 / (1 + n_null)). ``p_conservative``: the p-value with ties counted against the person
    (equal to ``p_value`` unless the test broke ties at random). ``q_value``: adjusted over the
    person's tested claims (Benjamini-Hochberg, :func:`within_person`); the claim holds when it
    is at most alpha. ``tested`` is False with a ``reason`` when the test could not run.
    ``p_floor``: the smallest p-value this test could give, 1 / (1 + n_null). The face test
    also names its ``reference`` (which set of other people, and its size) and its
    ``matching`` rule (how the people compared with this one were chosen).
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
    p_conservative: float | None = None
    q_value: float | None = None
    p_floor: float | None = None
    reference: str | None = None
    matching: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def holds(self, alpha: float = DEFAULT_ALPHA) -> bool:
        """Whether the claim holds: its q-value (p-value until :func:`within_person` set one)
        is at most ``alpha``."""
        value = self.p_value if self.q_value is None else self.q_value
        return self.tested and value is not None and value <= alpha


def not_tested(claim: Claim, reason: str) -> TestResult:
    return TestResult(claim=claim, tested=False, null=NULLS[claim], reason=reason)


# --- Per-photo statistics -------------------------------------------------------------------


def standardized(values: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``(values - mean) / sd`` of the last axis of ``reference`` (..., D), for (..., Q)."""
    reference = np.asarray(reference, np.float64)
    mean = reference.mean(axis=-1, keepdims=True)
    sd = reference.std(axis=-1, ddof=1, keepdims=True) if reference.shape[-1] > 1 else None
    if sd is None:
        raise ValueError("at least two decoy names are needed")
    return (np.asarray(values, np.float64) - mean) / np.maximum(sd, 1e-12)


@dataclass(frozen=True)
class Responses:
    """How strongly names respond to each photo: standardized similarity, averaged over
    templates (float32).

    ``name``: (P, 1 + D): column 0 is the person's own name, then every decoy, each
    standardized by the mean and sd of {own name} + decoys under each template.
    ``cross``: (P, R): every real name of the candidate set, standardized by the decoys
    alone: how much each real name responds to this person's photos.
    """

    name: np.ndarray
    cross: np.ndarray


def responses(
    scores: np.ndarray, own: int, real: np.ndarray, decoys: np.ndarray
) -> Responses:
    """Responses from similarities ``scores`` (P, T, K) of P photos under T templates."""
    scores = np.asarray(scores)
    real, decoys = np.asarray(real, np.int64), np.asarray(decoys, np.int64)
    if len(decoys) < 2:
        raise ValueError("at least two decoy names are needed")
    own_set = scores[..., np.r_[own, decoys]]  # (P, T, 1 + D)
    name = standardized(own_set, own_set).mean(axis=1)
    cross = standardized(scores[..., real], scores[..., decoys]).mean(axis=1)
    return Responses(name=name.astype(np.float32), cross=cross.astype(np.float32))


def hit_counts(best: np.ndarray, n_candidates: int) -> np.ndarray:
    """Top-1 answers per candidate over photos x templates: (..., P, T) -> (..., K)."""
    best = np.asarray(best)
    if best.shape[-2] * best.shape[-1] == 0:
        return np.zeros(best.shape[:-2] + (n_candidates,), dtype=np.int64)
    flat = best.reshape(-1, best.shape[-2] * best.shape[-1])
    rows = np.arange(flat.shape[0])[:, None]
    valid = flat >= 0
    codes = (rows * n_candidates + np.where(valid, flat, 0))[valid]
    counts = np.bincount(codes, minlength=flat.shape[0] * n_candidates)
    return counts.reshape(best.shape[:-2] + (n_candidates,))


# --- Rank tests -----------------------------------------------------------------------------


def rank_p_values(
    observed: np.ndarray,
    null: np.ndarray,
    valid: np.ndarray | None = None,
    tie_break: np.ndarray | float | None = None,
):
    """p = (1 + #null >= observed) / (1 + #null), and z = (observed - mean) / sd.

    ``observed`` (...,), ``null`` (..., n) with ``valid`` (..., n) marking which null entries
    count (e.g. same-sex decoys, other people). Vectorised over leading axes; NaN where the
    null is empty (z also where it has no spread).

    ``tie_break``: uniform draws in [0, 1), shaped like ``observed``: the observed value then
    takes a uniformly random place among the e null values it ties with, p = (1 + #null >
    observed + floor(u (1 + e))) / (1 + #null), which is uniform on {1, ..., 1 + n} / (1 + n)
    when the observed value is exchangeable with the null values. Without it ties count
    against the person (valid, conservative when values tie).

    A NaN observed value (a statistic that could not be computed) gets a NaN p-value: it is
    not tested, never ranked above every null value.
    """
    observed = np.asarray(observed, np.float64)
    null = np.asarray(null, np.float64)
    valid = np.ones(null.shape, bool) if valid is None else np.asarray(valid, bool)
    n = valid.sum(axis=-1)
    at_least = ((null >= observed[..., None]) & valid).sum(axis=-1)
    if tie_break is not None:
        ties = ((null == observed[..., None]) & valid).sum(axis=-1)
        at_least = at_least - ties + np.floor(np.asarray(tie_break) * (1 + ties))
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where((n > 0) & ~np.isnan(observed), (1 + at_least) / (1 + n), np.nan)
        mean = np.where(valid, null, 0).sum(axis=-1) / n
        var = np.where(valid, (null - mean[..., None]) ** 2, 0).sum(axis=-1) / (n - 1)
        z = np.where((n > 1) & (var > 0), (observed - mean) / np.sqrt(var), np.nan)
    return p, z, n


def tie_break_draw(seed: int, name: str, test: str) -> float:
    """The uniform draw that breaks one person's ties in one test: seeded by (seed, test,
    the person's normalized name), so it does not depend on who else is tested and a check
    draws what the audit drew."""
    digest = hashlib.sha256(f"{test}\0{name}".encode()).digest()
    return float(np.random.default_rng([seed, int.from_bytes(digest[:8], "little")]).random())


def _result(
    claim: Claim, method: str, p, z, n, statistic, p_conservative=None, null: str | None = None
) -> TestResult:
    if not n:
        return not_tested(claim, "the null sample is empty")
    if np.isnan(statistic):
        return not_tested(claim, "the statistic could not be computed (the model's answers on "
                          "these photos are not numbers)")
    return TestResult(
        claim=claim,
        tested=True,
        p_value=float(p),
        statistic=float(statistic),
        z=None if np.isnan(z) else float(z),
        n_null=int(n),
        method=method,
        null=null or NULLS[claim],
        p_conservative=float(p if p_conservative is None else p_conservative),
        p_floor=1.0 / (1 + int(n)),
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
    method = "mean response (similarity standardized by the decoys)"
    return _result("name_familiarity", method, p, z, n, means[0])


TIES_BROKEN = "ties broken at random"
TIE_BREAKING = (
    "the observed count takes a uniformly random place among the null counts it ties with "
    "(numpy.random.default_rng([seed, sha256(test, normalized name)]).random()); the "
    "conservative p-value, ties counted against the person, is in the *_conservative columns"
)
VERDICT_PROCEDURE = (
    "Benjamini-Bogomolov: Simes' combination of each person's tested claims, Benjamini-"
    "Hochberg over people at alpha (q_person: the model knows something about this person), "
    "then Benjamini-Hochberg within each selected person at alpha R / N (the *_holds columns);"
    " verdict: the strongest claim that holds. q_name, q_face, q_text: each claim's own BH "
    "across people, beside it"
)


def name_hit_test(
    hits: np.ndarray,
    own: int,
    decoys: np.ndarray,
    decoy_sexes: np.ndarray,
    sex: str | None,
    tie_break: float | None = None,
) -> TestResult:
    """Name familiarity from top-1 answers: hits (K,) of one person's photos; ties broken by
    the uniform draw ``tie_break`` (:func:`tie_break_draw`), counted against the person
    without one."""
    hits = np.asarray(hits, np.float64)
    null, valid = hits[np.asarray(decoys)], same_sex(sex, decoy_sexes)
    conservative, z, n = rank_p_values(hits[own], null, valid)
    p = conservative if tie_break is None else rank_p_values(hits[own], null, valid, tie_break)[0]
    method = "top-1 hits (closed box)" + ("" if tie_break is None else f"; {TIES_BROKEN}")
    return _result("name_familiarity", method, p, z, n, hits[own], conservative)


def face_test(
    own: float,
    reference: np.ndarray,
    method: str = "mean response",
    tie_break: float | None = None,
    null: str | None = None,
    reference_set: str | None = None,
    matching: str | None = None,
) -> TestResult:
    """Face association: the name's statistic on the person's photos against the same
    statistic on each reference person's photos (as many photos each); ``tie_break`` as in
    :func:`name_hit_test` (for top-1 statistics, which tie often). Reference values that are
    NaN (not computed) are left out of the null. ``null``, ``reference_set``, ``matching``:
    the null hypothesis, the reference set and the matching rule, in words for the output."""
    reference = np.asarray(reference, np.float64)
    reference = reference[~np.isnan(reference)]
    if reference.size == 0:
        return not_tested("face_association", "no reference people")
    conservative, z, n = rank_p_values(own, reference)
    p = conservative if tie_break is None else rank_p_values(own, reference, None, tie_break)[0]
    method += "" if tie_break is None else f"; {TIES_BROKEN}"
    result = _result("face_association", method, p, z, n, own, conservative, null)
    return replace(result, reference=reference_set, matching=matching)


# --- Many people (an audit) ----------------------------------------------------------------


def reference_mask(sexes: Sequence[str | None], has_photos: np.ndarray) -> np.ndarray:
    """(N, N): whether person j serves as a reference for person i in the face test:
    everyone else with photos of i's sex. A person of unknown sex, or whose sex nobody else
    has, gets no reference (the test is not run): mixing the sexes would compare a name
    with faces it is not expected to fit, which makes the test anti-conservative.
    """
    has_photos = np.asarray(has_photos, bool)
    n = len(has_photos)
    sex = np.asarray([s if s in ("f", "m") else "" for s in sexes], dtype=object)
    others = has_photos[None, :] & ~np.eye(n, dtype=bool)
    return others & (sex[:, None] != "") & (sex[:, None] == sex[None, :])


def matched_means(
    per_photo: Sequence[np.ndarray | None],
    columns: np.ndarray,
    seed: int,
    keys: Sequence[int],
) -> np.ndarray:
    """(N, N): entry (i, j) is the mean of column ``columns[i]`` over person j's photos,
    using as many of j's photos as person i has (a seeded subset; all of them when j has
    fewer, which only makes the test conservative).

    ``per_photo[j]``: (P_j, R) values of person j's photos (None without photos); ``keys``:
    a stable integer per person (seeds j's photo order, the same whoever j is compared with).
    """
    n = len(per_photo)
    counts = np.array([0 if v is None else len(v) for v in per_photo])
    orders = [
        None if v is None else np.random.default_rng([seed, keys[j]]).permutation(len(v))
        for j, v in enumerate(per_photo)
    ]
    out = np.full((n, n), np.nan)
    columns = np.asarray(columns)
    for size in np.unique(counts[counts > 0]):
        targets = np.flatnonzero(counts == size)
        for j, values in enumerate(per_photo):
            if values is None:
                continue
            subset = values[orders[j][:size]]
            out[targets, j] = subset[:, columns[targets]].mean(axis=0)
    return out


@dataclass(frozen=True)
class FaceTests:
    """Face-association tests of many people at once (arrays over people, or draws x people).

    ``face_blind``: the mean of the name's statistic on the reference people's photos: what
    an attacker who never saw this person's face would score them by.
    """

    p_value: np.ndarray
    z: np.ndarray
    n_reference: np.ndarray
    statistic: np.ndarray
    face_blind: np.ndarray
    p_conservative: np.ndarray


def face_tests(
    matrix: np.ndarray, mask: np.ndarray, tie_break: np.ndarray | None = None
) -> FaceTests:
    """``matrix`` (..., N, N): entry (i, j) is person i's name's statistic on person j's
    photos (the diagonal: on i's own); ``mask`` (N, N) from :func:`reference_mask`;
    ``tie_break`` (..., N): uniform draws that break ties (see :func:`rank_p_values`)."""
    own = np.diagonal(matrix, axis1=-2, axis2=-1)
    valid = np.broadcast_to(mask, matrix.shape) & ~np.isnan(matrix)
    null = np.nan_to_num(matrix, nan=-np.inf)
    conservative, z, n = rank_p_values(own, null, valid)
    p = conservative if tie_break is None else rank_p_values(own, null, valid, tie_break)[0]
    with np.errstate(invalid="ignore", divide="ignore"):
        blind = np.where(valid, np.nan_to_num(matrix), 0).sum(axis=-1) / n
    return FaceTests(p_value=p, z=z, n_reference=n, statistic=own, face_blind=blind,
                     p_conservative=conservative)


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


def simes(p_values: np.ndarray) -> np.ndarray:
    """Simes' combination along the last axis, min_j m p_(j) / j over the m non-NaN entries
    (NaN where there are none): a valid p-value for "every null holds" when the p-values are
    independent or positively dependent (PRDS)."""
    p = np.sort(np.asarray(p_values, float), axis=-1)  # NaN sorts last
    m = (~np.isnan(p)).sum(axis=-1, keepdims=True)
    ranks = np.arange(1, p.shape[-1] + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        combined = np.nanmin(np.where(np.isnan(p), np.inf, p * m / ranks), axis=-1)
    return np.where(m[..., 0] > 0, np.minimum(combined, 1.0), np.nan)


@dataclass(frozen=True)
class HierarchicalVerdicts:
    """:func:`hierarchical_verdicts` for N people and C claims.

    ``p_person`` (N,): Simes' combination of each person's tested claims; ``q_person`` (N,):
    its Benjamini-Hochberg q-value over people; ``selected`` (N,): people about whom the model
    knows something (q_person <= alpha); ``holds`` (N, C): the claims that hold for them
    (Benjamini-Hochberg within the person at alpha R / N).
    """

    p_person: np.ndarray
    q_person: np.ndarray
    selected: np.ndarray
    holds: np.ndarray


def hierarchical_verdicts(
    p_values: np.ndarray, alpha: float = DEFAULT_ALPHA
) -> HierarchicalVerdicts:
    """Benjamini-Bogomolov over people (families) and their claims: ``p_values`` (N, C), NaN
    for a claim not tested.

    The FDR over people ("the model knows something about this person") is at most alpha when
    the people's combined p-values are independent or PRDS and each person's claims are PRDS
    (what Simes needs); the expected share of false claims among the selected people's claims
    is then at most alpha too. A person selected always has at least one claim that holds.
    """
    p = np.asarray(p_values, float)
    combined = simes(p)
    q_person = benjamini_hochberg(combined)
    n_tested = int((~np.isnan(combined)).sum())
    selected = np.nan_to_num(q_person, nan=1.0) <= alpha
    holds = np.zeros(p.shape, bool)
    if selected.any():
        # BH within each selected person at alpha R / N, written as (q N) / R <= alpha: the
        # same arithmetic as the selection, so a selected person always keeps a claim
        within = benjamini_hochberg(p[selected])
        holds[selected] = np.nan_to_num(within * n_tested / selected.sum(), nan=2.0) <= alpha
    return HierarchicalVerdicts(p_person=combined, q_person=q_person, selected=selected,
                                holds=holds)


def within_person(results: dict[Claim, TestResult]) -> dict[Claim, TestResult]:
    """One person's tested claims with their Benjamini-Hochberg q-values over those claims
    (the N = 1 case of :func:`hierarchical_verdicts`): the claims that hold at alpha are
    those with q <= alpha, and one holds exactly when Simes' p is at most alpha."""
    tested = [claim for claim, result in results.items() if result.tested]
    if not tested:
        return dict(results)
    q = benjamini_hochberg(np.array([results[c].p_value for c in tested], float))
    adjusted = {c: replace(results[c], q_value=float(v)) for c, v in zip(tested, q, strict=True)}
    return {claim: adjusted.get(claim, result) for claim, result in results.items()}


def strongest_claim(results: dict[Claim, TestResult], alpha: float = DEFAULT_ALPHA) -> Claim | None:
    """The strongest claim that holds for one person at ``alpha`` after Benjamini-Hochberg
    over the person's tested claims: face association, then name familiarity (from photos),
    then text only; None when none holds (the chance of a verdict for a person the model does
    not know is then at most alpha, not up to three times alpha)."""
    adjusted = within_person(results)
    for claim in STRENGTH:
        result = adjusted.get(claim)
        if result is not None and result.holds(alpha):
            return claim
    return None
