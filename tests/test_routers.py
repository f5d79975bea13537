"""Routers against plain reference computations written here."""

import pickle
import threading
import warnings

import numpy as np
import pytest
import skops.io as sio
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from skrouter import complete_rows, get_trusted_types, make_outcomes
from skrouter.datasets import make_routing_problem
from skrouter.metrics import (
    cost_quality_curve,
    get_scorer,
    get_scorers,
    nauc_score,
    peak_score,
    qnc_score,
    refit_within_budget,
)
from skrouter.routers import (
    KMeansRouter,
    KNNRouter,
    RandomRouter,
    SingleModelRouter,
)

LEARNED_ROUTERS = [
    KNNRouter(n_neighbors=7),
    KNNRouter(n_neighbors=7, weights="distance", metric="euclidean"),
    KMeansRouter(n_clusters=5, random_state=0),
]


@pytest.fixture(scope="module")
def problem():
    X, y = make_routing_problem(n_queries=400, missing_rate=0.1, random_state=0)
    return X[:300], y[:300], X[300:], y[300:]


def plain_blend(values, observed, weights, prior_mean, prior_strength):
    """One query, one model: weighted local mean shrunk toward the prior."""
    kept = [(v, w) for v, o, w in zip(values, observed, weights) if o]
    if not kept:
        return prior_mean
    count = len(kept)
    total_weight = sum(w for _, w in kept)
    local_sum = count * sum(v * w for v, w in kept) / total_weight
    return (local_sum + prior_strength * prior_mean) / (count + prior_strength)


@pytest.mark.parametrize("weights", ["uniform", "distance"])
@pytest.mark.parametrize("prior_strength", [0.0, 1.0, 30.0])
def test_knn_matches_plain_loop(problem, weights, prior_strength):
    X_train, y_train, X_test, _ = problem
    router = KNNRouter(
        n_neighbors=6,
        metric="euclidean",
        weights=weights,
        prior_strength=prior_strength,
    ).fit(X_train, y_train)
    quality = y_train["quality"].to_numpy()
    cost = y_train["cost"].to_numpy()
    observed = ~np.isnan(quality)
    global_quality = np.nanmean(quality, axis=0)
    global_cost = np.nanmean(cost, axis=0)

    predicted_quality = router.predict_quality(X_test)
    predicted_cost = router.predict_cost(X_test)
    for i, x in enumerate(X_test):
        distances = np.sqrt(((X_train - x) ** 2).sum(axis=1))
        neighbors = np.argsort(distances, kind="stable")[:6]
        if weights == "uniform":
            neighbor_weights = np.ones(6)
        else:
            neighbor_weights = 1 / distances[neighbors]
        for j in range(quality.shape[1]):
            expected_quality = plain_blend(
                quality[neighbors, j],
                observed[neighbors, j],
                neighbor_weights,
                global_quality[j],
                prior_strength,
            )
            expected_cost = plain_blend(
                cost[neighbors, j],
                observed[neighbors, j],
                neighbor_weights,
                global_cost[j],
                prior_strength,
            )
            assert predicted_quality[i, j] == pytest.approx(expected_quality, rel=1e-9)
            assert predicted_cost[i, j] == pytest.approx(expected_cost, rel=1e-9)


@pytest.mark.parametrize("prior_strength", [0.0, 2.0])
def test_kmeans_matches_plain_cluster_means(problem, prior_strength):
    X_train, y_train, X_test, _ = problem
    router = KMeansRouter(
        n_clusters=4, prior_strength=prior_strength, random_state=0
    ).fit(X_train, y_train)
    centers = router.cluster_centers_
    quality = y_train["quality"].to_numpy()
    cost = y_train["cost"].to_numpy()
    train_labels = [np.argmin(((centers - x) ** 2).sum(axis=1)) for x in X_train]
    global_quality = np.nanmean(quality, axis=0)
    global_cost = np.nanmean(cost, axis=0)

    predicted_quality = router.predict_quality(X_test)
    predicted_cost = router.predict_cost(X_test)
    for i, x in enumerate(X_test):
        label = np.argmin(((centers - x) ** 2).sum(axis=1))
        members = [k for k, other in enumerate(train_labels) if other == label]
        for j in range(quality.shape[1]):
            values = quality[members, j]
            seen = ~np.isnan(values)
            expected = plain_blend(
                values, seen, np.ones(len(values)), global_quality[j], prior_strength
            )
            assert predicted_quality[i, j] == pytest.approx(expected, rel=1e-9)
            expected = plain_blend(
                cost[members, j],
                seen,
                np.ones(len(values)),
                global_cost[j],
                prior_strength,
            )
            assert predicted_cost[i, j] == pytest.approx(expected, rel=1e-9)


