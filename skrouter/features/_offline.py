"""Query features that need no download: sentence embeddings and image stats."""

import numbers

import numpy as np
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import StandardScaler

from ._image_stats import FEATURE_NAMES, ImageStatsFeaturizer
from ._text import DEFAULT_MODEL, SentenceEmbedder

__all__ = ["make_offline_featurizer"]


def make_offline_featurizer(
    text_column="question",
    image_column="image",
    *,
    model=DEFAULT_MODEL,
    image_weight="balanced",
    image_root=None,
    max_side=336,
    size_columns=("image_width", "image_height", "image_bytes"),
    on_image_error="raise",
    batch_size=64,
    device="cpu",
    memory=None,
    verbose=0,
):
    """Build a featurizer of text embeddings and scaled image statistics.

    The result is a :class:`~sklearn.pipeline.FeatureUnion` of two branches
    that both read the query DataFrame:

    - ``"text"``: :class:`SentenceEmbedder` on ``text_column``, unit-length
      vectors (384 columns with the default model);
    - ``"image"``: :class:`ImageStatsFeaturizer` on ``image_column`` followed
      by :class:`~sklearn.preprocessing.StandardScaler`, 10 columns with mean
      0 and variance 1 on the training queries, multiplied by
      ``image_weight``.

    Every model file is read from disk, and nothing is downloaded.

    Parameters
    ----------
    text_column : str or None, default="question"
        Column of the query texts. None leaves out the text branch.
    image_column : str or None, default="image"
        Column of the images. None leaves out the image branch.
    model : str or path-like, default="all-MiniLM-L6-v2"
        Sentence-transformers model, see :class:`SentenceEmbedder`.
    image_weight : float or "balanced", default="balanced"
        Factor applied to the scaled image statistics. ``"balanced"`` is
        ``1 / sqrt(10)``: the 10 standardized columns then have an expected
        squared norm of 1, the squared norm of a unit text embedding, so
        neither branch dominates Euclidean or cosine distances. With 1, the
        image branch has ten times the text branch's squared norm. On
        MATH-Vision, ``"balanced"`` and 1 gave nAUC within one standard
        deviation of each other for KNN and k-means routers
        (``benchmarks/feature_ablation.py``).
    image_root : str or path-like, default=None
        Folder that relative image paths are resolved against.
    max_side : int, default=336
        Longer side, in pixels, at which image statistics are measured.
    size_columns : tuple of 3 str or None, \
            default=("image_width", "image_height", "image_bytes")
        Columns with the original image size, used in place of the file's own
        size when ``X`` has them, see :class:`ImageStatsFeaturizer`.
    on_image_error : {"raise", "missing"}, default="raise"
        What to do with an unreadable image.
    batch_size : int, default=64
        Number of texts per model call.
    device : str, default="cpu"
        Torch device of the text model.
    memory : str, path-like, joblib.Memory or None, default=None
        Folder of the text embedding cache, so that cross-validation folds
        and grid-search candidates embed each distinct text once.
    verbose : int, default=0
        Print the text embedder's progress to stderr when positive.

    Returns
    -------
    featurizer : sklearn.pipeline.FeatureUnion
        Unfitted. Its output columns are named ``text__text0``, ... and
        ``image__width``, ... by ``get_feature_names_out``.

    Raises
    ------
    ValueError
        If both columns are None, or ``image_weight`` is not a finite number
        >= 0 or ``"balanced"``.

    See Also
    --------
    CLIPFeaturizer : Learned text and image embeddings from one CLIP model.

    Examples
    --------
    >>> import pandas as pd
    >>> from PIL import Image
    >>> from skrouter.features import make_offline_featurizer
    >>> queries = pd.DataFrame({
    ...     "question": ["Find the area.", "How many circles?", "Solve x + 1 = 2."],
    ...     "image": [Image.new("RGB", (64, 48), "white"), None,
    ...               Image.new("L", (30, 90), 128)],
    ... })
    >>> featurizer = make_offline_featurizer()
    >>> featurizer.fit_transform(queries).shape
    (3, 394)
    >>> featurizer.get_feature_names_out()[[0, 384, 393]]
    array(['text__text0', 'image__width', 'image__has_image'], dtype=object)
    """
    if text_column is None and image_column is None:
        raise ValueError(
            "Invalid text_column=None with image_column=None: at least one of "
            "them must name a column of X."
        )
    if isinstance(image_weight, str):
        if image_weight != "balanced":
            raise ValueError(
                f"Invalid image_weight={image_weight!r}: expected 'balanced' or "
                "a finite number >= 0."
            )
        image_weight = 1.0 / np.sqrt(len(FEATURE_NAMES))
    elif (
        not isinstance(image_weight, numbers.Real)
        or isinstance(image_weight, bool)
        or not np.isfinite(image_weight)
        or image_weight < 0
    ):
        raise ValueError(
            f"Invalid image_weight={image_weight!r}: expected 'balanced' or a "
            "finite number >= 0."
        )

    branches = []
    if text_column is not None:
        embedder = SentenceEmbedder(
            text_column=text_column,
            model=model,
            batch_size=batch_size,
            device=device,
            memory=memory,
            verbose=verbose,
        )
        branches.append(("text", embedder))
    if image_column is not None:
        stats = ImageStatsFeaturizer(
            image_column=image_column,
            image_root=image_root,
            max_side=max_side,
            size_columns=size_columns,
            on_image_error=on_image_error,
        )
        scaled = Pipeline([("stats", stats), ("scale", StandardScaler())])
        branches.append(("image", scaled))

    weights = None if image_column is None else {"image": float(image_weight)}
    return FeatureUnion(branches, transformer_weights=weights)
