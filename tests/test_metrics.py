"""Metrics against plain loops written from the definitions."""

import itertools
import warnings

import numpy as np
import pandas as pd
import pytest

from skrouter import make_outcomes
from skrouter.metrics import (
    cost_quality_curve,
    nauc_score,
    oracle_curve,
    pareto_frontier,
    peak_score,
    qnc_score,
    single_model_points,
)

# Plain reference implementations: one loop per threshold and per query.


def reference_choice_at_weight(quality_pred, cost_pred, weight):
    """Per query, the model with the best utility at cost weight ``weight``."""
    choices = []
    for q_row, c_row in zip(quality_pred, cost_pred):
        best = None
        for j in range(len(q_row)):
            utility = q_row[j] - weight * c_row[j]
            key = (utility, -c_row[j], -j)
            if best is None or key > best[0]:
                best = (key, j)
        choices.append(best[1])
    return np.array(choices)


def reference_choice_at_cap(quality_pred, cost_pred, cap):
    choices = []
    for q_row, c_row in zip(quality_pred, cost_pred):
        eligible = [j for j in range(len(q_row)) if c_row[j] <= cap]
        if eligible:
            j = max(eligible, key=lambda j: (q_row[j], -c_row[j], -j))
        else:
            j = min(range(len(q_row)), key=lambda j: (c_row[j], -q_row[j], j))
        choices.append(j)
    return np.array(choices)


def reference_curve(quality, cost, quality_pred, cost_pred, sweep, cost_scale):
    """Evaluate every distinct threshold from the definition."""
    rows = np.arange(len(quality))
    if sweep == "cap":
        points = []
        for cap in sorted(set(cost_pred.ravel().tolist())):
            choice = reference_choice_at_cap(quality_pred, cost_pred, cap)
            points.append(
                (cost[rows, choice].mean(), quality[rows, choice].mean(), cap)
            )
        return np.array(points).T

    # Every slope between two models of a query is a candidate breakpoint.
    # A candidate is a real breakpoint when the choice just after it differs
    # from the choice just before it.
    slopes = set()
    for q_row, c_row in zip(quality_pred, cost_pred):
        for a, b in itertools.permutations(range(len(q_row)), 2):
            if c_row[a] > c_row[b]:
                slope = (q_row[a] - q_row[b]) / (c_row[a] - c_row[b])
                if slope > 0:
                    slopes.add(slope)
    slopes = sorted(slopes)
    probes = [(slopes[k] + slopes[k + 1]) / 2 for k in range(len(slopes) - 1)]
    if slopes:
        probes.append(2 * slopes[-1])

    choice = reference_choice_at_weight(quality_pred, cost_pred, 0.0)
    points = [(cost[rows, choice].mean(), quality[rows, choice].mean(), 0.0)]
    for slope, probe in zip(slopes, probes):
        following = reference_choice_at_weight(quality_pred, cost_pred, probe)
        if (following != choice).any():
            choice = following
            points.append(
                (
                    cost[rows, choice].mean(),
                    quality[rows, choice].mean(),
                    cost_scale * slope,
                )
            )
    return np.array(points).T


def reference_frontier(costs, qualities):
    points = sorted(zip(costs, qualities), key=lambda p: (p[0], -p[1]))
    kept, best = [], -np.inf
    for cost, quality in points:
        if quality > best + 1e-12:
            kept.append((cost, quality))
            best = quality
    return np.array(kept).T


def reference_curve_value(frontier_costs, frontier_qualities, c):
    """Q(c): 0 before the frontier, linear between its points, flat after."""
    if c < frontier_costs[0]:
        return 0.0
    for k in range(len(frontier_costs) - 1):
        left, right = frontier_costs[k], frontier_costs[k + 1]
        if left <= c <= right:
            share = (c - left) / (right - left)
            return frontier_qualities[k] + share * (
                frontier_qualities[k + 1] - frontier_qualities[k]
            )
    return frontier_qualities[-1]


def reference_nauc(frontier_costs, frontier_qualities, low, high):
    """Integrate Q exactly, piece by piece: each piece is linear or zero."""
    if high <= low:
        return frontier_qualities.max()
    cuts = sorted({low, high, *[c for c in frontier_costs if low < c < high]})
    area = 0.0
    for left, right in zip(cuts[:-1], cuts[1:]):
        if right <= frontier_costs[0]:
            continue
        area += (
            (right - left)
            * (
                reference_curve_value(frontier_costs, frontier_qualities, left)
                + reference_curve_value(frontier_costs, frontier_qualities, right)
            )
            / 2
        )
    return area / (high - low)