def test_missing_outcomes_are_not_zero():
    # Model "b" is right whenever observed; its unobserved rows must not
    # pull its predicted quality below 1.
    X = np.arange(20, dtype=float).reshape(-1, 1)
    quality = np.column_stack([np.zeros(20), np.where(np.arange(20) % 2, 1.0, np.nan)])
    y = make_outcomes(quality, np.ones((20, 2)), models=["a", "b"])
    for router in (
        KNNRouter(n_neighbors=4, metric="euclidean"),
        KMeansRouter(n_clusters=3, random_state=0),
    ):
        router.fit(X, y)
        np.testing.assert_array_equal(router.predict_quality(X)[:, 1], 1.0)


def test_model_never_observed_raises():
    y = make_outcomes([[1.0, np.nan], [0.0, np.nan]], [[1, 1], [1, 1]], ["a", "b"])
    with pytest.raises(ValueError, match=r"no observed outcome for the models \['b'\]"):
        KNNRouter(n_neighbors=1).fit(np.ones((2, 2)), y)


def test_knn_too_many_neighbors_names_both_numbers(problem):
    X_train, y_train, _, _ = problem
    with pytest.raises(ValueError, match="n_neighbors=500 .* n_samples=300"):
        KNNRouter(n_neighbors=500).fit(X_train, y_train)


def test_predict_is_best_utility_with_tie_rules():
    router = KNNRouter(n_neighbors=1, metric="euclidean", prior_strength=0.0)
    X = np.array([[0.0], [10.0], [20.0]])
    # Query 0: a and b tie on quality, b is cheaper. Query 1: b and c tie on
    # quality and cost, b is earlier. Query 2: a is best.
    y = make_outcomes(
        [[1.0, 1.0, 0.0], [0.0, 1.0, 1.0], [1.0, 0.0, 0.0]],
        [[2.0, 1.0, 3.0], [1.0, 1.0, 1.0], [1.0, 1.0, 1.0]],
        models=["a", "b", "c"],
    )
    router.fit(X, y)
    np.testing.assert_array_equal(router.predict(X), ["b", "b", "a"])


@pytest.mark.parametrize("router", LEARNED_ROUTERS, ids=repr)
def test_predict_agrees_with_curve(problem, router):
    # Each curve point is what predict does at a cost weight inside the
    # interval that starts at that point's breakpoint.
    X_train, y_train, X_test, y_test = problem
    X_test, y_test = complete_rows(X_test, y_test)
    router = clone(router).fit(X_train, y_train)
    costs, qualities, weights = cost_quality_curve(
        y_test,
        router.predict_quality(X_test),
        router.predict_cost(X_test),
        cost_scale=router.cost_scale_,
    )
    assert len(weights) > 2
    probes = [0.0]
    probes += [(weights[k] + weights[k + 1]) / 2 for k in range(1, len(weights) - 1)]
    probes += [2 * weights[-1]]

    quality = y_test["quality"].to_numpy()
    cost = y_test["cost"].to_numpy()
    models = list(router.models_)
    for k, probe in enumerate(probes):
        names = (
            router.set_params(cost_weight=probe).fit(X_train, y_train).predict(X_test)
        )
        chosen = np.array([models.index(name) for name in names])
        rows = np.arange(len(chosen))
        assert cost[rows, chosen].mean() == pytest.approx(costs[k], abs=1e-12)
        assert quality[rows, chosen].mean() == pytest.approx(qualities[k], abs=1e-12)


def test_cost_weight_inf_routes_to_cheapest_prediction(problem):
    X_train, y_train, X_test, _ = problem
    router = KNNRouter(n_neighbors=7, cost_weight=np.inf).fit(X_train, y_train)
    predicted_cost = router.predict_cost(X_test)
    names = router.predict(X_test)
    chosen = np.array([list(router.models_).index(name) for name in names])
    np.testing.assert_array_equal(
        predicted_cost[np.arange(len(X_test)), chosen], predicted_cost.min(axis=1)
    )
    np.testing.assert_allclose(
        router.decision_function(X_test), -predicted_cost / router.cost_scale_
    )


