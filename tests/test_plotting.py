import sys
import warnings

import matplotlib
import numpy as np
import pytest
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skrouter import make_outcomes
from skrouter.datasets import make_routing_problem
from skrouter.metrics import (
    cost_quality_curve,
    nauc_score,
    oracle_curve,
    pareto_frontier,
    single_model_points,
)
from skrouter.plotting import CostQualityDisplay
from skrouter.routers import KMeansRouter, KNNRouter

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def problem():
    X, y = make_routing_problem(n_queries=400, random_state=0)
    return X[:200], X[200:], y.iloc[:200], y.iloc[200:]


@pytest.fixture(scope="module")
def knn(problem):
    X_train, _, y_train, _ = problem
    return KNNRouter(n_neighbors=15).fit(X_train, y_train)


@pytest.mark.parametrize("sweep", ["cost_weight", "cap"])
def test_frontier_equals_pareto_frontier(problem, knn, sweep):
    _, X_test, _, y_test = problem
    quality_pred, cost_pred = knn.predict_quality(X_test), knn.predict_cost(X_test)

    display = CostQualityDisplay.from_predictions(
        y_test, quality_pred, cost_pred, sweep=sweep
    )

    costs, qualities, thresholds = cost_quality_curve(
        y_test, quality_pred, cost_pred, sweep=sweep
    )
    expected_costs, expected_qualities = pareto_frontier(costs, qualities)
    np.testing.assert_array_equal(display.frontier_costs_, expected_costs)
    np.testing.assert_array_equal(display.frontier_qualities_, expected_qualities)
    np.testing.assert_array_equal(display.line_.get_xdata(), expected_costs)
    np.testing.assert_array_equal(display.line_.get_ydata(), expected_qualities)
    np.testing.assert_array_equal(display.thresholds, thresholds)
    assert display.nauc == nauc_score(y_test, quality_pred, cost_pred, sweep=sweep)


def test_baselines_drawn(problem, knn):
    _, X_test, _, y_test = problem

    display = CostQualityDisplay.from_estimator(knn, X_test, y_test)

    points = single_model_points(y_test)
    np.testing.assert_array_equal(
        display.model_points_.get_offsets(), points[["cost", "quality"]].to_numpy()
    )
    assert [label.get_text() for label in display.model_labels_] == list(points.index)
    oracle_costs, oracle_qualities = pareto_frontier(*oracle_curve(y_test)[:2])
    np.testing.assert_array_equal(display.oracle_line_.get_xdata(), oracle_costs)
    np.testing.assert_array_equal(display.oracle_line_.get_ydata(), oracle_qualities)
    assert display.ax_.get_xlabel() == "Mean cost per query (USD)"
    assert display.ax_.get_ylabel() == "Mean quality"
    assert display.figure_ is display.ax_.figure


def test_baselines_can_be_left_out(problem, knn):
    _, X_test, _, y_test = problem

    display = CostQualityDisplay.from_estimator(
        knn, X_test, y_test, plot_models=False, plot_oracle=False
    )

    assert display.model_points_ is None
    assert display.model_labels_ == []
    assert display.oracle_line_ is None
    assert len(display.ax_.lines) == 1


def test_from_estimator_walks_pipeline(problem):
    X_train, X_test, y_train, y_test = problem
    pipeline = make_pipeline(StandardScaler(), KNNRouter(n_neighbors=15))
    pipeline.fit(X_train, y_train)
    router = pipeline[-1]
    X_scaled = pipeline[0].transform(X_test)

    display = CostQualityDisplay.from_estimator(pipeline, X_test, y_test)
    expected = CostQualityDisplay.from_predictions(
        y_test, router.predict_quality(X_scaled), router.predict_cost(X_scaled)
    )

    np.testing.assert_array_equal(display.frontier_costs_, expected.frontier_costs_)
    np.testing.assert_array_equal(
        display.frontier_qualities_, expected.frontier_qualities_
    )
    assert display.name == "KNNRouter"


def test_from_estimator_reorders_models(problem, knn):
    _, X_test, _, y_test = problem
    reversed_columns = [
        (level, name)
        for level in ("quality", "cost")
        for name in reversed(list(y_test["quality"].columns))
    ]

    display = CostQualityDisplay.from_estimator(knn, X_test, y_test[reversed_columns])
    expected = CostQualityDisplay.from_estimator(knn, X_test, y_test)

    np.testing.assert_array_equal(display.frontier_costs_, expected.frontier_costs_)


def test_from_estimator_rejects_non_router(problem):
    X_train, X_test, y_train, y_test = problem
    scaler = StandardScaler().fit(X_train)

    with pytest.raises(TypeError, match="skrouter router"):
        CostQualityDisplay.from_estimator(scaler, X_test, y_test)