def random_case(seed, n_queries, n_models, ties):
    rng = np.random.default_rng(seed)
    if ties:
        # Coarse grids make equal predictions, equal costs and collinear
        # points (equal breakpoints) frequent.
        quality_pred = rng.integers(0, 5, (n_queries, n_models)) / 4
        cost_pred = rng.choice([0.0, 0.5, 1.0, 1.5, 3.0], (n_queries, n_models))
        quality = rng.integers(0, 2, (n_queries, n_models)).astype(float)
        cost = rng.choice([0.0, 0.25, 1.0, 2.0], (n_queries, n_models))
    else:
        quality_pred = rng.random((n_queries, n_models))
        cost_pred = rng.random((n_queries, n_models)) * 10 ** rng.uniform(
            -4, 0, n_models
        )
        quality = (rng.random((n_queries, n_models)) < 0.5).astype(float)
        cost = rng.random((n_queries, n_models)) * 10 ** rng.uniform(-4, 0, n_models)
    return make_outcomes(quality, cost), quality_pred, cost_pred


CASES = [
    (seed, n_queries, n_models, ties)
    for seed, (n_queries, n_models) in enumerate(
        [(1, 1), (1, 4), (7, 1), (30, 2), (40, 3), (25, 5), (60, 4), (13, 7)]
    )
    for ties in (False, True)
]


