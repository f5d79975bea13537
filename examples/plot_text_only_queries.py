"""
Serve text-only queries with a router trained on multimodal ones
================================================================

``CLIPFeaturizer`` embeds each query's text and image into two halves, and
``AdaptiveFusion`` fuses them into one vector. A query without an image gets
a zero image half, and the fusion then returns its unit text embedding, which
lives in the same space as the fused training queries. So a router trained on
problems with images also routes questions that come without one, with no
retraining.

The full run uses the pretrained CLIP ViT-B-32 weights (``openai`` tag), read
from the local cache or downloaded once. When they cannot be loaded, and in
quick mode, it uses the tiny random-weight CLIP model of skrouter's tests:
the code path is the same, but its features carry no meaning, so its routing
scores are those of chance.

Set the environment variable ``SKROUTER_EXAMPLES_QUICK=1`` to use the tiny
model on a random subset of 300 problems, as the test suite does.
"""

# %%
# A multimodal router
# -------------------
import os
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline

from skrouter import CostQualityDisplay
from skrouter.datasets import load_math_vision
from skrouter.features import AdaptiveFusion, CLIPFeaturizer
from skrouter.features._tiny_clip import register_tiny_clip
from skrouter.routers import KNNRouter

QUICK = os.environ.get("SKROUTER_EXAMPLES_QUICK") == "1"

X, y = load_math_vision(return_X_y=True)
if QUICK:
    X, y = X.sample(300, random_state=0), y.sample(300, random_state=0)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, train_size=0.2, random_state=0
)


def tiny_clip():
    """Build the tiny test model: 16-dimensional halves, random weights."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return CLIPFeaturizer(
            model_name=register_tiny_clip(), pretrained=None, random_state=0
        )


featurizer = tiny_clip()
if not QUICK:
    featurizer = CLIPFeaturizer(model_name="ViT-B-32", pretrained="openai")
    try:
        featurizer.fit_transform(X_train.head(1))
    except OSError as exc:
        print(f"Pretrained CLIP weights unavailable ({exc}); using the tiny model.")
        featurizer = tiny_clip()
print("featurizer:", featurizer.model_name)

router = make_pipeline(
    featurizer, AdaptiveFusion(), KNNRouter(n_neighbors=30, prior_strength=30.0)
)
with warnings.catch_warnings():
    # The tiny model warns that its weights are random at every load.
    warnings.simplefilter("ignore", UserWarning)
    router.fit(X_train, y_train)
    print(f"nAUC with images: {router.score(X_test, y_test):.3f}")

# %%
# The same test problems without their images
# -------------------------------------------
# A missing image is None (NaN and "" count as missing too).
X_text_only = X_test.assign(image=None)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)
    fused = router[:-1].transform(X_text_only)
    halves = router[0].transform(X_text_only)
    print(f"nAUC without images: {router.score(X_text_only, y_test):.3f}")
    print("choices without images:", router.predict(X_text_only.head(3)))

# %%
# Each text-only query is routed on its unit text embedding: the fusion of a
# row with a zero image half is the text half divided by its norm.
dim = halves.shape[1] // 2
text_half, image_half = halves[:, :dim], halves[:, dim:]
assert not image_half.any()
unit_text = text_half / np.linalg.norm(text_half, axis=1, keepdims=True)
assert np.allclose(fused, unit_text)
print(f"{len(fused)} text-only queries fused to their unit text embeddings")

# %%
# Cost-quality curves with and without images
# -------------------------------------------
with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)
    display = CostQualityDisplay.from_estimator(
        router, X_test, y_test, name="with images"
    )
    CostQualityDisplay.from_estimator(
        router,
        X_text_only,
        y_test,
        name="text only",
        ax=display.ax_,
        plot_models=False,
        plot_oracle=False,
    )
plt.show()
