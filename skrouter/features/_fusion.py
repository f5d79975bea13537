"""Fusion of a text and an image embedding into one query vector."""

import numbers

import numpy as np
from scipy.special import expit
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = ["AdaptiveFusion"]

_STRATEGIES = ("adaptive", "mean", "concat", "text", "image")
_CONFIDENCES = ("norm", "prototype_norm")
_DIFFERENCES = ("signed", "absolute")

# Below this standard deviation of the training norms, the norm term of the
# prototype confidence would divide by (almost) zero, so it is set to 0.5.
_MIN_NORM_STD = 1e-12


def _unit_rows(matrix, present):
    """Return the rows divided by their norms, with absent rows left at 0."""
    norms = np.linalg.norm(matrix, axis=1)
    unit = np.zeros_like(matrix)
    unit[present] = matrix[present] / norms[present, None]
    return unit, norms


class AdaptiveFusion(TransformerMixin, BaseEstimator):
    """Fuse ``[text_embedding, image_embedding]`` rows into one vector each.

    The input has ``2 * d`` columns, the text half then the image half, as
    :class:`CLIPFeaturizer` returns them. A half is missing when all its
    entries are exactly 0. With the unit halves ``t̂ = t / ||t||`` and
    ``v̂ = v / ||v||``, ``strategy="adaptive"`` computes::

        (w_t, w_v) = softmax(eta * (c_t, c_v))
        f = w_t t̂ + w_v v̂ + alpha (t̂ ⊙ v̂) + beta Δ

    and returns ``f / ||f||``, where ``c`` is the confidence of each half and
    ``Δ`` the difference of the unit halves. A row whose image half is missing
    returns ``t̂``, and a row whose text half is missing returns ``v̂``, so a
    router trained on multimodal queries also serves text-only ones.

    Parameters
    ----------
    strategy : {"adaptive", "mean", "concat", "text", "image"}, \
            default="adaptive"
        ``"adaptive"``: the weighted formula above. ``"mean"``:
        ``(t̂ + v̂) / 2``, normalized. ``"concat"``: ``[t̂, v̂]``, of width
        ``2 * d``. ``"text"``: ``t̂``. ``"image"``: ``v̂`` (a zero row for a
        text-only query). The last three are for ablations.
    confidence : {"norm", "prototype_norm"}, default="norm"
        ``"norm"``: ``c = ||x||``, the norm of the raw half.
        ``"prototype_norm"``: ``c = clip(0.25 (cos(x̂, μ) + 1)
        + 0.5 sigmoid((||x|| - m) / s), 0, 1)``, with the mean unit
        embedding ``μ`` and the mean ``m`` and standard deviation ``s`` of the
        raw norms of that half over the training rows where it is present.
    difference : {"signed", "absolute"}, default="signed"
        ``Δ = t̂ - v̂`` or ``Δ = |t̂ - v̂|``.
    eta : float, default=5.0
        Sharpness of the softmax over the two confidences.
    alpha : float, default=0.5
        Weight of the element-wise product ``t̂ ⊙ v̂``.
    beta : float, default=0.5
        Weight of the difference ``Δ``.

    Attributes
    ----------
    n_features_in_ : int
        Number of input columns, ``2 * d``.
    feature_names_in_ : ndarray of shape (n_features,)
        Input column names, when ``X`` had string column names.
    embedding_dim_ : int
        Size ``d`` of each half.
    text_prototype_ : ndarray of shape (d,)
        Mean unit text embedding ``μ`` of the training rows with a text half
        (zero when there is none).
    text_norm_mean_ : float
        Mean raw norm ``m`` of those text halves.
    text_norm_std_ : float
        Standard deviation ``s`` of those norms (``ddof=0``).
    image_prototype_ : ndarray of shape (d,)
        As ``text_prototype_``, for the image halves.
    image_norm_mean_ : float
        As ``text_norm_mean_``, for the image halves.
    image_norm_std_ : float
        As ``text_norm_std_``, for the image halves.

    See Also
    --------
    CLIPFeaturizer : Embed the text and the image of each query.

    Notes
    -----
    Feed it raw CLIP halves (``CLIPFeaturizer(normalize=False)``): with unit
    halves every norm is 1, so ``confidence="norm"`` always gives equal
    weights. With ``confidence="prototype_norm"``, ``cos(x̂, 0)`` counts as 0,
    so a half that no training row had contributes only its norm term. When
    ``s`` is below 1e-12, the sigmoid of the norm term is replaced by 0.5.
    A fused row whose ``f`` is 0
    stays a zero row. The defaults are the published MMR-Bench fusion
    (``eta=5``, ``alpha=beta=0.5``, norm confidence, signed difference).

    Examples
    --------
    >>> import numpy as np
    >>> from skrouter.features import AdaptiveFusion
    >>> X = np.array([[3.0, 0.0, 0.0, 1.0],
    ...               [0.0, 2.0, 0.0, 0.0]])
    >>> fusion = AdaptiveFusion().fit(X)
    >>> fused = fusion.transform(X)
    >>> fused.shape
    (2, 2)
    >>> np.round(fused, 3)
    array([[ 0.949, -0.316],
           [ 0.   ,  1.   ]])
    """

    def __init__(
        self,
        strategy="adaptive",
        confidence="norm",
        difference="signed",
        eta=5.0,
        alpha=0.5,
        beta=0.5,
    ):
        self.strategy = strategy
        self.confidence = confidence
        self.difference = difference
        self.eta = eta
        self.alpha = alpha
        self.beta = beta

    def fit(self, X, y=None):
        """Learn the prototype and the norm statistics of each half.

        Parameters
        ----------
        X : array-like of shape (n_samples, 2 * d)
            Text halves, then image halves.
        y : None
            Ignored.

        Returns
        -------
        self : AdaptiveFusion
            The fitted transformer.
        """
        self._validate_params()
        X = validate_data(self, X, dtype=[np.float64, np.float32])
        self._check_width(X)

        dim = X.shape[1] // 2
        self.embedding_dim_ = dim
        for name, half in (("text", X[:, :dim]), ("image", X[:, dim:])):
            half = half.astype(np.float64)
            present = np.any(half != 0, axis=1)
            unit, norms = _unit_rows(half, present)
            if present.any():
                prototype = unit[present].mean(axis=0)
                norm_mean = float(norms[present].mean())
                norm_std = float(norms[present].std(ddof=0))
            else:
                prototype = np.zeros(dim)
                norm_mean = 0.0
                norm_std = 0.0
            setattr(self, f"{name}_prototype_", prototype)
            setattr(self, f"{name}_norm_mean_", norm_mean)
            setattr(self, f"{name}_norm_std_", norm_std)
        return self

    def transform(self, X):
        """Fuse each row's text and image halves.

        Parameters
        ----------
        X : array-like of shape (n_samples, 2 * d)
            Text halves, then image halves.

        Returns
        -------
        fused : ndarray of shape (n_samples, d), or (n_samples, 2 * d) for \
                ``strategy="concat"``
            Unit rows, or zero rows where nothing is left to fuse.
        """
        check_is_fitted(self)
        self._validate_params()
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=False)
        output_dtype = X.dtype

        dim = self.embedding_dim_
        text = X[:, :dim].astype(np.float64)
        image = X[:, dim:].astype(np.float64)
        text_present = np.any(text != 0, axis=1)
        image_present = np.any(image != 0, axis=1)
        text_unit, text_norms = _unit_rows(text, text_present)
        image_unit, image_norms = _unit_rows(image, image_present)

        if self.strategy == "text":
            return text_unit.astype(output_dtype)
        if self.strategy == "image":
            return image_unit.astype(output_dtype)
        if self.strategy == "concat":
            return np.hstack([text_unit, image_unit]).astype(output_dtype)

        if self.strategy == "mean":
            fused = (text_unit + image_unit) / 2
        else:
            fused = self._adaptive(text_unit, text_norms, image_unit, image_norms)

        # One-sided rows return the present unit half, whatever the formula
        # gives (the product term and an absolute difference would not).
        fused[~image_present] = text_unit[~image_present]
        fused[~text_present] = image_unit[~text_present]

        fused, _ = _unit_rows(fused, np.any(fused != 0, axis=1))
        return fused.astype(output_dtype)

    def _adaptive(self, text_unit, text_norms, image_unit, image_norms):
        if self.confidence == "norm":
            text_confidence = text_norms
            image_confidence = image_norms
        else:
            text_confidence = self._prototype_confidence("text", text_unit, text_norms)
            image_confidence = self._prototype_confidence(
                "image", image_unit, image_norms
            )

        # softmax over two values: w_t = sigmoid(eta * (c_t - c_v)).
        text_weight = expit(self.eta * (text_confidence - image_confidence))
        image_weight = 1.0 - text_weight

        if self.difference == "signed":
            difference = text_unit - image_unit
        else:
            difference = np.abs(text_unit - image_unit)
        return (
            text_weight[:, None] * text_unit
            + image_weight[:, None] * image_unit
            + self.alpha * text_unit * image_unit
            + self.beta * difference
        )

    def _prototype_confidence(self, name, unit, norms):
        prototype = getattr(self, f"{name}_prototype_")
        norm_mean = getattr(self, f"{name}_norm_mean_")
        norm_std = getattr(self, f"{name}_norm_std_")

        prototype_norm = np.linalg.norm(prototype)
        if prototype_norm > 0:
            cosine = unit @ prototype / prototype_norm
        else:
            cosine = np.zeros(len(unit))

        if norm_std < _MIN_NORM_STD:
            norm_term = np.full(len(unit), 0.5)
        else:
            norm_term = expit((norms - norm_mean) / norm_std)
        return np.clip(0.5 * (cosine + 1) / 2 + 0.5 * norm_term, 0.0, 1.0)

    def get_feature_names_out(self, input_features=None):
        """Return the output column names.

        ``fused0..`` for ``"adaptive"`` and ``"mean"``, ``text0..`` and
        ``image0..`` for ``"concat"``, ``text0..`` for ``"text"`` and
        ``image0..`` for ``"image"``.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Ignored. It is accepted for API consistency.

        Returns
        -------
        feature_names_out : ndarray of str objects
        """
        check_is_fitted(self)
        dim = self.embedding_dim_
        prefixes = {
            "adaptive": ["fused"],
            "mean": ["fused"],
            "concat": ["text", "image"],
            "text": ["text"],
            "image": ["image"],
        }[self.strategy]
        names = [f"{prefix}{i}" for prefix in prefixes for i in range(dim)]
        return np.asarray(names, dtype=object)

    def _validate_params(self):
        for parameter, allowed in (
            ("strategy", _STRATEGIES),
            ("confidence", _CONFIDENCES),
            ("difference", _DIFFERENCES),
        ):
            value = getattr(self, parameter)
            if not isinstance(value, str) or value not in allowed:
                raise ValueError(
                    f"Invalid {parameter}={value!r}: expected one of "
                    f"{', '.join(repr(option) for option in allowed)}."
                )
        for parameter in ("eta", "alpha", "beta"):
            value = getattr(self, parameter)
            if (
                not isinstance(value, numbers.Real)
                or isinstance(value, bool)
                or not np.isfinite(value)
            ):
                raise ValueError(
                    f"Invalid {parameter}={value!r}: expected a finite real number."
                )

    @staticmethod
    def _check_width(X):
        if X.shape[1] < 2 or X.shape[1] % 2:
            raise ValueError(
                f"Invalid X with {X.shape[1]} columns: expected an even number "
                ">= 2, the text half then the image half, of equal widths."
            )