def test_several_routers_share_axes(problem, knn):
    X_train, X_test, y_train, y_test = problem
    kmeans = KMeansRouter(6, random_state=0).fit(X_train, y_train)

    first = CostQualityDisplay.from_estimator(knn, X_test, y_test, name="knn")
    second = CostQualityDisplay.from_estimator(
        kmeans,
        X_test,
        y_test,
        name="kmeans",
        ax=first.ax_,
        plot_models=False,
        plot_oracle=False,
    )

    assert second.ax_ is first.ax_
    legend = [text.get_text() for text in first.ax_.get_legend().get_texts()]
    assert len(legend) == 4
    assert legend[0].startswith("knn (nAUC = ")
    assert legend[-1].startswith("kmeans (nAUC = ")
    assert "Oracle" in legend
    assert "Single models" in legend


def test_log_axis_when_costs_span_decades(problem, knn):
    _, X_test, _, y_test = problem
    points = single_model_points(y_test)
    assert points["cost"].max() > 100 * points["cost"].min()

    display = CostQualityDisplay.from_estimator(knn, X_test, y_test)

    assert display.ax_.get_xscale() == "log"


def test_linear_axis_when_costs_are_close():
    y = make_outcomes([[1, 0], [1, 1], [0, 1]], [[2.0, 1.0], [2.0, 1.0], [2.5, 1.5]])

    display = CostQualityDisplay.from_predictions(y, y["quality"], y["cost"])

    assert display.ax_.get_xscale() == "linear"


def test_symlog_axis_with_free_model():
    y = make_outcomes(
        [[1, 0, 1], [1, 1, 0], [0, 1, 0]],
        [[2.0, 0.0, 0.01], [2.0, 0.0, 0.01], [2.5, 0.0, 0.01]],
    )

    display = CostQualityDisplay.from_predictions(y, y["quality"], y["cost"])

    assert display.ax_.get_xscale() == "symlog"


def test_xscale_forced(problem, knn):
    _, X_test, _, y_test = problem

    linear = CostQualityDisplay.from_estimator(knn, X_test, y_test, xscale="linear")
    assert linear.ax_.get_xscale() == "linear"

    y = make_outcomes([[1, 0], [0, 1]], [[2.0, 1.0], [2.0, 1.0]])
    log = CostQualityDisplay.from_predictions(y, y["quality"], y["cost"], xscale="log")
    assert log.ax_.get_xscale() == "log"

    with pytest.raises(ValueError, match="xscale must be one of"):
        CostQualityDisplay.from_predictions(y, y["quality"], y["cost"], xscale="logit")


def test_incomplete_rows_warn_once():
    y = make_outcomes(
        [[1, 0], [np.nan, 1], [1, 1]], [[4.0, 1.0], [4.0, 1.0], [4.0, 1.0]]
    )
    quality_pred = np.array([[0.9, 0.2], [0.5, 0.5], [0.6, 0.5]])
    cost_pred = np.array([[4.0, 1.0], [4.0, 1.0], [4.0, 1.0]])

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        display = CostQualityDisplay.from_predictions(y, quality_pred, cost_pred)

    messages = [str(warning.message) for warning in caught]
    assert len(messages) == 1
    assert "1 of 3 queries" in messages[0]
    assert display.model_points_.get_offsets().shape == (2, 2)


def test_labels_stay_apart(problem, knn):
    _, X_test, _, y_test = problem
    display = CostQualityDisplay.from_estimator(knn, X_test, y_test)
    display.figure_.canvas.draw()
    renderer = display.figure_.canvas.get_renderer()

    boxes = [label.get_window_extent(renderer) for label in display.model_labels_]
    for i, box in enumerate(boxes):
        for other in boxes[i + 1 :]:
            assert not box.overlaps(other)


def test_missing_matplotlib_error(problem, knn, monkeypatch):
    _, X_test, _, y_test = problem
    monkeypatch.setitem(sys.modules, "matplotlib", None)

    with pytest.raises(ImportError, match=r'pip install "skrouter\[plot\]"'):
        CostQualityDisplay.from_estimator(knn, X_test, y_test)
    with pytest.raises(ImportError, match=r"CostQualityDisplay.from_predictions"):
        CostQualityDisplay.from_predictions(
            y_test, knn.predict_quality(X_test), knn.predict_cost(X_test)
        )
    display = CostQualityDisplay(costs=np.array([1.0]), qualities=np.array([0.5]))
    with pytest.raises(ImportError, match=r"CostQualityDisplay.plot"):
        display.plot()
