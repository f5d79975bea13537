"""
Route MATH-Vision problems to 15 multimodal models
===================================================

This example trains two routers on 20 % of the MATH-Vision problems that ship
with skrouter and compares their cost-quality curves, on the other 80 %, with
every single model and with the oracle, which routes by the true outcomes.

The queries are represented by a TF-IDF of their text, reduced by a truncated
SVD, because it runs anywhere in seconds. ``CLIPFeaturizer`` with
``AdaptiveFusion``, or ``skrouter.features.make_offline_featurizer``, adds what
the images show.

Set the environment variable ``SKROUTER_EXAMPLES_QUICK=1`` to run on a random
subset of 600 problems, as the test suite does.
"""

# %%
# Load the data
# -------------
# ``X`` contains one problem per row, with its question text and the path of its
# image. ``y`` contains the outcomes: for each model, the quality of its answer
# (1 correct, 0 wrong) and its estimated cost in USD.
import os

import matplotlib.pyplot as plt
from sklearn.compose import make_column_transformer
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline

from skrouter import CostQualityDisplay
from skrouter.datasets import load_math_vision
from skrouter.metrics import nauc_score, peak_score, qnc_score, single_model_points
from skrouter.routers import KMeansRouter, KNNRouter

QUICK = os.environ.get("SKROUTER_EXAMPLES_QUICK") == "1"

X, y = load_math_vision(return_X_y=True)
if QUICK:
    X, y = X.sample(600, random_state=0), y.sample(600, random_state=0)
print(f"{len(X)} problems, {y['quality'].shape[1]} models")
print(single_model_points(y).sort_values("cost").round(5))

# %%
# Train routers
# -------------
# MMR-Bench's protocol trains on 20 % of the queries and tests on the other
# 80 %. Each router is a pipeline: text features, then the router, which
# predicts every model's quality and cost for a query.
X_train, X_test, y_train, y_test = train_test_split(
    X, y, train_size=0.2, random_state=0
)


def text_features():
    """TF-IDF of the question, reduced to 64 dimensions."""
    return make_column_transformer(
        (
            make_pipeline(
                TfidfVectorizer(sublinear_tf=True, min_df=2),
                TruncatedSVD(n_components=64, random_state=0),
            ),
            "question",
        )
    )


routers = {
    "KNN": make_pipeline(
        text_features(), KNNRouter(n_neighbors=30, prior_strength=30.0)
    ),
    "KMeans": make_pipeline(text_features(), KMeansRouter(8, random_state=0)),
}
for router in routers.values():
    router.fit(X_train, y_train)

# %%
# Score them
# ----------
# ``score`` is nAUC: the mean quality of the router's cost-quality frontier
# over the cost range of the single models. Ps is the best quality the router
# reaches, and QNC the cost at which it first matches the best single model,
# relative to that model's cost (``inf`` when it never does).
for name, router in routers.items():
    features = router[:-1].transform(X_test)
    quality_pred = router[-1].predict_quality(features)
    cost_pred = router[-1].predict_cost(features)
    print(
        f"{name}: nAUC = {router.score(X_test, y_test):.3f}, "
        f"Ps = {peak_score(y_test, quality_pred, cost_pred):.3f}, "
        f"QNC = {qnc_score(y_test, quality_pred, cost_pred):.3f}, "
        f"nAUC over its own frontier = "
        f"{nauc_score(y_test, quality_pred, cost_pred, cost_range='frontier'):.3f}"
    )

# %%
# Plot the cost-quality curves
# ----------------------------
# The first display draws the single models and the oracle; the second router
# is added to the same axes.
display = CostQualityDisplay.from_estimator(routers["KNN"], X_test, y_test, name="KNN")
CostQualityDisplay.from_estimator(
    routers["KMeans"],
    X_test,
    y_test,
    name="KMeans",
    ax=display.ax_,
    plot_models=False,
    plot_oracle=False,
)
display.ax_.set_title("MATH-Vision, TF-IDF features")
plt.show()

# %%
# A router picks one model per query. With ``cost_weight`` it trades quality
# against cost: ``predict`` returns the chosen model names.
knn = routers["KNN"]
knn.set_params(knnrouter__cost_weight=0.5)
print(knn.predict(X_test.head(5)))
