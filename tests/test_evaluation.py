"""idia evaluate: resampling, votes, metrics with CIs, ROC, bins, run folders and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import stats
from typer.testing import CliRunner

from idia import attack
from idia import evaluation as ev
from idia.audit import Person, finalize_run, write_json, write_parquet
from idia.cli import app
from idia.evaluation import EvaluationSettings
from idia.names import CandidateSet, normalize_name

runner = CliRunner()
T = 3  # templates in the hand-made runs


def write_run(
    path: Path,
    predictions: list[np.ndarray],
    truth: list[bool | None] | None = None,
    counts: list[int | None] | None = None,
    n_candidates: int = 20,
    threshold: int = 1,
    probabilities: list[np.ndarray] | None = None,
) -> Path:
    """A run folder as ``idia audit`` writes it, from hand-made predictions: person i's real
    name is candidate i; ``predictions[i]`` is (photos, templates); no photos = empty."""
    parts = path / "parts"
    parts.mkdir(parents=True)
    n_people = len(predictions)
    names = [f"Person {i}" for i in range(n_people)]
    names += [f"Decoy {i}" for i in range(n_candidates - n_people)]
    candidates = CandidateSet(tuple(names), n_people, 0, "hand-made")
    n_templates = max(np.shape(p)[1] for p in predictions if np.size(p))
    for i, chosen in enumerate(predictions):
        chosen = np.asarray(chosen, dtype=np.int64).reshape(-1, n_templates)
        n_photos = chosen.shape[0]
        hit = chosen == i
        probability = (
            np.where(hit, 0.8, 0.05) if probabilities is None else np.asarray(probabilities[i])
        )
        photo = np.repeat(np.arange(n_photos), n_templates)
        rows = pd.DataFrame(
            {
                "person": np.full(n_photos * n_templates, i, dtype=np.int64),
                "photo": photo,
                "path": [f"{i}/{k}.png" for k in photo],
                "template": np.tile(np.arange(n_templates), n_photos),
                "predicted": chosen.reshape(-1),
                "real_index": np.full(n_photos * n_templates, i),
                "real_rank": np.where(hit, 0.0, 4.0).reshape(-1),
                "real_probability": np.broadcast_to(probability, chosen.shape).reshape(-1),
            }
        )
        write_parquet(parts / f"{i:06d}.predictions.parquet", rows)
        photos = pd.DataFrame(
            {
                "person": [i] * n_photos,
                "name": [names[i]] * n_photos,
                "path": [f"{i}/{k}.png" for k in range(n_photos)],
                "status": ["ok"] * n_photos,
            }
        )
        write_parquet(parts / f"{i:06d}.photos.parquet", photos)
    config = {
        "model": "hand:made",
        "seed": 0,
        "num_names": n_candidates,
        "candidate_source": "hand-made",
        "templates": [f"template {t}: {{}}" for t in range(n_templates)],
        "threshold": threshold,
        "crop": "none",
        "people": names[:n_people],
    }
    write_json(path / "config.json", config)
    write_parquet(path / "candidates.parquet", candidates.to_frame())
    table = None
    if truth is not None:
        table = pd.DataFrame(
            {
                "name": names[:n_people],
                "key": [normalize_name(n) for n in names[:n_people]],
                "member": truth,
                "count": pd.array(counts or [None] * n_people, dtype="Int64"),
            }
        ).dropna(subset=["member"])
    people = [Person(i, names[i], path, ()) for i in range(n_people)]
    finalize_run(path, people, candidates, table, threshold)
    return path


def all_photos(real: int, n_photos: int) -> np.ndarray:
    return np.full((n_photos, T), real)


def decoys(n_photos: int) -> np.ndarray:
    """Decoys 10-19, a different one per photo under each template (up to 4 photos): no
    name ever has a majority."""
    return 10 + np.arange(n_photos * T).reshape(n_photos, T) % 10


# --- Confidence intervals -------------------------------------------------------------------


def test_ci_bounds_on_known_values():
    # FPR 0/8 (the paper's non-members): the upper bounds are closed forms.
    z = stats.norm.ppf(0.975)
    low, high = ev.wilson_interval(0, 8)
    assert low == 0 and high == pytest.approx(z**2 / (8 + z**2))
    low, high = ev.clopper_pearson_interval(0, 8)
    assert low == 0 and high == pytest.approx(1 - 0.025 ** (1 / 8))
    assert high == pytest.approx(0.3694, abs=1e-4)
    low, high = ev.clopper_pearson_interval(8, 8)
    assert low == pytest.approx(0.025 ** (1 / 8)) and high == 1
    # Textbook values for 5 of 10.
    assert np.allclose(ev.wilson_interval(5, 10), (0.2366, 0.7634), atol=1e-4)
    assert np.allclose(ev.clopper_pearson_interval(5, 10), (0.1871, 0.8129), atol=1e-4)


@pytest.mark.parametrize(("k", "n"), [(0, 1), (1, 3), (7, 20), (19, 20), (250, 500)])
def test_ci_agree_with_scipy_binomtest(k, n):
    result = stats.binomtest(k, n)
    for method, scipy_method in (("wilson", "wilson"), ("clopper-pearson", "exact")):
        expected = result.proportion_ci(0.95, method=scipy_method)
        low, high = ev.binomial_interval(k, n, method)
        assert (low, high) == pytest.approx((expected.low, expected.high), abs=1e-9)


def test_ci_narrow_with_more_people_and_undefined_without_any():
    widths = [np.subtract(*ev.wilson_interval(0.1 * n, n)[::-1]) for n in (10, 100, 1000)]
    assert widths[0] > widths[1] > widths[2]
    assert np.isnan(ev.wilson_interval(0, 0)).all()
    assert np.isnan(ev.clopper_pearson_interval(0, 0)).all()
    with pytest.raises(ValueError, match="CI method"):
        ev.binomial_interval(1, 2, "bayes")  # type: ignore[arg-type]


# --- ROC ------------------------------------------------------------------------------------


def test_roc_on_a_hand_computed_case_with_ties():
    roc = ev.roc_curve(np.array([3, 2, 2, 1, 0]), np.array([1, 1, 0, 0, 0], bool))
    assert roc.tpr.tolist() == [0, 0.5, 1, 1, 1]
    assert roc.fpr.tolist() == pytest.approx([0, 0, 1 / 3, 2 / 3, 1])
    # Pairs (member, non-member): 3 beats all three; 2 ties one and beats two -> 5.5 / 6.
    assert roc.auc == pytest.approx(5.5 / 6)
    assert roc.tpr_at_fpr(0.01) == 0.5
    assert roc.tpr_at_fpr(0.34) == 1.0


@given(
    scores=hnp.arrays(np.int64, st.integers(2, 40), elements=st.integers(0, 5)),
    seed=st.integers(0, 1000),
)
@settings(max_examples=60, deadline=None)
def test_auc_is_the_mann_whitney_statistic(scores, seed):
    truth = np.random.default_rng(seed).random(len(scores)) < 0.5
    if truth.all() or not truth.any():
        truth[0] = ~truth[0]
    u = stats.mannwhitneyu(scores[truth], scores[~truth]).statistic
    assert ev.roc_curve(scores, truth).auc == pytest.approx(u / (truth.sum() * (~truth).sum()))


def test_roc_without_one_class_is_nan():
    roc = ev.roc_curve(np.array([1.0, 2.0]), np.array([True, True]))
    assert np.isnan(roc.auc) and np.isnan(roc.tpr_at_fpr(0.01))


def test_benjamini_hochberg_known_values():
    # Sorted p x m / rank = 0.04, 0.06, 0.0533, 0.5; then the running minimum from the top.
    q = ev.benjamini_hochberg(np.array([0.01, 0.04, 0.03, 0.5]))
    assert q.tolist() == pytest.approx([0.04, 0.16 / 3, 0.16 / 3, 0.5])


# --- Sampling and votes ---------------------------------------------------------------------


def test_sampling_draws_distinct_valid_photos_and_marks_people_with_too_few():
    n_photos = np.array([5, 3, 0, 8])
    indices, included = ev.sample_photo_indices(n_photos, 3, 50, np.random.default_rng(1))
    assert indices.shape == (50, 4, 3)
    assert included.tolist() == [True, True, False, True]
    assert (indices[:, ~included] == -1).all()
    for person in np.flatnonzero(included):
        chosen = indices[:, person]
        assert (chosen >= 0).all() and (chosen < n_photos[person]).all()
        assert all(len(set(row)) == 3 for row in chosen.tolist())
    assert np.array_equal(np.sort(indices[:, 1], axis=1), np.tile([0, 1, 2], (50, 1)))


def test_sampling_is_uniform():
    indices, _ = ev.sample_photo_indices(np.array([10]), 3, 20000, np.random.default_rng(2))
    frequency = np.bincount(indices.ravel(), minlength=10) / indices.shape[0]
    assert np.allclose(frequency, 0.3, atol=0.015)


def test_sampling_is_reproducible_per_seed_and_independent_of_other_sizes():
    n_photos = np.array([30] * 5)
    first, _ = ev.sample_photo_indices(n_photos, 7, 4, ev.size_rng(11, 7))
    again, _ = ev.sample_photo_indices(n_photos, 7, 4, ev.size_rng(11, 7))
    other, _ = ev.sample_photo_indices(n_photos, 7, 4, ev.size_rng(12, 7))
    assert np.array_equal(first, again) and not np.array_equal(first, other)


@st.composite
def prediction_grids(draw):
    people, photos = draw(st.integers(1, 5)), draw(st.integers(1, 7))
    grid = draw(hnp.arrays(np.int32, (people, photos, T), elements=st.integers(0, 3)))
    n_photos = draw(hnp.arrays(np.int64, people, elements=st.integers(0, photos)))
    grid[np.arange(photos)[None, :] >= n_photos[:, None]] = -1
    real = draw(hnp.arrays(np.int64, people, elements=st.integers(0, 3)))
    return grid, n_photos, real


@given(data=prediction_grids(), size=st.integers(1, 7), seed=st.integers(0, 99))
@settings(max_examples=150, deadline=None)
def test_vectorised_scores_equal_the_majority_rule(data, size, seed):
    """The batched vote counts agree with attack.majority_votes, ties and padding included."""
    grid, n_photos, real = data
    indices, included = ev.sample_photo_indices(n_photos, size, 3, np.random.default_rng(seed))
    scores = ev.draw_scores(ev.vote_tables(grid, real), ev.selection_mask(indices, grid.shape[1]))
    for d in range(3):
        for person in np.flatnonzero(included):
            chosen = grid[person, indices[d, person]]
            winners, _ = attack.majority_votes(chosen)
            assert scores[d, person] == attack.score(winners, real[person])


def test_a_tie_for_the_top_is_no_prediction():
    # Two photos, one for the real name and one for a decoy, under every template: a tie.
    grid = np.array([[[0, 0, 0], [5, 5, 5]]], dtype=np.int32)
    tables = ev.vote_tables(grid, np.array([0]))
    assert ev.draw_scores(tables, np.ones((1, 1, 2), np.float32)).tolist() == [[0]]
    assert ev.draw_scores(tables, np.array([[[1, 0]]], np.float32)).tolist() == [[3]]


# --- Evaluations of hand-made runs ----------------------------------------------------------


@pytest.fixture
def small_run(tmp_path):
    """Members 0-2, non-members 3-4, person 5 without truth.

    0: 4 photos, all naming them            -> member at every size
    1: 2 photos, one names them, one a decoy -> size 1: member iff photo 0 drawn; size 2: tie
    2: 3 photos, two name them              -> size 3: 2 vs 1 -> member
    3: 3 photos of decoys                   -> never
    4: 1 photo naming them (a false member) -> size 1 only
    """
    predictions = [
        all_photos(0, 4),
        np.array([[1, 1, 1], [7, 7, 7]]),
        np.array([[2, 2, 2], [2, 2, 2], [9, 9, 9]]),
        decoys(3),
        all_photos(4, 1),
        all_photos(5, 2),
    ]
    truth = [True, True, True, False, False, None]
    counts = [5, 1, 5, 0, 0, None]
    return write_run(tmp_path / "run", predictions, truth, counts)


def test_hand_computed_metrics_per_size(small_run):
    run = ev.load_run(small_run)
    options = EvaluationSettings(sizes=[1, 2, 3, 5], draws=40, seed=4, population="per-size")
    document, frames = ev.evaluate(run, options)
    by_size = frames["evaluation"].set_index("size")
    draws = frames["evaluation_draws"]

    size2 = by_size.loc[2]  # 0 member; 1 tie -> FN; 2 two photos of three; 3 TN; 4 excluded
    assert (size2["n_members"], size2["n_non_members"], size2["n_excluded"]) == (3, 1, 1)
    assert size2["n_excluded_non_members"] == 1 and size2["n_excluded_members"] == 0
    assert size2["fn_mean"] >= 1 and size2["fp_mean"] == 0 and size2["tn_mean"] == 1

    size3 = by_size.loc[3]  # people 0, 2, 3 only; 2 always wins 2 vs 1
    assert (size3["tp_mean"], size3["fn_mean"], size3["tn_mean"]) == (2, 0, 1)
    assert size3["tp_sd"] == 0 and size3["tpr_mean"] == 1.0 and size3["fpr_mean"] == 0.0

    # Size 1: person 1 is a member exactly in the draws that picked photo 0, and person 4's
    # single photo makes it a false member every time.
    indices, _ = ev.sample_photo_indices(run.n_photos, 1, 40, ev.size_rng(4, 1))
    size1 = draws[draws["size"] == 1]
    photo_zero_of_person_1 = indices[:, 1, 0] == 0
    person_2_named = np.isin(indices[:, 2, 0], [0, 1])
    expected_tp = 1 + photo_zero_of_person_1 + person_2_named
    assert size1["tp"].tolist() == expected_tp.tolist()
    assert (size1["fp"] == 1).all() and (size1["tn"] == 1).all()
    assert by_size.loc[1, "tpr_mean"] == pytest.approx(expected_tp.mean() / 3)
    assert by_size.loc[1, "tpr_sd"] == pytest.approx(np.std(expected_tp / 3, ddof=1))

    assert by_size.loc[5, "n_included"] == 0 and document["excluded_sizes"] == [5]
    assert by_size.loc[5, "n_excluded"] == 6
    # Person 5 has no truth: counted as called member but in no confusion cell.
    assert by_size.loc[2, "n_included"] == 5 and by_size.loc[2, "n_judged"] == 4


def test_a_fixed_population_judges_the_same_people_at_every_size(small_run):
    run = ev.load_run(small_run)
    document, frames = ev.evaluate(run, EvaluationSettings(sizes=[1, 2, 3], draws=10, seed=4))
    by_size = frames["evaluation"].set_index("size")
    # people 0, 2, 3 have >= 3 photos; 1, 4 and 5 (without truth) do not
    assert by_size["n_included"].tolist() == [3, 3, 3]
    assert by_size["n_members"].tolist() == [2, 2, 2]
    assert by_size["n_non_members"].tolist() == [1, 1, 1]
    assert by_size["n_excluded"].tolist() == [3, 3, 3]
    assert document["population"] == {
        "mode": "fixed", "min_photos": 3, "n_in_population": 3, "n_left_out": 3,
        "n_left_out_by_count": 0,
    }
    # the false member (person 4, one photo) no longer enters size 1
    assert by_size.loc[1, "fp_mean"] == 0
    with pytest.raises(ev.EvaluationError, match="nobody has 9 usable photos"):
        ev.evaluate(run, EvaluationSettings(sizes=[1, 9], draws=2))


def test_the_papers_protocol_leaves_out_people_it_left_out(tmp_path):
    photos = 30
    predictions = [all_photos(0, photos), all_photos(1, photos), decoys(4).repeat(8, axis=0)[
        :photos], all_photos(3, 12)]
    run_dir = write_run(tmp_path / "run", predictions, [True, True, False, True],
                        [5, 300, 0, 40])
    document = ev.evaluate_run(run_dir, EvaluationSettings(protocol="paper"))
    settings = document["settings"]
    assert settings["sizes"] == list(ev.PAPER_PROTOCOL["sizes"]) and settings["draws"] == 20
    assert settings["protocol"]["min_photos"] == 30 and settings["bins"] == "paper"
    # person 1 occurs 300 times (left out by the count limit); person 3 has 12 photos
    assert document["population"]["n_left_out_by_count"] == 1
    assert document["population"]["n_in_population"] == 2
    assert {row["n_members"] for row in document["sizes"]} == {1}
    assert {row["n_non_members"] for row in document["sizes"]} == {1}


def test_cis_reflect_the_people_behind_each_rate(small_run):
    _, frames = ev.evaluate(ev.load_run(small_run), EvaluationSettings(sizes=[3], draws=5, seed=0))
    row = frames["evaluation"].iloc[0]
    # FPR 0 of 1 non-member and TPR 2 of 2 members: wide intervals, as they must be.
    assert np.allclose((row["fpr_ci_low"], row["fpr_ci_high"]), ev.wilson_interval(0, 1))
    assert np.allclose((row["tpr_ci_low"], row["tpr_ci_high"]), ev.wilson_interval(2, 2))
    assert row["fpr_ci_high"] > 0.7


def test_threshold_changes_verdicts(small_run):
    run = ev.load_run(small_run)
    _, loose = ev.evaluate(run, EvaluationSettings(sizes=[3], draws=3, threshold=1))
    _, strict = ev.evaluate(run, EvaluationSettings(sizes=[3], draws=3, threshold=3))
    assert loose["evaluation"]["tp_mean"].iloc[0] == 2
    assert strict["evaluation"]["tp_mean"].iloc[0] == 2  # both members win all 3 templates
    partial = write_run(
        small_run.parent / "partial", [np.array([[0, 0, 9]] * 3), decoys(3)], [True, False]
    )
    options = EvaluationSettings(sizes=[3], draws=2, threshold=3)
    _, frames = ev.evaluate(ev.load_run(partial), options)
    assert frames["evaluation"]["tp_mean"].iloc[0] == 0  # score 2 < 3
    with pytest.raises(ev.EvaluationError, match="threshold"):
        ev.evaluate(run, EvaluationSettings(sizes=[1], threshold=4))


def test_roc_auc_and_low_fpr_from_continuous_scores(tmp_path):
    # Members' real-name probability is higher but the top-1 score cannot separate them.
    predictions = [decoys(4)] * 6
    probabilities = [np.full((4, T), p) for p in (0.3, 0.4, 0.5, 0.1, 0.2, 0.35)]
    run_dir = write_run(
        tmp_path / "run", predictions, [True] * 3 + [False] * 3, probabilities=probabilities
    )
    document, frames = ev.evaluate(ev.load_run(run_dir), EvaluationSettings(sizes=[2], draws=3))
    roc = document["roc"]
    assert roc["score"]["auc"] == 0.5
    assert roc["probability"]["auc"] == pytest.approx(8 / 9)  # 0.3 < 0.35 is the only miss
    assert roc["probability"]["empirical_tpr_at_fpr_1pct"] == pytest.approx(2 / 3)
    assert frames["evaluation"]["auc_probability_mean"].iloc[0] == pytest.approx(8 / 9)
    assert document["continuous_scores"] == ["probability", "rank"]


def test_frequency_bins_paper_and_exact():
    counts = pd.Series([0, 1, 24, 25, 26, 175, 199, 200, 299, 300, 301, None], dtype="Int64")
    labels, order = ev.frequency_bins(counts, "paper")
    assert labels.tolist() == [
        "0-24", "0-24", "0-24", "25-49", "25-49", "150-199", "150-199", "200-224", "275-299",
        "300+", "300+", None,
    ]  # the paper's left-closed bins: [0, 25), ..., [150, 200), ..., [300, inf)
    assert order[0] == "0-24" and order[-1] == "300+" and len(order) == 12


def test_paper_bins_agree_with_the_census():
    from idia.census import bin_label

    counts = pd.Series(range(0, 420), dtype="Int64")
    labels, order = ev.frequency_bins(counts, "paper")
    census = [bin_label(int(c)) for c in counts]
    # one evaluation bin per census bin, the same people in each
    pairs = set(zip(labels, census, strict=True))
    assert len(pairs) == len(order) == len(set(census))
    labels, order = ev.frequency_bins(pd.Series([1, 5, 10, 75, 5], dtype="Int64"), "auto")
    assert order == ["1", "5", "10", "75"] and labels.tolist() == ["1", "5", "10", "75", "5"]
    _, order = ev.frequency_bins(pd.Series(range(40), dtype="Int64"), "auto")
    assert order == ev.paper_bin_labels()


def test_tpr_per_bin(small_run):
    document, frames = ev.evaluate(ev.load_run(small_run), EvaluationSettings(sizes=[3], draws=2))
    bins = frames["evaluation_bins"].set_index("bin")
    assert document["bins"]["labels"] == ["0", "1", "5"]
    assert bins.loc["5", "n_members"] == 2 and bins.loc["5", "tpr_mean"] == 1.0
    assert bins.loc["1", "n_members"] == 0 and bins.loc["1", "n_excluded"] == 1
    assert np.isnan(bins.loc["1", "tpr_mean"])
    assert bins.loc["0", "n_non_members"] == 1 and bins.loc["0", "fpr_mean"] == 0.0


def test_people_without_usable_photos_take_part_in_no_size(tmp_path):
    predictions = [all_photos(0, 2), np.empty((0, T)), decoys(2)]
    run_dir = write_run(tmp_path / "run", predictions, [True, True, False], [3, 3, 0])
    options = EvaluationSettings(sizes=[1, 2, 3], draws=2, population="per-size")
    document, frames = ev.evaluate(ev.load_run(run_dir), options)
    by_size = frames["evaluation"].set_index("size")
    assert by_size["n_members"].tolist() == [1, 1, 0]
    assert by_size["n_excluded"].tolist() == [0, 0, 2]
    assert by_size["n_excluded_members"].tolist() == [0, 0, 1]
    assert document["people"]["n_with_photos"] == 2
    assert frames["evaluation_bins"].set_index(["size", "bin"]).loc[(1, "3"), "n_excluded"] == 0


def test_without_truth_only_verdict_rates(tmp_path):
    run_dir = write_run(tmp_path / "run", [all_photos(0, 2), decoys(2), all_photos(2, 2)])
    document, frames = ev.evaluate(ev.load_run(run_dir), EvaluationSettings(sizes=[1, 2], draws=3))
    row = frames["evaluation"].iloc[1]
    assert not document["has_truth"] and document["roc"]["score"]["n_members"] == 0
    assert row["called_member_mean"] == pytest.approx(2 / 3)
    assert np.isnan(row["tpr_mean"]) and row["n_judged"] == 0
    assert "auc_score_mean" not in frames["evaluation"]


def test_chance_bound_comes_from_attack_and_says_what_it_assumes(small_run):
    options = EvaluationSettings(sizes=[1], draws=2, threshold=1)
    document, _ = ev.evaluate(ev.load_run(small_run), options)
    assert document["chance"]["member_probability"] == attack.chance_member_probability(T, 20, 1)
    assert document["chance"]["expected_false_members"] == pytest.approx(
        2 * attack.chance_member_probability(T, 20, 1)
    )
    assert "independent" in document["chance"]["assumption"]


def test_evaluate_run_writes_reproducible_outputs(small_run):
    first = ev.evaluate_run(small_run, EvaluationSettings(sizes=[1, 2], draws=7, seed=5))
    text = (small_run / "evaluation.json").read_text()
    draws = pd.read_parquet(small_run / "evaluation_draws.parquet")
    again = ev.evaluate_run(small_run, EvaluationSettings(sizes=[1, 2], draws=7, seed=5))
    assert (small_run / "evaluation.json").read_text() == text and first == again
    assert pd.read_parquet(small_run / "evaluation_draws.parquet").equals(draws)
    recorded = json.loads(text)["settings"]
    assert (recorded["sizes"], recorded["draws"], recorded["seed"]) == ([1, 2], 7, 5)
    assert (recorded["threshold"], recorded["ci_method"]) == (1, "wilson")
    sizes = pd.read_parquet(small_run / "evaluation.parquet")
    assert sizes["size"].tolist() == [1, 2] and len(draws) == 14
    ev.evaluate_run(small_run, EvaluationSettings(sizes=[1, 2], draws=7, seed=6))
    assert not pd.read_parquet(small_run / "evaluation_draws.parquet").equals(draws)


def test_vectorised_evaluation_is_fast_enough(tmp_path):
    """500 people x 30 photos, 16 sizes x 20 draws: the paper's protocol in seconds."""
    import time

    rng = np.random.default_rng(0)
    grid = rng.integers(0, 1000, (500, 30, 21)).astype(np.int32)
    tables = ev.vote_tables(grid, np.arange(500))
    start = time.perf_counter()
    for size in ev.DEFAULT_SIZES:
        indices, _ = ev.sample_photo_indices(np.full(500, 30), size, 20, ev.size_rng(0, size))
        ev.draw_scores(tables, ev.selection_mask(indices, 30))
    assert time.perf_counter() - start < 10


