"""The decision rule: majority per template, ties give no prediction, score, p-values."""

from __future__ import annotations

from collections import Counter

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from idia import attack


def reference_majority(column):
    counts = Counter(int(x) for x in column if x >= 0)
    if not counts:
        return -1, 0
    top = max(counts.values())
    winners = [k for k, n in counts.items() if n == top]
    return (winners[0] if len(winners) == 1 else -1), top


@settings(max_examples=300, deadline=None)
@given(arrays(np.int64, st.tuples(st.integers(1, 3), st.integers(0, 9), st.integers(1, 4)),
              elements=st.integers(-1, 5)))
def test_majority_matches_a_plain_counter(predictions):
    winners, votes = attack.majority_votes(predictions)
    for b in range(predictions.shape[0]):
        for t in range(predictions.shape[2]):
            assert (winners[b, t], votes[b, t]) == reference_majority(predictions[b, :, t])


def test_ties_give_no_prediction_and_scores_count_real_name_wins():
    # 4 photos x 3 templates; real name = 7
    predictions = np.array([[7, 1, 7], [7, 2, 3], [5, 1, 3], [7, 2, 7]])
    winners, votes = attack.majority_votes(predictions)
    assert winners.tolist() == [7, -1, -1]  # template 3: 7 and 3 tie 2-2
    assert votes.tolist() == [3, 2, 2]
    assert attack.score(winners, 7) == 1
    assert attack.is_member(attack.score(winners, 7), threshold=1)
    assert not attack.is_member(attack.score(winners, 7), threshold=2)


def test_chance_bound_is_binomial():
    expected = 1 - (1 - 1 / 1000) ** 21
    assert abs(attack.chance_member_probability(21, 1000, 1) - expected) < 1e-12


def test_real_name_rank_and_probability():
    scores = np.array([[0.1, 0.5, 0.3], [0.9, 0.2, 0.4]])
    rank, prob = attack.real_name_stats(scores, real_index=2, logit_scale=10.0)
    assert rank.tolist() == [1, 1]
    expected = np.exp(10 * 0.3) / np.exp(10 * scores[0]).sum()
    assert abs(prob[0] - expected) < 1e-9
