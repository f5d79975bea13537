"""scikit-learn's estimator checks on every public estimator."""

import numpy as np
from sklearn.utils.estimator_checks import parametrize_with_checks

from skrouter import make_outcomes
from skrouter.routers import (
    KMeansRouter,
    KNNRouter,
    MFRouter,
    RandomRouter,
    SingleModelRouter,
)


def outcomes_from_target(y):
    """Turn the checks' labels or targets into outcomes of two models.

    Model "low" is right on the lower half of the target values and "high"
    on the rest, and "high" costs twice as much, so each check exercises
    the router with outcomes built from its own data.
    """
    values = np.asarray(y)
    if values.ndim > 1:
        values = values[:, 0]
    _, codes = np.unique(values, return_inverse=True)
    high = (codes >= codes.max() / 2).astype(float)
    quality = np.column_stack([1 - high, high])
    cost = np.tile([1.0, 2.0], (len(values), 1))
    return make_outcomes(quality, cost, models=["low", "high"])


class _OnTargets:
    """Mixin whose fit and score accept the plain targets of the checks."""

    def fit(self, X, y=None):
        if y is None:
            raise ValueError("requires y to be passed, but the target y is None")
        return super().fit(X, outcomes_from_target(y))

    def score(self, X, y):
        return super().score(X, outcomes_from_target(y))


class KNNRouterOnTargets(_OnTargets, KNNRouter):
    pass


class KMeansRouterOnTargets(_OnTargets, KMeansRouter):
    pass


class MFRouterOnTargets(_OnTargets, MFRouter):
    pass


class SingleModelRouterOnTargets(_OnTargets, SingleModelRouter):
    pass


class RandomRouterOnTargets(_OnTargets, RandomRouter):
    pass


# These checks pass 1-D labels or numeric targets as y. A router needs an
# outcomes table, so each fails on its first fit with the error that says how
# to build one; the adapted routers below run them with outcomes instead.
NEEDS_OUTCOMES = (
    "y must be an outcomes table, not the labels or targets the check passes"
)
CHECKS_WITH_PLAIN_TARGETS = [
    "check_dict_unchanged",
    "check_dont_overwrite_parameters",
    "check_dtype_object",
    "check_estimators_dtypes",
    "check_estimators_fit_returns_self",
    "check_estimators_nan_inf",
    "check_estimators_overwrite_params",
    "check_estimators_pickle",
    "check_f_contiguous_array_estimator",
    "check_fit2d_1feature",
    "check_fit2d_1sample",
    "check_fit2d_predict1d",
    "check_fit_check_is_fitted",
    "check_fit_idempotent",
    "check_fit_score_takes_y",
    "check_methods_sample_order_invariance",
    "check_methods_subset_invariance",
    "check_n_features_in",
    "check_n_features_in_after_fitting",
    "check_pipeline_consistency",
    "check_positive_only_tag_during_fit",
    "check_readonly_memmap_input",
    "check_requires_y_none",
]

# predict returns model names; these checks compare the outputs of every
# method with numeric tolerances, which strings do not support. Pickling and
# repeated fits are tested on names and predictions in test_routers.py.
NAMES_NOT_NUMBERS = "predict returns model names, which the check subtracts as numbers"
CHECKS_ON_NUMERIC_OUTPUT = [
    "check_estimators_pickle",
    "check_fit_idempotent",
    "check_methods_sample_order_invariance",
    "check_methods_subset_invariance",
]


@parametrize_with_checks(
    [
        KNNRouter(n_neighbors=2),
        KMeansRouter(n_clusters=2, random_state=0),
        MFRouter(solver="ridge", n_factors=2, random_state=0),
        MFRouter(solver="torch", n_factors=2, max_epochs=5, random_state=0),
        SingleModelRouter(),
        RandomRouter(random_state=0),
    ],
    expected_failed_checks=lambda estimator: dict.fromkeys(
        CHECKS_WITH_PLAIN_TARGETS, NEEDS_OUTCOMES
    ),
)
def test_routers_with_plain_targets(estimator, check):
    check(estimator)


@parametrize_with_checks(
    [
        KNNRouterOnTargets(n_neighbors=2),
        KMeansRouterOnTargets(n_clusters=2, random_state=0),
        MFRouterOnTargets(solver="ridge", n_factors=2, random_state=0),
        MFRouterOnTargets(solver="torch", n_factors=2, max_epochs=5, random_state=0),
        SingleModelRouterOnTargets(),
        RandomRouterOnTargets(random_state=0),
    ],
    expected_failed_checks=lambda estimator: dict.fromkeys(
        CHECKS_ON_NUMERIC_OUTPUT, NAMES_NOT_NUMBERS
    ),
)
def test_routers_with_outcomes(estimator, check):
    check(estimator)