@pytest.mark.parametrize("router", LEARNED_ROUTERS, ids=repr)
@pytest.mark.parametrize("budget", [5e-4, 2e-3, 1e-2, 5e-2])
def test_budget_is_met_on_training_queries(problem, router, budget):
    X_train, y_train, _, _ = problem
    router = clone(router).set_params(budget=budget).fit(X_train, y_train)
    predicted_cost = router.predict_cost(X_train)
    chosen = router._choose(X_train)
    assert predicted_cost[np.arange(len(X_train)), chosen].mean() <= budget
    assert np.isfinite(router.cost_weight_)

    # The calibrated weight is the most generous one: a smaller weight at
    # the previous breakpoint would overspend.
    unconstrained = clone(router).set_params(budget=None, cost_weight=0.0)
    unconstrained.fit(X_train, y_train)
    chosen = unconstrained._choose(X_train)
    spent = unconstrained.predict_cost(X_train)[np.arange(len(X_train)), chosen].mean()
    if spent <= budget:
        assert router.cost_weight_ < 1e-9 or router.predict(X_train).tolist() == (
            unconstrained.predict(X_train).tolist()
        )


def test_infeasible_budget_warns_and_routes_to_cheapest(problem):
    X_train, y_train, X_test, _ = problem
    with pytest.warns(UserWarning, match=r"budget=1e-09 .* below .* cheapest"):
        router = KNNRouter(n_neighbors=7, budget=1e-9).fit(X_train, y_train)
    assert router.cost_weight_ == np.inf
    predicted_cost = router.predict_cost(X_test)
    chosen = [list(router.models_).index(name) for name in router.predict(X_test)]
    np.testing.assert_array_equal(
        predicted_cost[np.arange(len(X_test)), chosen], predicted_cost.min(axis=1)
    )


@pytest.mark.parametrize(
    "params, message",
    [
        ({"cost_weight": -1.0}, "cost_weight must be a number >= 0"),
        ({"cost_weight": "high"}, "cost_weight must be a number >= 0"),
        ({"budget": -0.5}, "budget must be None or a finite"),
        ({"budget": np.inf}, "budget must be None or a finite"),
        ({"prior_strength": -1}, "prior_strength must be a finite number >= 0"),
        ({"weights": "gaussian"}, "weights must be one of"),
        ({"n_neighbors": 0}, "n_neighbors must be an integer >= 1"),
    ],
)
def test_bad_parameters_raise(problem, params, message):
    X_train, y_train, _, _ = problem
    with pytest.raises(ValueError, match=message):
        KNNRouter(**params).fit(X_train, y_train)


def test_bad_outcomes_raise(problem):
    X_train, y_train, _, _ = problem
    with pytest.raises(TypeError, match="y must be an outcomes DataFrame"):
        KNNRouter().fit(X_train, y_train["quality"].to_numpy())
    with pytest.raises(ValueError, match="same queries"):
        KNNRouter().fit(X_train[:10], y_train)


