"""
Tune a router for a budget with GridSearchCV
============================================

nAUC, a router's default score, covers every cost weight at once, so it picks
how a router learns (``n_neighbors`` here) but not where it operates. This
example first tunes ``n_neighbors`` by nAUC, then searches ``cost_weight`` and
``budget`` with the operating-point scorers ``"mean_quality"`` and
``"neg_mean_cost"``, and refits the best candidate within a budget in USD
with ``refit_within_budget``.

Set the environment variable ``SKROUTER_EXAMPLES_QUICK=1`` to run on a random
subset of 600 problems with smaller grids, as the test suite does.
"""

# %%
# Data and pipeline
# -----------------
import os

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.compose import make_column_transformer
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.model_selection import GridSearchCV, KFold, train_test_split
from sklearn.pipeline import make_pipeline

from skrouter import CostQualityDisplay
from skrouter.datasets import load_math_vision
from skrouter.metrics import get_scorer, refit_within_budget
from skrouter.routers import KNNRouter

QUICK = os.environ.get("SKROUTER_EXAMPLES_QUICK") == "1"

X, y = load_math_vision(return_X_y=True)
if QUICK:
    X, y = X.sample(600, random_state=0), y.sample(600, random_state=0)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, train_size=0.3, random_state=0
)

router = make_pipeline(
    make_column_transformer(
        (
            make_pipeline(
                TfidfVectorizer(sublinear_tf=True, min_df=2),
                TruncatedSVD(n_components=64, random_state=0),
            ),
            "question",
        )
    ),
    KNNRouter(n_neighbors=30, prior_strength=30.0),
)
cv = KFold(n_splits=3, shuffle=True, random_state=0)

# %%
# Tune how the router learns, by nAUC
# -----------------------------------
# ``score`` is nAUC, so a plain search compares whole cost-quality curves.
neighbors = [10, 30] if QUICK else [5, 10, 30, 60]
search = GridSearchCV(router, {"knnrouter__n_neighbors": neighbors}, cv=cv)
search.fit(X_train, y_train)
print("nAUC by n_neighbors:")
print(
    pd.DataFrame(search.cv_results_)[
        ["param_knnrouter__n_neighbors", "mean_test_score", "std_test_score"]
    ].round(4)
)
router.set_params(**search.best_params_)

# %%
# Choose an operating point within a budget
# -----------------------------------------
# The mean cost per query of the best single model, Gemini-Pro, is about
# 0.0025 USD on MATH-Vision. We ask for the best cross-validated quality at no
# more than a third of that. ``refit="mean_quality"`` would always pick the
# cost weight 0, the most expensive choices. ``refit_within_budget`` instead
# reads the quality and the cost of every candidate and applies the budget.
budget = 0.0008
scoring = {name: get_scorer(name) for name in ["mean_quality", "neg_mean_cost"]}
cost_weights = [0.0, 0.1, 1.0, 10.0] if QUICK else [0.0, 0.03, 0.1, 0.3, 1.0, 3.0]
search = GridSearchCV(
    router,
    {"knnrouter__cost_weight": cost_weights},
    scoring=scoring,
    refit=refit_within_budget(budget),
    cv=cv,
)
search.fit(X_train, y_train)

results = pd.DataFrame(
    {
        "cost_weight": search.cv_results_["param_knnrouter__cost_weight"],
        "quality": search.cv_results_["mean_test_mean_quality"],
        "cost (USD)": -search.cv_results_["mean_test_neg_mean_cost"],
    }
)
results["within budget"] = results["cost (USD)"] <= budget
print(results.round(5))
print("refitted:", search.best_params_)

# %%
# The budget can also be a parameter of the router: with ``budget`` set,
# ``fit`` picks the cost weight whose mean predicted cost on the training
# queries meets it. Predicted costs are estimates, so the cross-validated
# cost shows how close the router stays to its budget.
budgets = [0.0003, 0.0008] if QUICK else [0.0002, 0.0004, 0.0008, 0.0016]
search_budget = GridSearchCV(
    router,
    {"knnrouter__budget": budgets},
    scoring=scoring,
    refit=refit_within_budget(budget),
    cv=cv,
)
search_budget.fit(X_train, y_train)
print(
    pd.DataFrame(
        {
            "budget": search_budget.cv_results_["param_knnrouter__budget"],
            "quality": search_budget.cv_results_["mean_test_mean_quality"],
            "cost (USD)": -search_budget.cv_results_["mean_test_neg_mean_cost"],
        }
    ).round(5)
)

# %%
# Where the chosen router operates
# --------------------------------
# The curve is the same for every cost weight; the refitted router's operating
# point on the test queries is one point on or below it.
best = search.best_estimator_
choice = best.predict(X_test)
chosen = y_test["quality"].columns.get_indexer(choice)
rows = np.arange(len(y_test))
test_quality = y_test["quality"].to_numpy()[rows, chosen].mean()
test_cost = y_test["cost"].to_numpy()[rows, chosen].mean()
print(f"test: quality {test_quality:.3f} at {test_cost:.5f} USD per query")

display = CostQualityDisplay.from_estimator(best, X_test, y_test, name="KNN")
display.ax_.scatter(
    [test_cost],
    [test_quality],
    s=80,
    marker="*",
    color="red",
    zorder=6,
    label="refitted operating point",
)
display.ax_.axvline(budget, color="red", linewidth=0.8, linestyle=":")
display.ax_.legend(loc="best", fontsize="small")
plt.show()
