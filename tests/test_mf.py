"""MFRouter against plain references, and its torch training contract."""

import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest
import skops.io as sio
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning

from skrouter import get_trusted_types, make_outcomes
from skrouter.datasets import make_routing_problem
from skrouter.routers import MFRouter, RandomRouter

# Small torch fits that converge on the synthetic problem within seconds.
TORCH_PARAMS = {"solver": "torch", "n_factors": 4, "max_epochs": 300}
SOLVERS = [
    MFRouter(solver="ridge", n_factors=4, random_state=0),
    MFRouter(**TORCH_PARAMS, early_stopping=True, random_state=0),
]


@pytest.fixture(scope="module")
def problem():
    X, y = make_routing_problem(n_queries=400, missing_rate=0.1, random_state=0)
    return X[:300], y[:300], X[300:], y[300:]


def plain_ridge_predictions(factors, targets, test_factors, alpha):
    """Ridge with an unpenalized intercept from its normal equations."""
    design = np.column_stack([np.ones(len(factors)), factors])
    penalty = alpha * len(factors) * np.eye(design.shape[1])
    penalty[0, 0] = 0.0
    coef = np.linalg.solve(design.T @ design + penalty, design.T @ targets)
    return np.column_stack([np.ones(len(test_factors)), test_factors]) @ coef


@pytest.mark.parametrize("alpha", [0.0, 0.01, 1.0])
@pytest.mark.parametrize("n_factors", [4, 16, 40])
def test_ridge_matches_plain_reference(problem, alpha, n_factors):
    X_train, y_train, X_test, _ = problem
    router = MFRouter(
        solver="ridge", n_factors=n_factors, alpha=alpha, random_state=0
    ).fit(X_train, y_train)

    # With as many factors as features or more, the features are the
    # factors. Otherwise the top right singular vectors span them.
    if n_factors >= X_train.shape[1]:
        components = np.eye(X_train.shape[1])
    else:
        components = np.linalg.svd(X_train, full_matrices=False)[2][:n_factors]
    assert router.n_factors_ == components.shape[0]
    factors, test_factors = X_train @ components.T, X_test @ components.T

    quality = y_train["quality"].to_numpy()
    cost = y_train["cost"].to_numpy()
    predicted_quality = router.predict_quality(X_test)
    predicted_cost = router.predict_cost(X_test)
    for j in range(quality.shape[1]):
        rows = ~np.isnan(quality[:, j])
        expected = plain_ridge_predictions(
            factors[rows],
            np.column_stack([quality[rows, j], cost[rows, j]]),
            test_factors,
            alpha,
        )
        np.testing.assert_allclose(
            predicted_quality[:, j], np.clip(expected[:, 0], 0, 1), atol=1e-8
        )
        np.testing.assert_allclose(
            predicted_cost[:, j], np.maximum(expected[:, 1], 0), rtol=1e-6, atol=1e-12
        )


def test_ridge_with_one_query_is_its_outcomes():
    y = make_outcomes([[1.0, 0.0]], [[2.0, 1.0]], models=["a", "b"])
    router = MFRouter(solver="ridge", n_factors=3).fit(np.ones((1, 5)), y)
    np.testing.assert_allclose(router.predict_quality(np.zeros((2, 5))), [[1, 0]] * 2)
    np.testing.assert_allclose(router.predict_cost(np.zeros((2, 5))), [[2, 1]] * 2)


def test_torch_same_seed_same_predictions(problem):
    X_train, y_train, X_test, _ = problem
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fits = [
            MFRouter(solver="torch", max_epochs=20, random_state=seed).fit(
                X_train, y_train
            )
            for seed in (7, 7, 8)
        ]
    same, again, other = fits
    np.testing.assert_array_equal(
        same.predict_quality(X_test), again.predict_quality(X_test)
    )
    np.testing.assert_array_equal(same.predict_cost(X_test), again.predict_cost(X_test))
    assert not np.array_equal(
        same.predict_quality(X_test), other.predict_quality(X_test)
    )
    assert not np.array_equal(same.predict_cost(X_test), other.predict_cost(X_test))


def test_torch_leaves_global_state_alone(problem):
    import torch

    X_train, y_train, _, _ = problem
    rng_state = torch.random.get_rng_state()
    threads = torch.get_num_threads()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        MFRouter(solver="torch", max_epochs=3, n_threads=1, random_state=0).fit(
            X_train, y_train
        )
    assert torch.equal(torch.random.get_rng_state(), rng_state)
    assert torch.get_num_threads() == threads


def test_torch_warns_at_max_epochs(problem):
    X_train, y_train, _, _ = problem
    router = MFRouter(solver="torch", max_epochs=2, random_state=0)
    with pytest.warns(ConvergenceWarning, match="max_epochs=2"):
        router.fit(X_train, y_train)
    assert router.n_iter_ == 2
    assert [entry["epoch"] for entry in router.history_] == [1, 2]
    assert all(entry["validation_loss"] is None for entry in router.history_)


