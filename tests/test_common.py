"""scikit-learn's estimator checks on every public estimator."""

import numpy as np
import pandas as pd
from sklearn.utils.estimator_checks import parametrize_with_checks

from skrouter import make_outcomes
from skrouter.features import (
    AdaptiveFusion,
    CLIPFeaturizer,
    ImageStatsFeaturizer,
    SentenceEmbedder,
)
from skrouter.features._tiny_clip import register_tiny_clip
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
# outcomes table, so each fails on its first fit with the error that explains
# how to build one. The adapted routers below run them with outcomes instead.
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


def both_halves(X):
    """Give the checks' X a text half and an image half of equal width.

    The text half is X itself and the image half its columns in reverse
    order, so the two halves differ and every check's data stays valid.
    Sparse input passes through, so AdaptiveFusion's own error is checked.
    """
    if hasattr(X, "tocsr") or getattr(X, "ndim", 2) != 2:
        return X
    if hasattr(X, "iloc"):
        image_half = X.iloc[:, ::-1].copy()
        image_half.columns = [f"{name}_image" for name in X.columns]
        return pd.concat([X, image_half], axis=1)
    X = np.asarray(X)
    return np.hstack([X, X[:, ::-1]])


class AdaptiveFusionOnAnyWidth(AdaptiveFusion):
    """AdaptiveFusion whose input is the checks' X doubled into two halves."""

    def fit(self, X, y=None):
        return super().fit(both_halves(X), y)

    def transform(self, X):
        return super().transform(both_halves(X))


# AdaptiveFusion takes a text half and an image half of equal width. The
# checks pass odd widths, which it rejects with an error naming the width.
NEEDS_TWO_HALVES = "X must have an even number of columns: a text and an image half"
CHECKS_WITH_ODD_WIDTH = [
    "check_dict_unchanged",
    "check_dont_overwrite_parameters",
    "check_estimators_dtypes",
    "check_estimators_nan_inf",
    "check_estimators_pickle",
    "check_f_contiguous_array_estimator",
    "check_fit2d_1feature",
    "check_fit2d_predict1d",
    "check_fit_score_takes_y",
    "check_methods_sample_order_invariance",
    "check_methods_subset_invariance",
    "check_pipeline_consistency",
    "check_transformer_data_not_an_array",
    "check_transformer_general",
    "check_transformer_preserve_dtypes",
]

# The adapter doubles the width, so n_features_in_ is twice the checks' X.
DOUBLED_WIDTH = "the adapter doubles X, so n_features_in_ is twice the check's width"


@parametrize_with_checks(
    [
        AdaptiveFusion(),
        AdaptiveFusion(strategy="concat"),
        AdaptiveFusion(confidence="prototype_norm", difference="absolute"),
    ],
    expected_failed_checks=lambda estimator: dict.fromkeys(
        CHECKS_WITH_ODD_WIDTH, NEEDS_TWO_HALVES
    ),
)
def test_fusion(estimator, check):
    check(estimator)


@parametrize_with_checks(
    [
        AdaptiveFusionOnAnyWidth(),
        AdaptiveFusionOnAnyWidth(strategy="mean"),
        AdaptiveFusionOnAnyWidth(confidence="prototype_norm", difference="absolute"),
    ],
    expected_failed_checks=lambda estimator: dict.fromkeys(
        ["check_n_features_in", "check_n_features_in_after_fitting"], DOUBLED_WIDTH
    ),
)
def test_fusion_with_two_halves(estimator, check):
    check(estimator)


# The query featurizers take DataFrames of text and images; their tags
# declare it, and scikit-learn skips the checks that need numeric arrays.
@parametrize_with_checks(
    [
        CLIPFeaturizer(
            model_name=register_tiny_clip(), pretrained=None, random_state=0
        ),
        ImageStatsFeaturizer(),
        SentenceEmbedder(),
    ]
)
def test_query_featurizers(estimator, check):
    check(estimator)