def test_score_is_nauc_with_models_in_any_order(problem):
    X_train, y_train, X_test, y_test = problem
    router = KMeansRouter(n_clusters=5, random_state=0).fit(X_train, y_train)
    shuffled = y_test[
        [
            ("quality", "model2"),
            ("quality", "model0"),
            ("quality", "model1"),
            ("cost", "model1"),
            ("cost", "model2"),
            ("cost", "model0"),
        ]
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = nauc_score(
            y_test, router.predict_quality(X_test), router.predict_cost(X_test)
        )
        assert router.score(X_test, shuffled) == pytest.approx(expected, abs=1e-15)
        assert get_scorer("nauc")(router, X_test, y_test) == pytest.approx(expected)


def test_single_model_router_curve_is_one_point(problem):
    X_train, y_train, X_test, y_test = problem
    X_test, y_test = complete_rows(X_test, y_test)
    for choice in ["best", "cheapest", "model1"]:
        router = SingleModelRouter(choice).fit(X_train, y_train)
        costs, qualities, _ = cost_quality_curve(
            y_test, router.predict_quality(X_test), router.predict_cost(X_test)
        )
        column = list(router.models_).index(router.model_)
        assert len(costs) == 1
        assert costs[0] == pytest.approx(y_test["cost"].to_numpy()[:, column].mean())
        assert qualities[0] == pytest.approx(
            y_test["quality"].to_numpy()[:, column].mean()
        )
    assert SingleModelRouter("best").fit(X_train, y_train).model_ == "model2"
    assert SingleModelRouter("cheapest").fit(X_train, y_train).model_ == "model0"
    with pytest.raises(ValueError, match="model must be one of"):
        SingleModelRouter("gpt-7").fit(X_train, y_train)


def test_random_router_same_input_same_answer(problem):
    X_train, y_train, X_test, _ = problem
    router = RandomRouter(random_state=3).fit(X_train, y_train)
    np.testing.assert_array_equal(router.predict(X_test), router.predict(X_test))
    expected = np.random.default_rng(3).random((len(X_test), 3))
    np.testing.assert_array_equal(router.predict_quality(X_test), expected)


def test_learned_routers_beat_random(problem):
    X_train, y_train, X_test, y_test = problem
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        random_score = (
            RandomRouter(random_state=0).fit(X_train, y_train).score(X_test, y_test)
        )
        for router in LEARNED_ROUTERS:
            score = clone(router).fit(X_train, y_train).score(X_test, y_test)
            assert score > random_score + 0.05


def test_pipeline_with_scaler(problem):
    X_train, y_train, X_test, y_test = problem
    pipeline = Pipeline([("scale", StandardScaler()), ("router", KNNRouter())])
    pipeline.fit(X_train, y_train)
    assert set(pipeline.predict(X_test)) <= {"model0", "model1", "model2"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        score = pipeline.score(X_test, y_test)
        assert get_scorer("nauc")(pipeline, X_test, y_test) == pytest.approx(score)
    assert 0 < score <= 1


def test_grid_search_picks_by_nauc(problem):
    X_train, y_train, _, _ = problem
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        search = GridSearchCV(KNNRouter(), {"n_neighbors": [1, 10, 40]}, cv=3, n_jobs=2)
        search.fit(X_train, y_train)
    scores = search.cv_results_["mean_test_score"]
    assert search.best_params_["n_neighbors"] == [1, 10, 40][int(np.argmax(scores))]


@pytest.mark.parametrize(
    "grid",
    [{"cost_weight": [0.0, 0.3, 1.0, 3.0]}, {"budget": [5e-2, 5e-3, 5e-4]}],
)
def test_grid_search_over_operating_points(problem, grid):
    X_train, y_train, _, _ = problem
    scoring = {
        "nauc": get_scorer("nauc"),
        "quality": get_scorer("mean_quality"),
        "cost": get_scorer("neg_mean_cost"),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        search = GridSearchCV(
            KMeansRouter(n_clusters=5, random_state=0),
            grid,
            scoring=scoring,
            refit="quality",
            cv=3,
            n_jobs=2,
        ).fit(X_train, y_train)
    results = search.cv_results_
    costs = -results["mean_test_cost"]
    # More weight on cost, or a smaller budget, never costs more here.
    assert costs[0] >= costs[-1]
    assert results["mean_test_quality"][0] >= results["mean_test_quality"][-1]
    # nAUC covers every operating point, so it is the same for all candidates.
    np.testing.assert_allclose(results["mean_test_nauc"], results["mean_test_nauc"][0])


def test_routers_round_trip_through_skops_and_pickle(problem):
    X_train, y_train, X_test, _ = problem
    routers = LEARNED_ROUTERS + [SingleModelRouter(), RandomRouter(random_state=0)]
    for router in routers:
        router = clone(router).fit(X_train, y_train)
        data = sio.dumps(router)
        untrusted = sio.get_untrusted_types(data=data)
        assert set(untrusted) <= set(get_trusted_types())
        loaded = sio.loads(data, trusted=get_trusted_types())
        np.testing.assert_array_equal(loaded.predict(X_test), router.predict(X_test))
        np.testing.assert_array_equal(
            loaded.predict_cost(X_test), router.predict_cost(X_test)
        )
        unpickled = pickle.loads(pickle.dumps(router))
        np.testing.assert_array_equal(unpickled.predict(X_test), router.predict(X_test))


def test_predict_from_threads(problem):
    X_train, y_train, X_test, _ = problem
    router = KNNRouter(n_neighbors=7).fit(X_train, y_train)
    expected = router.predict(X_test)
    results = [None] * 4

    def route(k):
        results[k] = router.predict(X_test)

    threads = [threading.Thread(target=route, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for result in results:
        np.testing.assert_array_equal(result, expected)


@pytest.mark.parametrize("router", LEARNED_ROUTERS, ids=repr)
def test_predictions_do_not_depend_on_batch(problem, router):
    X_train, y_train, X_test, _ = problem
    router = clone(router).fit(X_train, y_train)
    order = np.random.default_rng(0).permutation(len(X_test))
    full = router.predict_quality(X_test)
    np.testing.assert_allclose(router.predict_quality(X_test[order]), full[order])
    np.testing.assert_allclose(
        router.predict_cost(X_test[:7]), router.predict_cost(X_test)[:7]
    )
    refit = clone(router).fit(X_train, y_train)
    np.testing.assert_array_equal(refit.predict(X_test), router.predict(X_test))


def test_get_scorers_matches_single_scorers(problem):
    X_train, y_train, X_test, y_test = problem
    pipeline = Pipeline([("scale", StandardScaler()), ("router", KMeansRouter(4))])
    pipeline.set_params(router__random_state=0, router__cost_weight=0.5)
    pipeline.fit(X_train, y_train)
    names = ["nauc", "peak_score", "neg_qnc", "mean_quality", "neg_mean_cost"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        together = get_scorers(names)(pipeline, X_test, y_test)
        for name in names:
            assert together[name] == get_scorer(name)(pipeline, X_test, y_test)


def test_scorers_equal_the_metrics_on_reordered_incomplete_outcomes(problem):
    X_train, y_train, X_test, y_test = problem
    pipeline = Pipeline([("scale", StandardScaler()), ("router", KMeansRouter(4))])
    pipeline.set_params(router__random_state=0, router__cost_weight=0.5)
    pipeline.fit(X_train, y_train)
    router = pipeline[-1]
    features = pipeline[:-1].transform(X_test)
    quality_pred = router.predict_quality(features)
    cost_pred = router.predict_cost(features)
    chosen = router.predict(features)

    # Plain references: the public metrics, and the mean outcome of the chosen
    # model over the rows where every outcome is observed.
    complete = ~y_test["quality"].isna().any(axis=1).to_numpy()
    assert 0 < complete.sum() < len(y_test)
    rows = np.flatnonzero(complete)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = {
            "nauc": nauc_score(y_test, quality_pred, cost_pred),
            "peak_score": peak_score(y_test, quality_pred, cost_pred),
            "neg_qnc": -qnc_score(y_test, quality_pred, cost_pred),
        }
    expected["mean_quality"] = np.mean(
        [y_test["quality"].iloc[row][chosen[row]] for row in rows]
    )
    expected["neg_mean_cost"] = -np.mean(
        [y_test["cost"].iloc[row][chosen[row]] for row in rows]
    )

    reordered = y_test[y_test.columns[::-1]]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scores = get_scorers(list(expected))(pipeline, X_test, reordered)
    assert len(caught) == 1
    assert "left out of the metric" in str(caught[0].message)
    for name, value in expected.items():
        assert scores[name] == pytest.approx(value, abs=1e-12), name


def test_get_scorers_in_grid_search_with_budget_refit(problem):
    X_train, y_train, _, _ = problem
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        search = GridSearchCV(
            KMeansRouter(n_clusters=5, random_state=0),
            {"cost_weight": [0.0, 0.3, 3.0]},
            scoring=get_scorers(["mean_quality", "neg_mean_cost"]),
            refit=refit_within_budget(0.01),
            cv=3,
        ).fit(X_train, y_train)
    results = search.cv_results_
    within = -results["mean_test_neg_mean_cost"] <= 0.01
    best_quality = results["mean_test_mean_quality"][within].max()
    assert results["mean_test_mean_quality"][search.best_index_] == best_quality
    assert within[search.best_index_]


@pytest.mark.parametrize(
    "names, error, message",
    [
        ("nauc", TypeError, "list of scorer names"),
        ([], ValueError, "non-empty list"),
        (["nauc", "accuracy"], ValueError, "non-empty list from"),
    ],
)
def test_get_scorers_rejects_bad_names(names, error, message):
    with pytest.raises(error, match=message):
        get_scorers(names)
