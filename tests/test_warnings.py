"""Warnings point at the caller's line, whatever the depth of the call."""

import warnings

import numpy as np
import pandas as pd
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

from skrouter import make_outcomes
from skrouter.datasets import make_routing_problem
from skrouter.features import AdaptiveFusion, CLIPFeaturizer
from skrouter.metrics import get_scorers, nauc_score, refit_within_budget
from skrouter.routers import KMeansRouter

# Outcomes of 3 queries and 2 models; the second query's first model is
# unobserved, so metrics leave that query out with a warning.
Y = make_outcomes([[1, 0], [np.nan, 1], [0, 1]], [[2.0, 1.0]] * 3)
QUALITY_PRED = np.array([[0.9, 0.1], [0.5, 0.5], [0.1, 0.9]])
COST_PRED = np.array([[2.0, 1.0]] * 3)


def only_warning(caught, fragment):
    matching = [w for w in caught if fragment in str(w.message)]
    assert len(matching) == 1, [str(w.message) for w in caught]
    return matching[0]


def test_metric_warning_points_at_caller():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        nauc_score(Y, QUALITY_PRED, COST_PRED)
    assert only_warning(caught, "left out of the metric").filename == __file__


def test_pipeline_warning_points_at_caller(tiny_clip_name):
    X = pd.DataFrame({"question": ["a", "b", "c", "d"], "image": [None] * 4})
    y = make_outcomes([[1, 0], [0, 1], [1, 1], [0, 0]], [[2.0, 1.0]] * 4)
    pipeline = Pipeline(
        [
            (
                "clip",
                CLIPFeaturizer(
                    model_name=tiny_clip_name, pretrained=None, random_state=0
                ),
            ),
            ("fusion", AdaptiveFusion()),
            ("router", KMeansRouter(n_clusters=2, random_state=0)),
        ]
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pipeline.fit(X, y)
    assert only_warning(caught, "random weights").filename == __file__


def test_search_warning_points_at_caller():
    X, y = make_routing_problem(n_queries=120, random_state=0)
    search = GridSearchCV(
        KMeansRouter(n_clusters=3, random_state=0),
        {"cost_weight": [0.0, 1.0]},
        scoring=get_scorers(["mean_quality", "neg_mean_cost"]),
        refit=refit_within_budget(1e-12),
        cv=2,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        search.fit(X, y)
    assert only_warning(caught, "within the budget").filename == __file__