# --- Bad input ------------------------------------------------------------------------------


def test_load_run_explains_what_is_wrong(tmp_path, small_run):
    with pytest.raises(ev.EvaluationError, match="not found"):
        ev.load_run(tmp_path / "nope")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ev.EvaluationError, match="not a folder"):
        ev.load_run(tmp_path / "file")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ev.EvaluationError, match="not an idia run folder"):
        ev.load_run(tmp_path / "empty")
    (small_run / "results.parquet").unlink()
    with pytest.raises(ev.EvaluationError, match="unfinished"):
        ev.load_run(small_run)


@pytest.mark.parametrize("text", ["0", "1,-3", "a", "", "1.5"])
def test_parse_sizes_rejects_non_positive_integers(text):
    with pytest.raises(ev.EvaluationError, match="positive integers"):
        ev.parse_sizes(text)


def test_parse_sizes_sorts_and_dedupes():
    assert ev.parse_sizes(" 5,1,3,5 ") == [1, 3, 5]


def test_cli_evaluate(small_run, tmp_path):
    result = runner.invoke(app, ["evaluate", str(small_run), "--sizes", "1,3,9", "--draws", "4",
                                 "--population", "per-size"])
    assert result.exit_code == 0, result.output
    assert (small_run / "evaluation.json").exists()
    assert "No person has enough photos for sizes [9]" in " ".join(result.output.split())
    document = json.loads((small_run / "evaluation.json").read_text())
    assert document["settings"]["sizes"] == [1, 3, 9] and document["settings"]["draws"] == 4
    fixed = runner.invoke(app, ["evaluate", str(small_run), "--sizes", "1,3", "--draws", "4"])
    assert fixed.exit_code == 0, fixed.output
    assert "3 people with fewer than 3 usable photos are left out of every size" in " ".join(
        fixed.output.split()
    )

    def fails(args: list[str], text: str) -> None:
        outcome = runner.invoke(app, ["evaluate", *args])
        assert outcome.exit_code == 2, (args, outcome.output)
        assert f"error: {text}" in " ".join(outcome.output.split())
        assert "Traceback" not in outcome.output

    fails([str(tmp_path / "missing")], "run folder not found")
    fails([str(tmp_path)], f"{tmp_path} is not an idia run folder")
    fails([str(small_run), "--sizes", "0,3"], "sizes must be positive integers")
    fails([str(small_run), "--sizes", "x"], "sizes must be positive integers")
    fails([str(small_run), "--draws", "0"], "--draws must be at least 1")
    fails([str(small_run), "--threshold", "9"], "threshold must be between 1")
    fails([str(small_run), "--ci", "bayes"], "--ci must be one of")
    fails([str(small_run), "--sizes", "1,9"], "nobody has 9 usable photos")
    fails([str(small_run), "--population", "all"], "--population must be one of")
    fails([str(small_run), "--protocol", "notebook"], "--protocol must be one of")
    fails([str(small_run), "--bins", "weird"], "--bins must be one of")


def test_cli_evaluate_on_an_audit_with_one_non_member(tmp_path):
    """It stopped with "unsupported format string passed to NoneType.__format__": the
    calibration line formatted a KS p-value that one non-member cannot give."""
    run = write_run(tmp_path / "run", [all_photos(0, 5), all_photos(1, 5), decoys(3)],
                    [True, True, False], [30, 60, 0])
    result = runner.invoke(app, ["evaluate", str(run), "--bins", "paper", "--sizes", "1,3"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "Calibration on non-members, name:" in text and "(n = 1;" in text
    calibration = json.loads((run / "evaluation.json").read_text())["claims"]["null_calibration"]
    assert calibration["name_familiarity"]["at_0.05"]["n"] == 1


def test_a_calibration_that_cannot_be_computed_says_so_in_the_table():
    from idia.cli.render import calibration_text
    from idia.evaluation._claims import calibration

    assert "n/a (no p-values)" in calibration_text(calibration(np.array([])))
    assert "n/a (the null sizes" in calibration_text(calibration(np.array([0.2, 0.7])))
    assert calibration_text({"n": 1, "ks_p": None}) == "Kolmogorov-Smirnov p = n/a (n = 1)"