def test_early_stopping_records_validation_loss(problem):
    X_train, y_train, _, _ = problem
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        router = MFRouter(
            solver="torch",
            early_stopping=True,
            n_iter_no_change=5,
            max_epochs=500,
            random_state=0,
        ).fit(X_train, y_train)
    assert router.n_iter_ < 500
    assert len(router.history_) == router.n_iter_
    validation = [entry["validation_loss"] for entry in router.history_]
    assert all(np.isfinite(validation))
    assert min(validation) < validation[0]


def plain_validation_loss(router, X, y, random_state):
    """Compute the loss of the kept weights on the rows that fit held out.

    fit draws from ``check_random_state(random_state)`` first the torch seed,
    then the permutation whose first ``ceil(validation_fraction * n)`` rows
    are held out.
    """
    rng = np.random.RandomState(random_state)
    rng.randint(np.iinfo(np.int32).max)
    n_validation = int(np.ceil(router.validation_fraction * len(X)))
    rows = rng.permutation(len(X))[:n_validation]

    features = (X[rows] - router.feature_mean_) / router.feature_scale_
    quality = y["quality"].to_numpy()[rows]
    cost = y["cost"].to_numpy()[rows]
    observed = ~np.isnan(quality)
    logits = (
        features @ router.quality_projection_.T @ router.quality_factors_.T
        + router.quality_bias_
    )
    log_cost = (
        features @ router.cost_projection_.T @ router.cost_factors_.T
        + router.cost_bias_
    )
    target = np.log1p(cost / router.cost_unit_)
    # Binary cross-entropy on logits: log(1 + exp(z)) - q z.
    quality_loss = np.logaddexp(0, logits) - quality * logits
    cost_loss = (log_cost - target) ** 2
    return (quality_loss + cost_loss)[observed].sum() / observed.sum()


def test_early_stopping_keeps_best_epoch(problem):
    X_train, y_train, _, _ = problem
    router = MFRouter(
        solver="torch",
        early_stopping=True,
        n_iter_no_change=3,
        tol=0.0,
        random_state=0,
    ).fit(X_train, y_train)
    validation = [entry["validation_loss"] for entry in router.history_]
    best_epoch = int(np.argmin(validation)) + 1

    # With tol=0, training stops n_iter_no_change epochs after the best one.
    assert router.n_iter_ == best_epoch + 3
    assert validation[-1] > min(validation)
    kept_loss = plain_validation_loss(router, X_train, y_train, random_state=0)
    assert kept_loss == pytest.approx(min(validation), rel=1e-5)


def test_torch_verbose_prints_epochs(problem, capsys):
    X_train, y_train, _, _ = problem
    router = MFRouter(
        solver="torch", early_stopping=True, max_epochs=2, verbose=1, random_state=0
    )
    with pytest.warns(ConvergenceWarning):
        router.fit(X_train[:100], y_train[:100])
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("Epoch 1: train loss ")
    assert "validation loss" in lines[0]
    assert lines[1].startswith("Epoch 2: ")


@pytest.mark.parametrize("router", SOLVERS, ids=["ridge", "torch"])
def test_fitted_state_holds_no_torch_objects(problem, router):
    X_train, y_train, X_test, _ = problem
    router = clone(router).fit(X_train, y_train)
    for name, value in vars(router).items():
        assert not type(value).__module__.startswith("torch"), name
    for name in ("quality_projection_", "quality_factors_", "cost_bias_"):
        assert type(getattr(router, name)) is np.ndarray
    assert type(router.predict_quality(X_test)) is np.ndarray
    assert type(router.predict_cost(X_test)) is np.ndarray


