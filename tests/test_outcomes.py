"""The outcomes table: building, validating, and the synthetic generator."""

import warnings

import numpy as np
import pandas as pd
import pytest

from skrouter import check_outcomes, complete_rows, make_outcomes
from skrouter.datasets import make_routing_problem


def test_make_outcomes_layout_and_names():
    y = make_outcomes(
        [[1, 0.5], [0, 1]], [[0.2, 0.01], [0.3, 0.02]], models=["large", "small"]
    )
    assert list(y.columns) == [
        ("quality", "large"),
        ("quality", "small"),
        ("cost", "large"),
        ("cost", "small"),
    ]
    assert (y.dtypes == np.float64).all()
    np.testing.assert_array_equal(y["quality"].to_numpy(), [[1, 0.5], [0, 1]])
    np.testing.assert_array_equal(y["cost"].to_numpy(), [[0.2, 0.01], [0.3, 0.02]])


def test_make_outcomes_takes_names_and_index_from_dataframes():
    quality = pd.DataFrame({"a": [1.0, 0.0], "b": [0.0, 1.0]}, index=["q1", "q2"])
    cost = pd.DataFrame({"a": [2.0, 2.0], "b": [1.0, 1.0]}, index=["q1", "q2"])
    y = make_outcomes(quality, cost)
    assert list(y["quality"].columns) == ["a", "b"]
    assert list(y.index) == ["q1", "q2"]


def test_default_model_names():
    y = make_outcomes([[1, 0, 1]], [[1, 1, 1]])
    assert list(y["cost"].columns) == ["model0", "model1", "model2"]


def test_cost_of_unobserved_quality_is_dropped():
    y = make_outcomes([[np.nan, 1.0]], [[5.0, 1.0]])
    assert np.isnan(y[("cost", "model0")].iloc[0])
    assert y[("cost", "model1")].iloc[0] == 1.0


def test_check_outcomes_reorders_cost_block_to_quality_order():
    columns = pd.MultiIndex.from_tuples(
        [("quality", "a"), ("quality", "b"), ("cost", "b"), ("cost", "a")]
    )
    y = pd.DataFrame([[1.0, 0.0, 0.5, 2.0]], columns=columns)
    checked = check_outcomes(y)
    assert checked[("cost", "a")].iloc[0] == 2.0
    assert list(checked.columns.get_level_values(1)) == ["a", "b", "a", "b"]


@pytest.mark.parametrize(
    "quality, cost, error, message",
    [
        (
            [[1.0]],
            [[-0.1]],
            ValueError,
            r"cost must be finite and >= 0 \(USD\); got -0.1 for model 'model0'",
        ),
        (
            [[1.0]],
            [[np.inf]],
            ValueError,
            r"cost must be finite and >= 0 \(USD\); got inf",
        ),
        (
            [[1.5]],
            [[1.0]],
            ValueError,
            r"quality must lie in \[0, 1\]; got 1.5 for model 'model0' at row 0",
        ),
        ([[-0.5]], [[1.0]], ValueError, r"quality must lie in \[0, 1\]; got -0.5"),
        ([[1.0]], [[np.nan]], ValueError, "quality without a cost"),
        ([["yes"]], [[1.0]], TypeError, "quality must hold numbers"),
        ([[1.0]], [["cheap"]], TypeError, "cost must hold numbers"),
        ([[1.0, 0.0]], [[1.0]], ValueError, "same shape"),
        (np.empty((0, 2)), np.empty((0, 2)), ValueError, "at least one query"),
        (np.empty((2, 0)), np.empty((2, 0)), ValueError, "at least one model"),
        ([1.0, 0.0], [1.0, 1.0], ValueError, "2-D array"),
    ],
)
def test_make_outcomes_rejects(quality, cost, error, message):
    with pytest.raises(error, match=message):
        make_outcomes(quality, cost)


def test_make_outcomes_rejects_wrong_number_of_names():
    with pytest.raises(ValueError, match=r"got 1 name\(s\) for 2 columns"):
        make_outcomes([[1, 0]], [[1, 1]], models=["only"])


def frame(columns, values):
    return pd.DataFrame([values], columns=pd.MultiIndex.from_tuples(columns))


@pytest.mark.parametrize(
    "y, error, message",
    [
        (np.ones((2, 4)), TypeError, "outcomes DataFrame .* got ndarray"),
        (pd.DataFrame({"a": [1.0]}), TypeError, "two-level columns"),
        (
            frame([("quality", "a"), ("quality", "b"), ("cost", "a")], [1, 0, 1]),
            ValueError,
            r"with quality only: \['b'\]",
        ),
        (
            frame([("quality", "a"), ("cost", "a"), ("cost", "b")], [1, 1, 1]),
            ValueError,
            r"with cost only: \['b'\]",
        ),
        (
            frame(
                [("quality", "a"), ("quality", "a"), ("cost", "a"), ("cost", "a")],
                [1, 0, 1, 1],
            ),
            ValueError,
            r"names the models \['a'\] more than once",
        ),
        (
            frame([("quality", "a"), ("price", "a")], [1, 1]),
            ValueError,
            r"unknown column groups \['price'\]",
        ),
        (
            pd.DataFrame(
                columns=pd.MultiIndex.from_tuples([("quality", "a"), ("cost", "a")]),
                dtype=float,
            ),
            ValueError,
            "at least one query; got 0 rows",
        ),
        (
            pd.DataFrame(
                index=[0], columns=pd.MultiIndex.from_tuples([], names=[None, None])
            ),
            ValueError,
            "at least one model",
        ),
    ],
)
def test_check_outcomes_rejects(y, error, message):
    with pytest.raises(error, match=message):
        check_outcomes(y)


