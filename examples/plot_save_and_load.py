"""
Save a fitted router and load it elsewhere with skops
=====================================================

A fitted pipeline, featurizer and router together, is saved with
`skops <https://skops.readthedocs.io>`_, whose format loads only the types
that the caller trusts, unlike pickle. ``skrouter.get_trusted_types()`` lists
skrouter's estimators; scikit-learn's are trusted by skops already. Check a
file with ``skops.io.get_untrusted_types`` before loading it.

Set the environment variable ``SKROUTER_EXAMPLES_QUICK=1`` to train on a
random subset of 600 problems, as the test suite does.
"""

# %%
# Train and save
# --------------
import os
import shutil
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import skops.io as sio
from sklearn.compose import make_column_transformer
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline

from skrouter import CostQualityDisplay, get_trusted_types
from skrouter.datasets import load_math_vision
from skrouter.routers import KNNRouter

QUICK = os.environ.get("SKROUTER_EXAMPLES_QUICK") == "1"

X, y = load_math_vision(return_X_y=True)
if QUICK:
    X, y = X.sample(600, random_state=0), y.sample(600, random_state=0)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, train_size=0.2, random_state=0
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
    KNNRouter(n_neighbors=30, prior_strength=30.0, budget=0.0005),
)
router.fit(X_train, y_train)

folder = Path(tempfile.mkdtemp(prefix="skrouter-example-"))
path = folder / "math_vision_router.skops"
sio.dump(router, path)
print(f"saved {path.name}: {path.stat().st_size / 1e6:.1f} MB")

# %%
# Inspect and load
# ----------------
# ``skops.io.load`` raises when the file contains a type that is neither
# trusted by default nor in the list passed as ``trusted``.
print("types skops does not trust by default:", sio.get_untrusted_types(file=path))
loaded = sio.load(path, trusted=get_trusted_types())

# %%
# The loaded router makes the same choices
# ----------------------------------------
# The budget was turned into a cost weight during ``fit``; it travels with the
# file as the fitted attribute ``cost_weight_``.
assert np.array_equal(loaded.predict(X_test), router.predict(X_test))
print("cost_weight_ after loading:", loaded[-1].cost_weight_)
print("first choices:", loaded.predict(X_test.head(3)))

display = CostQualityDisplay.from_estimator(loaded, X_test, y_test, name="loaded KNN")
plt.show()

shutil.rmtree(folder)