def test_predict_runs_without_torch(problem):
    # Loading and predicting in a process where importing torch raises
    # shows that predict needs no torch call.
    X_train, y_train, X_test, _ = problem
    router = clone(SOLVERS[1]).fit(X_train, y_train)
    script = (
        "import pickle, sys\n"
        "class BlockTorch:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'torch':\n"
        "            raise ImportError('torch is blocked in this test')\n"
        "sys.meta_path.insert(0, BlockTorch())\n"
        "router, X = pickle.load(sys.stdin.buffer)\n"
        "quality = router.predict_quality(X)\n"
        "assert 'torch' not in sys.modules\n"
        "sys.stdout.buffer.write(pickle.dumps(quality))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script],
        input=pickle.dumps((router, X_test)),
        capture_output=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr.decode()
    np.testing.assert_array_equal(
        pickle.loads(completed.stdout), router.predict_quality(X_test)
    )


@pytest.mark.parametrize("router", SOLVERS, ids=["ridge", "torch"])
def test_missing_outcomes_are_not_zero(router):
    # Model "b" is right whenever observed, on a third of the queries; its
    # unobserved queries must not pull its predicted quality down.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 5))
    quality = np.column_stack(
        [rng.integers(0, 2, 90), np.where(np.arange(90) % 3 == 0, 1.0, np.nan)]
    )
    y = make_outcomes(quality, np.ones((90, 2)), models=["a", "b"])
    router = clone(router).set_params(early_stopping=False).fit(X, y)
    assert router.predict_quality(X)[:, 1].min() > 0.95


@pytest.mark.parametrize("router", SOLVERS, ids=["ridge", "torch"])
def test_beats_random_router(problem, router):
    X_train, y_train, X_test, y_test = problem
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        random_score = (
            RandomRouter(random_state=0).fit(X_train, y_train).score(X_test, y_test)
        )
        score = clone(router).fit(X_train, y_train).score(X_test, y_test)
    assert score > random_score + 0.05


@pytest.mark.parametrize("router", SOLVERS, ids=["ridge", "torch"])
@pytest.mark.parametrize("budget", [5e-4, 2e-3, 1e-2])
def test_budget_is_met_on_training_queries(problem, router, budget):
    X_train, y_train, _, _ = problem
    router = clone(router).set_params(budget=budget).fit(X_train, y_train)
    predicted_cost = router.predict_cost(X_train)
    chosen = router._choose(X_train)
    assert predicted_cost[np.arange(len(X_train)), chosen].mean() <= budget
    assert np.isfinite(router.cost_weight_)


@pytest.mark.parametrize("router", SOLVERS, ids=["ridge", "torch"])
def test_round_trip_through_skops_and_pickle(problem, router):
    X_train, y_train, X_test, _ = problem
    router = clone(router).fit(X_train, y_train)
    data = sio.dumps(router)
    assert set(sio.get_untrusted_types(data=data)) <= set(get_trusted_types())
    for loaded in (
        sio.loads(data, trusted=get_trusted_types()),
        pickle.loads(pickle.dumps(router)),
    ):
        np.testing.assert_array_equal(loaded.predict(X_test), router.predict(X_test))
        np.testing.assert_array_equal(
            loaded.predict_quality(X_test), router.predict_quality(X_test)
        )
        np.testing.assert_array_equal(
            loaded.predict_cost(X_test), router.predict_cost(X_test)
        )


@pytest.mark.parametrize(
    "params, message",
    [
        ({"solver": "sgd"}, r"solver must be one of \('torch', 'ridge'\); got 'sgd'"),
        ({"n_factors": 0}, "n_factors must be an integer >= 1; got 0"),
        ({"n_factors": 2.5}, "n_factors must be an integer >= 1; got 2.5"),
        ({"alpha": -1.0}, "alpha must be a finite number >= 0; got -1.0"),
        ({"alpha": np.nan}, "alpha must be a finite number >= 0; got nan"),
        ({"learning_rate": 0}, "learning_rate must be a finite number > 0; got 0"),
        ({"batch_size": 0}, "batch_size must be an integer >= 1; got 0"),
        ({"max_epochs": True}, "max_epochs must be an integer >= 1; got True"),
        ({"early_stopping": "yes"}, "early_stopping must be True or False"),
        ({"validation_fraction": 1.0}, "validation_fraction must be a number strictly"),
        ({"validation_fraction": 0}, "validation_fraction must be a number strictly"),
        ({"n_iter_no_change": 0}, "n_iter_no_change must be an integer >= 1"),
        ({"tol": -1e-3}, "tol must be a finite number >= 0; got -0.001"),
        ({"n_threads": 0}, "n_threads must be an integer >= 1; got 0"),
        ({"verbose": -1}, "verbose must be an integer >= 0 or a bool; got -1"),
        ({"cost_weight": -1.0}, "cost_weight must be a number >= 0"),
        ({"budget": -0.5}, "budget must be None or a finite"),
    ],
)
@pytest.mark.parametrize("solver", ["ridge", "torch"])
def test_bad_parameters_raise(problem, params, message, solver):
    X_train, y_train, _, _ = problem
    router = MFRouter(solver=solver).set_params(**params)
    with pytest.raises(ValueError, match=message):
        router.fit(X_train, y_train)


def test_bad_device_raises(problem):
    X_train, y_train, _, _ = problem
    with pytest.raises(ValueError, match="device must be a str or torch.device"):
        MFRouter(device=3).fit(X_train, y_train)
    with pytest.raises(ValueError, match="device='no-such-device' is not available"):
        MFRouter(device="no-such-device").fit(X_train, y_train)


def test_validation_fraction_leaving_no_training_queries_raises():
    X, y = make_routing_problem(n_queries=2, random_state=0)
    router = MFRouter(early_stopping=True, validation_fraction=0.6)
    with pytest.raises(ValueError, match=r"n_samples=2 .* leaves none to train on"):
        router.fit(X, y)