def test_check_outcomes_names_the_argument():
    with pytest.raises(TypeError, match="y_true must be an outcomes DataFrame"):
        check_outcomes([[1, 0]], input_name="y_true")


def test_check_outcomes_can_require_complete_table():
    y = make_outcomes([[1.0, np.nan]], [[1.0, 1.0]])
    with pytest.raises(ValueError, match="1 missing outcomes"):
        check_outcomes(y, allow_missing=False)


def test_check_outcomes_accepts_booleans_as_quality():
    columns = pd.MultiIndex.from_tuples([("quality", "a"), ("cost", "a")])
    y = pd.DataFrame({columns[0]: [True, False], columns[1]: [0.1, 0.2]})
    np.testing.assert_array_equal(
        check_outcomes(y)["quality"].to_numpy().ravel(), [1, 0]
    )


def test_complete_rows_slices_arrays_frames_and_lists():
    y = make_outcomes([[1, 0], [np.nan, 1], [0, 0]], [[1, 1], [1, 1], [1, 1]])
    X = np.arange(6).reshape(3, 2)
    X_kept, y_kept = complete_rows(X, y)
    np.testing.assert_array_equal(X_kept, [[0, 1], [4, 5]])
    assert list(y_kept.index) == [0, 2]

    X_frame, _ = complete_rows(pd.DataFrame(X, index=[10, 11, 12]), y)
    assert list(X_frame.index) == [10, 12]
    X_list, _ = complete_rows(["a", "b", "c"], y)
    assert X_list == ["a", "c"]
    with pytest.raises(ValueError, match="same number of queries; got 2 and 3"):
        complete_rows(X[:2], y)


def test_routing_problem_is_seeded():
    X_a, y_a = make_routing_problem(n_queries=200, random_state=3)
    X_b, y_b = make_routing_problem(n_queries=200, random_state=3)
    np.testing.assert_array_equal(X_a, X_b)
    pd.testing.assert_frame_equal(y_a, y_b)
    X_c, _ = make_routing_problem(n_queries=200, random_state=4)
    assert not np.array_equal(X_a, X_c)


def test_routing_problem_structure():
    X, y = make_routing_problem(
        n_queries=4000, n_models=4, cost_decades=3.0, random_state=0
    )
    assert X.shape == (4000, 16)
    mean_cost = y["cost"].mean().to_numpy()
    # Costs span the requested orders of magnitude, cheapest model first.
    assert np.all(np.diff(mean_cost) > 0)
    assert 500 < mean_cost[-1] / mean_cost[0] < 2000

    # Some model beats the most expensive one on the queries of some group,
    # so routing by query has something to find.
    quality = y["quality"].to_numpy()
    from sklearn.cluster import KMeans

    groups = KMeans(4, n_init=4, random_state=0).fit_predict(X)
    best_in_group = [quality[groups == g].mean(axis=0).argmax() for g in range(4)]
    assert any(best != 3 for best in best_in_group)


def test_routing_problem_missing_outcomes():
    _, y = make_routing_problem(n_queries=1000, missing_rate=0.3, random_state=0)
    missing = np.isnan(y["quality"].to_numpy())
    assert 0.25 < missing.mean() < 0.35
    np.testing.assert_array_equal(np.isnan(y["cost"].to_numpy()), missing)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert (~missing).any(axis=0).all()


@pytest.mark.parametrize(
    "params, message",
    [
        ({"n_queries": 0}, "n_queries must be an integer >= 1"),
        ({"n_models": 1.5}, "n_models must be an integer >= 1"),
        ({"missing_rate": 1.0}, r"missing_rate must be in \[0, 1\)"),
        ({"cost_decades": -1}, "cost_decades must be >= 0"),
        ({"noise": -0.1}, "noise must be >= 0"),
    ],
)
def test_routing_problem_rejects_bad_parameters(params, message):
    with pytest.raises(ValueError, match=message):
        make_routing_problem(**params)


def test_check_outcomes_range_errors_name_the_block():
    y = make_outcomes([[1.0, 0.0]], [[1.0, 1.0]], models=["a", "b"])
    y.loc[0, ("cost", "b")] = -2.0
    with pytest.raises(
        ValueError, match=r"y\['cost'\] must be finite .* got -2.0 for model 'b'"
    ):
        check_outcomes(y)
