"""The two claims and the text-only test: p-values, calibration on people the model cannot
know, and which claim each kind of person supports, in checks and in audits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from idia import IdentityInferenceAttack, claims
from idia.run_folder import RunFolder

# --- Pure pieces ----------------------------------------------------------------------------


def test_rank_p_values_count_ties_against_the_person():
    p, z, n = claims.rank_p_values(np.array(2.0), np.array([1.0, 2.0, 3.0, 0.0]))
    assert n == 4 and p == pytest.approx((1 + 2) / 5)  # 2.0 and 3.0 are at least as high
    p, _, _ = claims.rank_p_values(np.array(9.0), np.array([1.0, 2.0, 3.0, 0.0]))
    assert p == pytest.approx(1 / 5)  # the smallest possible p with 4 null values
    valid = np.array([True, False, True, True])
    p, _, n = claims.rank_p_values(np.array(2.0), np.array([1.0, 2.0, 3.0, 0.0]), valid)
    assert n == 3 and p == pytest.approx(2 / 4)
    p, z, n = claims.rank_p_values(np.array(1.0), np.zeros((0,)))
    assert n == 0 and np.isnan(p) and np.isnan(z)


def test_responses_are_standardized_by_the_decoys():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(3, 2, 12))  # 3 photos, 2 templates, 12 candidates
    scores[:, :, 1] += 5.0  # real name 1 far above everyone on every photo
    out = claims.responses(scores, own=1, real=np.array([0, 1]), decoys=np.arange(2, 12))
    assert out.name.shape == (3, 11) and out.cross.shape == (3, 2)
    decoys = scores[..., 2:]
    expected = ((scores[..., 1] - decoys.mean(-1)) / decoys.std(-1, ddof=1)).mean(axis=1)
    assert np.allclose(out.cross[:, 1], expected, atol=1e-5)
    assert (out.name[:, 0] > out.name[:, 1:].max(axis=1)).all()
    # the name table is standardized over its own set: mean 0 per photo and template
    assert np.allclose(out.name.mean(axis=1), 0, atol=1e-5)


def test_hit_counts_count_top1_answers():
    best = np.array([[0, 2, 2], [2, -1, 1]])
    assert claims.hit_counts(best, 4).tolist() == [1, 1, 3, 0]


def test_benjamini_hochberg_matches_the_definition():
    p = np.array([0.01, 0.04, 0.03, 0.20, np.nan, 0.001])
    q = claims.benjamini_hochberg(p)
    finite = p[~np.isnan(p)]
    m = finite.size
    order = np.argsort(finite)
    expected_sorted = [min(1, min(finite[order][k:] * m / np.arange(k + 1, m + 1)))
                       for k in range(m)]
    expected = np.empty(m)
    expected[order] = expected_sorted
    assert np.allclose(q[~np.isnan(p)], expected) and np.isnan(q[4])


def test_name_test_is_calibrated_when_the_real_name_is_just_another_name():
    """Scores with no structure: the real name is exchangeable with the decoys, so its
    p-values must be uniform (and never below 1/(1 + n))."""
    rng = np.random.default_rng(7)
    sexes = np.array(["f", "m"] * 60, dtype=object)
    p_values = []
    for _ in range(400):
        scores = rng.normal(size=(5, 3, 121))
        out = claims.responses(scores, own=0, real=np.array([0]), decoys=np.arange(1, 121))
        p_values.append(claims.name_test(out.name, sexes, "f").p_value)
    p_values = np.array(p_values)
    assert p_values.min() >= 1 / 61
    assert stats.kstest(p_values, "uniform").pvalue > 0.01


def test_reference_mask_matches_sex_and_never_falls_back_to_everyone():
    mask = claims.reference_mask(["f", "m", "f", None, "m"], np.array([1, 1, 1, 1, 0], bool))
    assert mask[0].tolist() == [False, False, True, False, False]  # other women with photos
    # unknown sex, or nobody else of that sex with photos: no reference (not tested), never
    # the other sex (the old fallback, which compares a name with faces it does not fit)
    assert not mask[3].any() and not mask[1].any()
    result = claims.face_tests(np.zeros((5, 5)), mask)
    assert np.isnan(result.p_value[[1, 3]]).all() and not np.isnan(result.p_value[0])


def test_matched_means_use_as_many_photos_as_the_person_has():
    per_photo = [np.arange(6.0)[:, None] * [1, 10], np.ones((2, 2)), None]
    means = claims.matched_means(per_photo, np.array([0, 1, 0]), seed=0, keys=[1, 2, 3])
    assert means[1, 1] == 1.0 and means[0, 1] == 1.0  # person 1 has 2 photos
    # person 1 (2 photos) looks at 2 of person 0's 6 photos, in column 1 (its name)
    pair_sum = means[1, 0] * 2 / 10  # two distinct photos of 0..5, times 10
    assert pair_sum == round(pair_sum) and 1 <= pair_sum <= 9
    assert means[0, 0] == pytest.approx(2.5)  # own: all 6 photos
    assert np.isnan(means[:, 2]).all() and np.isnan(means[2]).all()
    again = claims.matched_means(per_photo, np.array([0, 1, 0]), seed=0, keys=[1, 2, 3])
    assert np.array_equal(means, again, equal_nan=True)


def test_face_tests_rank_the_own_photos_among_other_people():
    matrix = np.array([[5.0, 1.0, 2.0], [0.0, 1.0, 3.0], [0.0, 0.0, 0.0]])
    mask = ~np.eye(3, dtype=bool)
    result = claims.face_tests(matrix, mask)
    assert result.p_value.tolist() == pytest.approx([1 / 3, 2 / 3, 1.0])
    assert result.face_blind.tolist() == pytest.approx([1.5, 1.5, 0.0])


def test_text_statistics_match_a_brute_force_computation():
    rng = np.random.default_rng(3)
    embeddings = rng.normal(size=(2, 9, 5))
    embeddings /= np.linalg.norm(embeddings, axis=-1, keepdims=True)
    real, decoys = np.array([0, 1]), np.arange(2, 9)
    real_stat, decoy_stat = claims.text_only_statistics(embeddings, real, decoys, k=3)
    for r_i, r in enumerate(real):
        members = np.r_[r, decoys]
        for position, name in enumerate(members):
            values = []
            for t in range(2):
                others = [m for m in members if m != name]
                sims = np.sort(embeddings[t, others] @ embeddings[t, name])[::-1][:3]
                values.append(1 - sims.mean())
            expected = np.mean(values)
            got = real_stat[r_i] if position == 0 else decoy_stat[r_i, position - 1]
            assert got == pytest.approx(expected)


def test_strongest_claim_orders_face_then_name_then_text():
    yes = claims.TestResult("face_association", True, p_value=0.01)
    no = claims.TestResult("name_familiarity", True, p_value=0.5)
    assert claims.strongest_claim({"face_association": yes, "name_familiarity": no}) == (
        "face_association"
    )
    text = claims.TestResult("text_only", True, p_value=0.001)
    assert claims.strongest_claim({"name_familiarity": no, "text_only": text}) == "text_only"
    assert claims.strongest_claim({"name_familiarity": no}) is None


# --- Audits and checks with a model that knows people in different ways --------------------


def _people_folder(model, names, root, photos=4):
    for name in names:
        folder = root / name.replace(" ", "_")
        folder.mkdir(parents=True)
        for v in range(photos):
            model.photo(name, v).save(folder / f"{v}.png")
    return root


@pytest.fixture(scope="module")
def audited(familiarity_lab, familiarity_people):
    """The shared familiarity lab's audit (conftest.py): its summary, its results with each
    person's kind, and the lab's folder."""
    run = RunFolder(familiarity_lab / "run")
    results = run.results.copy()
    kind = {n: k for k, names in familiarity_people.items() for n in names}
    results["kind"] = results["name"].map(kind)
    return run.summary, results, familiarity_lab


def test_audit_separates_the_two_claims(audited):
    _, results, _ = audited
    by_kind = results.groupby("kind")
    # the face is linked to the name: the face test says so (after BH across 150 people)
    assert by_kind["face_verdict"].mean()["associated"] >= 0.9
    # the name is known as text only: the name tests say so, the face test does not
    assert by_kind["name_verdict"].mean()["familiar"] >= 0.9
    assert by_kind["text_verdict"].mean()["familiar"] >= 0.9
    assert by_kind["face_verdict"].mean()["familiar"] <= 0.1
    # unknown people: nothing holds
    for column in ("face_verdict", "name_verdict", "text_verdict"):
        assert by_kind[column].mean()["unknown"] <= 0.1
    associated = results[results["kind"] == "associated"]
    assert (associated["verdict"] == "face_association").mean() >= 0.9
    familiar = results[results["kind"] == "familiar"]
    assert (familiar["verdict"] == "name_familiarity").mean() >= 0.9


def test_audit_p_values_are_uniform_where_the_null_holds(audited):
    _, results, _ = audited
    unknown = results[results["kind"] == "unknown"]
    no_face = results[results["kind"] != "associated"]
    # a name whose parts no pool part matches in familiarity is not tested (NaN)
    tested = unknown[unknown["null"] == "full_name"]
    assert len(tested) >= 70 and tested["p_name"].notna().all()
    assert stats.kstest(tested["p_name"], "uniform").pvalue > 0.01
    assert stats.kstest(tested["p_text"], "uniform").pvalue > 0.01
    assert stats.kstest(no_face["p_face"], "uniform").pvalue > 0.01


def test_audit_face_references_are_other_people_of_the_same_sex(audited):
    _, results, _ = audited
    by_sex = results["sex"].value_counts()
    expected = results["sex"].map(lambda s: by_sex[s] - 1)
    assert (results["n_face_reference"] == expected).all()
    assert results["face_reference_same_sex"].all()


def test_audit_summary_reports_every_rule_with_people_and_intervals(audited):
    summary, _, root = audited
    rules = summary["rules"]
    assert set(rules) >= {"paper", "name_familiarity", "face_association", "text_only",
                          "face_blind"}
    for rule in ("paper", "name_familiarity", "face_association", "text_only"):
        assert rules[rule]["n_members"] == 75 and rules[rule]["n_non_members"] == 75
        low, high = rules[rule]["tpr_ci"]
        assert low <= rules[rule]["tpr"] <= high
    # the face-blind baseline separates members (familiar names) from non-members well: the
    # name alone carries that signal, which is why it is reported beside the face test
    assert rules["face_blind"]["auc"] > 0.9
    assert (root / "run" / "responses.parquet").exists()
    assert (root / "run" / "text_only.parquet").exists()
    csv = pd.read_csv(root / "run" / "results.csv")
    assert {"score", "member", "p_name", "p_face", "p_text", "q_face", "verdict"} <= set(csv)


def test_check_with_reference_people(familiarity_model, familiarity_people, tmp_path):
    reference_names = familiarity_people["unknown"][:40]
    reference = _people_folder(familiarity_model, reference_names, tmp_path / "reference")
    attacker = IdentityInferenceAttack(familiarity_model, crop="none", num_names=300, seed=0,
                                       name_decoys=200, progress=False)

    def check(name):
        photos = [familiarity_model.photo(name, v) for v in range(4)]
        return attacker.check(photos, name, reference=reference)

    associated = check(familiarity_people["associated"][0])
    assert associated.verdict == "face_association"
    face = associated.claims["face_association"]
    assert face.tested and face.p_value == pytest.approx(1 / (1 + face.n_null))
    familiar = check(familiarity_people["familiar"][0])
    assert familiar.verdict == "name_familiarity"
    assert familiar.claims["face_association"].p_value > 0.05
    # a reference person who is the person under test is left out
    unknown = familiarity_people["unknown"][0]
    result = check(unknown)
    assert result.n_reference_people == result.claims["face_association"].n_null
    assert result.claims["face_association"].n_null < 40
    assert result.verdict is None


def test_check_without_reference_or_photos_says_what_was_not_tested(
    familiarity_model, familiarity_people
):
    attacker = IdentityInferenceAttack(familiarity_model, crop="none", num_names=300, seed=0,
                                       name_decoys=200, progress=False)
    name = familiarity_people["familiar"][1]
    result = attacker.check([familiarity_model.photo(name, 0)], name)
    assert not result.claims["face_association"].tested
    assert "--reference" in result.claims["face_association"].reason
    text_only = attacker.check([], name)  # no photo: the text tower alone
    assert text_only.n_photos == 0 and text_only.score is None and text_only.member is None
    assert not text_only.claims["name_familiarity"].tested
    assert text_only.claims["text_only"].holds() and text_only.verdict == "text_only"
    unknown = familiarity_people["unknown"][1]
    assert attacker.check([], unknown).verdict is None


def test_evaluate_redraws_the_tests_and_checks_their_calibration(audited, lab_copy):
    from idia.evaluation import EvaluationSettings, evaluate_run

    _, results, root = audited
    run = lab_copy(root) / "run"  # evaluate_run writes into the run folder
    document = evaluate_run(run, EvaluationSettings(sizes=[2, 4], draws=4, seed=1))
    at_all_photos = document["sizes"][-1]
    # all photos in every draw: the draws agree with the audit's own verdicts
    members = results[results["truth"] == True]  # noqa: E712
    assert at_all_photos["name_familiarity_tpr_mean"] == pytest.approx(
        members["name_verdict"].mean()
    )
    assert at_all_photos["face_association_tpr_mean"] == pytest.approx(
        members["face_verdict"].mean()
    )
    assert at_all_photos["face_association_tpr_sd"] == 0
    # fewer photos: the face test loses power, its false positives stay rare
    at_two = document["sizes"][0]
    assert at_two["face_association_tpr_mean"] <= at_all_photos["face_association_tpr_mean"]
    assert at_two["face_association_fpr_mean"] <= 0.1
    calibration = document["claims"]["null_calibration"]
    assert set(calibration) == {"name_familiarity", "face_association", "text_only"}
    # non-members here are the unknown people: every test's null holds for them
    tested = int((results[results["truth"] == False]["null"] == "full_name").sum())  # noqa: E712
    for claim, fit in calibration.items():
        n = 75 if claim == "face_association" else tested  # the name tests: people tested
        assert fit["n"] == n and len(fit["qq"]) == n and fit["fails"] is False
        for key, level in (("at_0.05", 0.05), ("at_0.01", 0.01)):
            check = fit[key]  # a share with its exact interval, over the people tested
            low, high = check["ci"]
            assert check["n"] == n and low <= check["share"] <= high and low <= level
        assert fit["pit"]["p"] > 0.001 and fit["pit"]["seed"] == 1
    assert document["claims"]["rules"]["face_association"]["n_members"] == 75