@pytest.mark.parametrize("sweep", ["cost_weight", "cap"])
@pytest.mark.parametrize("seed, n_queries, n_models, ties", CASES)
def test_curve_matches_reference_loop(sweep, seed, n_queries, n_models, ties):
    y, quality_pred, cost_pred = random_case(seed, n_queries, n_models, ties)
    quality = y["quality"].to_numpy()
    cost = y["cost"].to_numpy()
    cost_scale = 0.37

    costs, qualities, thresholds = cost_quality_curve(
        y, quality_pred, cost_pred, sweep=sweep, cost_scale=cost_scale
    )
    expected = reference_curve(
        quality, cost, quality_pred, cost_pred, sweep, cost_scale
    )

    assert costs.shape == expected[0].shape
    np.testing.assert_allclose(costs, expected[0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(qualities, expected[1], rtol=0, atol=1e-12)
    np.testing.assert_allclose(thresholds, expected[2], rtol=1e-12, atol=0)


@pytest.mark.parametrize("sweep", ["cost_weight", "cap"])
@pytest.mark.parametrize("seed, n_queries, n_models, ties", CASES)
def test_scores_match_reference(sweep, seed, n_queries, n_models, ties):
    y, quality_pred, cost_pred = random_case(seed, n_queries, n_models, ties)
    quality = y["quality"].to_numpy()
    cost = y["cost"].to_numpy()
    curve = reference_curve(quality, cost, quality_pred, cost_pred, sweep, 1.0)
    frontier_costs, frontier_qualities = reference_frontier(curve[0], curve[1])
    model_costs, model_qualities = cost.mean(axis=0), quality.mean(axis=0)

    for cost_range, (low, high) in {
        "models": (model_costs.min(), model_costs.max()),
        "frontier": (frontier_costs[0], frontier_costs[-1]),
    }.items():
        expected = reference_nauc(frontier_costs, frontier_qualities, low, high)
        score = nauc_score(
            y, quality_pred, cost_pred, sweep=sweep, cost_range=cost_range
        )
        assert score == pytest.approx(expected, abs=1e-12)

    assert peak_score(y, quality_pred, cost_pred, sweep=sweep) == pytest.approx(
        frontier_qualities.max(), abs=1e-12
    )

    best = min(
        range(len(model_costs)),
        key=lambda j: (-model_qualities[j], model_costs[j], j),
    )
    reaching = [
        c
        for c, q in zip(frontier_costs, frontier_qualities)
        if q >= model_qualities[best] - 1e-12
    ]
    qnc = qnc_score(y, quality_pred, cost_pred, sweep=sweep)
    if model_costs[best] == 0:
        assert np.isnan(qnc)
    elif not reaching:
        assert qnc == np.inf
    else:
        assert qnc == pytest.approx(reaching[0] / model_costs[best], rel=1e-12)


def test_nauc_exact_on_hand_computed_frontier():
    # Frontier (1, 0.5), (2.5, 1.0) over the models' range [1, 4]:
    # (1.5 * 0.75 + 1.5 * 1.0) / 3.
    y = make_outcomes([[1, 0], [1, 1]], [[4.0, 1.0], [4.0, 1.0]])
    assert nauc_score(y, y["quality"], y["cost"]) == pytest.approx(0.875, abs=1e-15)
    # The frontier's own range [1, 2.5] is a single trapezoid.
    assert nauc_score(
        y, y["quality"], y["cost"], cost_range="frontier"
    ) == pytest.approx(0.75, abs=1e-15)


def test_nauc_zero_below_first_frontier_point():
    # Every operating point costs at least 2 while the cheapest model costs 1:
    # the curve is 0 on [1, 2].
    y = make_outcomes([[1, 0], [1, 0]], [[3.0, 1.0], [3.0, 1.0]])
    quality_pred = np.array([[0.9, 0.1], [0.9, 0.1]])
    cost_pred = np.array([[1.0, 1.0], [1.0, 1.0]])
    # Equal predicted costs: every threshold chooses the first model.
    score = nauc_score(y, quality_pred, cost_pred)
    assert score == pytest.approx(0.0)


def test_degenerate_range_gives_best_quality():
    y = make_outcomes([[1.0], [0.0], [1.0]], [[2.0], [2.0], [2.0]])
    score = nauc_score(y, y["quality"], y["cost"])
    assert score == pytest.approx(2 / 3)


def test_pareto_frontier_keeps_first_of_ties():
    costs = [1.0, 1.0, 2.0, 3.0, 3.0]
    qualities = [0.5, 0.6, 0.6 + 1e-14, 0.8, 0.7]
    frontier_costs, frontier_qualities = pareto_frontier(costs, qualities)
    np.testing.assert_array_equal(frontier_costs, [1.0, 3.0])
    np.testing.assert_array_equal(frontier_qualities, [0.6, 0.8])


def test_oracle_curve_dominates_single_models():
    y, _, _ = random_case(3, 200, 4, ties=False)
    costs, qualities, _ = oracle_curve(y)
    points = single_model_points(y)
    for cost, quality in points.itertuples(index=False):
        # Some oracle point is at least as good for no more money.
        assert ((costs <= cost + 1e-12) & (qualities >= quality - 1e-12)).any()


def test_single_model_points_are_means():
    y, _, _ = random_case(4, 50, 3, ties=False)
    points = single_model_points(y)
    np.testing.assert_allclose(points["cost"], y["cost"].to_numpy().mean(axis=0))
    np.testing.assert_allclose(points["quality"], y["quality"].to_numpy().mean(axis=0))


def test_incomplete_rows_warn_once_and_are_left_out():
    y, quality_pred, cost_pred = random_case(5, 40, 3, ties=False)
    y_missing = y.copy()
    y_missing.iloc[[2, 7], 0] = np.nan
    keep = np.ones(40, dtype=bool)
    keep[[2, 7]] = False

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        score = nauc_score(y_missing, quality_pred, cost_pred)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1
    assert "2 of 40" in messages[0]
    assert score == nauc_score(y[keep], quality_pred[keep], cost_pred[keep])


def test_no_complete_row_raises():
    y = make_outcomes([[np.nan, 1.0]], [[1.0, 1.0]])
    with pytest.raises(ValueError, match="no query with an observed outcome"):
        nauc_score(y, [[0.5, 0.5]], [[1.0, 1.0]])


@pytest.mark.parametrize(
    "quality_pred, cost_pred, message",
    [
        ([[0.5, 0.5]], [[1.0, 1.0], [1.0, 1.0]], "cost_pred must have shape"),
        ([[0.5]], [[1.0, 1.0]], "quality_pred must have shape"),
        ([[np.nan, 0.5]], [[1.0, 1.0]], "quality_pred must be finite"),
        ([[0.5, 0.5]], [[-1.0, 1.0]], "cost_pred must be >= 0"),
        ([["a", "b"]], [[1.0, 1.0]], "quality_pred must be a numeric array"),
    ],
)
def test_bad_predictions_raise(quality_pred, cost_pred, message):
    y = make_outcomes([[1.0, 0.0]], [[1.0, 1.0]])
    with pytest.raises((ValueError, TypeError), match=message):
        cost_quality_curve(y, quality_pred, cost_pred)


def test_bad_options_raise():
    y = make_outcomes([[1.0, 0.0]], [[1.0, 1.0]])
    with pytest.raises(ValueError, match="sweep must be one of"):
        cost_quality_curve(y, [[1, 0]], [[1, 1]], sweep="budget")
    with pytest.raises(ValueError, match="cost_range must be one of"):
        nauc_score(y, [[1, 0]], [[1, 1]], cost_range="all")
    with pytest.raises(ValueError, match="cost_scale must be a positive"):
        cost_quality_curve(y, [[1, 0]], [[1, 1]], cost_scale=0.0)
    with pytest.raises(TypeError, match="outcomes DataFrame"):
        cost_quality_curve(np.ones((1, 4)), [[1, 0]], [[1, 1]])


def test_predictions_accept_dataframes():
    y, quality_pred, cost_pred = random_case(6, 20, 3, ties=False)
    from_arrays = cost_quality_curve(y, quality_pred, cost_pred)
    from_frames = cost_quality_curve(
        y, pd.DataFrame(quality_pred), pd.DataFrame(cost_pred)
    )
    for left, right in zip(from_arrays, from_frames):
        np.testing.assert_array_equal(left, right)


@pytest.mark.parametrize("sweep", ["cost_weight", "cap"])
def test_curve_matches_reference_on_many_seeds(sweep):
    for seed in range(100, 160):
        rng = np.random.default_rng(seed)
        n_queries, n_models = int(rng.integers(1, 12)), int(rng.integers(1, 6))
        y, quality_pred, cost_pred = random_case(
            seed, n_queries, n_models, seed % 2 == 0
        )
        expected = reference_curve(
            y["quality"].to_numpy(),
            y["cost"].to_numpy(),
            quality_pred,
            cost_pred,
            sweep,
            1.0,
        )
        costs, qualities, thresholds = cost_quality_curve(
            y, quality_pred, cost_pred, sweep=sweep, cost_scale=1.0
        )
        np.testing.assert_allclose(costs, expected[0], rtol=0, atol=1e-12)
        np.testing.assert_allclose(qualities, expected[1], rtol=0, atol=1e-12)
        np.testing.assert_allclose(thresholds, expected[2], rtol=1e-12, atol=0)


def mmr_bench_procedure(quality, cost, quality_pred, cost_pred):
    """MMR-Bench's evaluation as its authors describe it, in plain loops.

    One point per distinct predicted cost C: each query takes the first
    model of highest predicted quality among those predicted at most C (the
    first model when none is). The frontier keeps strictly better points. nAUC
    is the trapezoid area over the frontier's own cost range. QNC is the first
    frontier cost reaching the best single model's accuracy, over its cost.
    """
    points = []
    for cap in np.unique(cost_pred):
        masked = np.where(cost_pred <= cap, quality_pred, -np.inf)
        chosen = masked.argmax(axis=1)
        rows = np.arange(len(chosen))
        points.append((cost[rows, chosen].mean(), quality[rows, chosen].mean()))
    points.sort(key=lambda point: (point[0], -point[1]))
    frontier, best = [], -np.inf
    for point_cost, point_quality in points:
        if point_quality > best:
            frontier.append((point_cost, point_quality))
            best = point_quality
    xs = np.array([c for c, _ in frontier])
    ys = np.array([q for _, q in frontier])
    nauc = np.trapezoid(ys, xs) / (xs.max() - xs.min())
    accuracies = quality.mean(axis=0)
    best_model = int(np.argmax(accuracies))
    qnc = np.inf
    for point_cost, point_quality in frontier:
        if point_quality >= accuracies[best_model]:
            qnc = point_cost / cost[:, best_model].mean()
            break
    return nauc, ys.max(), qnc


@pytest.mark.parametrize("seed", range(10))
def test_cap_frontier_scores_are_mmr_bench_scores(seed):
    # Graded qualities and continuous predictions leave no ties, and the
    # first model is every query's predicted-cheapest, so MMR-Bench's
    # first-model rules, its frontier without tolerance and ours agree.
    rng = np.random.default_rng(seed)
    n_queries, n_models = 80, 5
    quality = rng.random((n_queries, n_models))
    cost = rng.random((n_queries, n_models)) * 10 ** rng.uniform(-4, 0, n_models)
    quality_pred = rng.random((n_queries, n_models))
    cost_pred = rng.random((n_queries, n_models)) * 10 ** rng.uniform(-4, 0, n_models)
    cost_pred[:, 0] = cost_pred.min(axis=1) / 2
    y = make_outcomes(quality, cost)
    nauc, peak, qnc = mmr_bench_procedure(quality, cost, quality_pred, cost_pred)

    assert nauc_score(
        y, quality_pred, cost_pred, sweep="cap", cost_range="frontier"
    ) == pytest.approx(nauc, abs=1e-12)
    assert peak_score(y, quality_pred, cost_pred, sweep="cap") == pytest.approx(
        peak, abs=1e-12
    )
    assert qnc_score(y, quality_pred, cost_pred, sweep="cap") == pytest.approx(
        qnc, rel=1e-12
    )
