"""Visual complexity measures of query images, computed from pixels."""

import io
import numbers
import os
from collections.abc import Mapping

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, TransformerMixin

from ._images import ImageReadError, is_missing, load_image, read_image_source

__all__ = ["ImageStatsFeaturizer"]

FEATURE_NAMES = (
    "width",
    "height",
    "aspect_ratio",
    "megapixels",
    "bytes_per_pixel",
    "entropy",
    "edge_density",
    "ink_share",
    "n_colors",
    "has_image",
)

# A pixel is an edge when its gradient magnitude, in 8-bit gray levels per
# pixel, exceeds this value: a step of an eighth of the full range.
EDGE_THRESHOLD = 32

# A pixel is ink when one of its channels differs from the background colour
# by more than this many 8-bit levels, which JPEG noise around flat areas
# rarely reaches.
INK_TOLERANCE = 32

# Colours are counted after keeping the top 4 bits of each channel (4,096
# possible colours), and only those covering at least this share of the
# pixels, so JPEG ringing at edges does not count as colours.
COLOR_BITS = 4
MIN_COLOR_SHARE = 0.001

# EXIF orientations that turn the image by 90 degrees and so swap its sides.
_SWAPPING_ORIENTATIONS = (5, 6, 7, 8)
_EXIF_ORIENTATION = 0x0112


def _pixel_stats(image):
    """Return entropy, edge density, ink share and colour count of an image.

    ``image`` is an RGB ``PIL.Image.Image``. Every step is a whole-array numpy
    operation on 8- or 16-bit planes, which keeps temporaries small.
    """
    planes = [np.asarray(band) for band in image.split()]
    gray = np.asarray(image.convert("L"))
    n_pixels = gray.size

    histogram = np.bincount(gray.ravel(), minlength=256)
    probabilities = histogram[histogram > 0] / n_pixels
    entropy = float(-(probabilities * np.log2(probabilities)).sum())

    # Forward differences, on the (h - 1, w - 1) pixels that have both
    # neighbours. Squares of differences up to 255 need 32 bits.
    signed = gray.astype(np.int16)
    dx = (signed[:-1, 1:] - signed[:-1, :-1]).astype(np.int32)
    dy = (signed[1:, :-1] - signed[:-1, :-1]).astype(np.int32)
    if dx.size:
        edge_density = np.count_nonzero(dx * dx + dy * dy > EDGE_THRESHOLD**2)
        edge_density /= dx.size
    else:
        edge_density = 0.0

    shift = 8 - COLOR_BITS
    codes = np.zeros(gray.shape, dtype=np.int16)
    for plane in planes:
        codes = (codes << COLOR_BITS) | (plane >> shift)
    codes = codes.ravel()
    color_counts = np.bincount(codes, minlength=1 << (3 * COLOR_BITS))
    n_colors = np.count_nonzero(color_counts >= MIN_COLOR_SHARE * n_pixels)

    in_background = codes == np.argmax(color_counts)
    ink = np.zeros(gray.shape, dtype=bool)
    for plane in planes:
        level = np.int16(np.rint(plane.ravel()[in_background].mean()))
        ink |= np.abs(plane.astype(np.int16) - level) > INK_TOLERANCE
    ink_share = np.count_nonzero(ink) / n_pixels

    return entropy, float(edge_density), float(ink_share), float(n_colors)


def _original_size(source):
    """Return the upright (width, height) and encoded size of an image source.

    Reads the header only. The encoded size is 0 for an in-memory image.
    """
    from PIL import Image

    if isinstance(source, Image.Image):
        width, height = source.size
        n_bytes = 0
        orientation = source.getexif().get(_EXIF_ORIENTATION)
    else:
        with Image.open(io.BytesIO(source)) as image:
            width, height = image.size
            orientation = image.getexif().get(_EXIF_ORIENTATION)
        n_bytes = len(source)
    if orientation in _SWAPPING_ORIENTATIONS:
        width, height = height, width
    return width, height, n_bytes


def _size_features(width, height, n_bytes):
    pixels = float(width) * float(height)
    return (
        float(width),
        float(height),
        float(width) / float(height),
        pixels / 1e6,
        float(n_bytes) / pixels,
    )


class ImageStatsFeaturizer(TransformerMixin, BaseEstimator):
    """Describe each query image by size and visual complexity, without a model.

    Each row gets ten numbers measured from the image's pixels and file, in
    this order (``get_feature_names_out``):

    - ``width``, ``height``: size ``W``, ``H`` of the original image, in
      pixels, after its EXIF orientation is applied.
    - ``aspect_ratio``: ``W / H``.
    - ``megapixels``: ``W * H / 1e6``.
    - ``bytes_per_pixel``: ``B / (W * H)`` with ``B`` the encoded file size in
      bytes, 0 for an in-memory ``PIL.Image.Image``, which has no file.
    - ``entropy``: ``-sum_k p_k log2 p_k``, in bits, over the 256-bin
      histogram ``p`` of the gray levels (Pillow's ``"L"`` conversion,
      ``0.299 R + 0.587 G + 0.114 B``). From 0 (one gray level) to 8.
    - ``edge_density``: share of pixels whose gradient magnitude
      ``sqrt(dx**2 + dy**2)`` exceeds 32 gray levels, with ``dx`` and ``dy``
      the forward differences to the right and lower neighbour.
    - ``ink_share``: share of pixels with ``max_c |x_c - b_c| > 32`` over the
      channels ``c``, where the background colour ``b`` is the mean of the
      pixels in the most frequent colour (after keeping the top 4 bits of
      each channel), rounded to integer levels.
    - ``n_colors``: number of colours, after keeping the top 4 bits of each
      channel (4,096 possible), that cover at least 0.1 % of the pixels.
    - ``has_image``: 1 when the row has a readable image, else 0.

    The pixel measures (entropy to n_colors) are computed on the image shrunk
    so that its longer side is at most ``max_side`` pixels. JPEG files are
    decoded at reduced size with draft mode. The measures therefore describe
    the image at that scale, and each image costs bounded memory. A row without an image
    has ``has_image = 0`` and every other feature 0.

    Parameters
    ----------
    image_column : str, default="image"
        Column of ``X`` with the images, when ``X`` is a DataFrame. Each cell
        is a path (relative paths are resolved against ``image_root``), a
        ``PIL.Image.Image``, encoded bytes, a mapping with ``"bytes"`` or
        ``"path"``, or a missing value (None, NaN or ""). A Series or list of
        such cells is used as it is.
    image_root : str or path-like, default=None
        Folder that relative image paths are resolved against.
    max_side : int, default=336
        Longer side, in pixels, of the image the pixel measures are computed
        on. The default is the side of the thumbnails shipped with
        :func:`skrouter.datasets.load_math_vision`, so that features of the
        thumbnails and of the full-size images are on the same scale.
    size_columns : tuple of 3 str or None, \
            default=("image_width", "image_height", "image_bytes")
        Columns of ``X`` with the width, height and encoded bytes of the
        original image. When ``X`` has all three, a row's ``width``,
        ``height``, ``aspect_ratio``, ``megapixels`` and ``bytes_per_pixel``
        come from them in place of the file read, which is how the shipped
        thumbnails of MATH-Vision keep the size of the original images. Rows
        whose values are missing or not positive use the file. None always
        uses the file.
    on_image_error : {"raise", "missing"}, default="raise"
        What to do with an image that is missing on disk or cannot be
        decoded: raise :class:`ImageReadError` naming the row and the path, or
        treat the image as missing.
    n_jobs : int or None, default=None
        Number of threads that read and measure images. None means 1, and -1
        means all processors. On a shared 2-CPU machine, 2 threads measured
        the shipped thumbnails at 860 images/s against 560 for 1, but were
        no faster on full-size images (``benchmarks/bench_image_stats.py``).

    Attributes
    ----------
    n_features_in_ : int
        Number of columns of ``X`` during ``fit`` (1 for a Series or list).
    feature_names_in_ : ndarray of shape (n_features,)
        Column names of ``X`` during ``fit``, when they are all strings.

    See Also
    --------
    CLIPFeaturizer : Learned image embeddings.
    make_offline_featurizer : These measures with sentence embeddings.

    Notes
    -----
    Images are read through the same code as :class:`CLIPFeaturizer`:
    palette, grayscale, 16-bit and CMYK images are converted to RGB, and
    transparent pixels become white before they are measured.

    The measures depend on ``max_side``: ``edge_density`` counts more edges
    at a smaller scale, where strokes are closer together.

    Examples
    --------
    >>> import pandas as pd
    >>> from PIL import Image, ImageDraw
    >>> from skrouter.features import ImageStatsFeaturizer
    >>> image = Image.new("RGB", (200, 100), "white")
    >>> ImageDraw.Draw(image).rectangle((50, 25, 149, 74), fill="black")
    >>> queries = pd.DataFrame({"image": [image, None]})
    >>> features = ImageStatsFeaturizer().fit_transform(queries)
    >>> ImageStatsFeaturizer().get_feature_names_out()[[5, 6, 7, 8]].tolist()
    ['entropy', 'edge_density', 'ink_share', 'n_colors']
    >>> features[0].round(4).tolist()
    [200.0, 100.0, 2.0, 0.02, 0.0, 0.8113, 0.0152, 0.25, 2.0, 1.0]
    >>> features[1].tolist()
    [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    """

    def __init__(
        self,
        image_column="image",
        image_root=None,
        max_side=336,
        size_columns=("image_width", "image_height", "image_bytes"),
        on_image_error="raise",
        n_jobs=None,
    ):
        self.image_column = image_column
        self.image_root = image_root
        self.max_side = max_side
        self.size_columns = size_columns
        self.on_image_error = on_image_error
        self.n_jobs = n_jobs

    # -- scikit-learn API ---------------------------------------------------

    def fit(self, X, y=None):
        """Check the parameters and the input, and record its columns.

        Parameters
        ----------
        X : pandas.DataFrame, pandas.Series or list
            Queries with the column ``image_column``, or the image cells.
        y : None
            Ignored.

        Returns
        -------
        self : ImageStatsFeaturizer
            The fitted featurizer.
        """
        self._validate_params()
        self._cells(X)
        if hasattr(X, "columns"):
            self.n_features_in_ = X.shape[1]
            if all(isinstance(column, str) for column in X.columns):
                self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        else:
            self.n_features_in_ = 1
        return self

    def transform(self, X):
        """Measure each image.

        Parameters
        ----------
        X : pandas.DataFrame, pandas.Series or list
            Queries with the column ``image_column``, or the image cells.

        Returns
        -------
        features : ndarray of shape (n_queries, 10), float64
            Columns as named by ``get_feature_names_out``.

        Raises
        ------
        ImageReadError
            If an image cannot be read and ``on_image_error="raise"``.
        """
        self._validate_params()
        cells, rows = self._cells(X)
        known_sizes = self._known_sizes(X, len(cells))

        n_jobs = 1 if self.n_jobs is None else self.n_jobs
        n_chunks = 1 if n_jobs == 1 else 8 * max(1, abs(n_jobs))
        chunks = np.array_split(np.arange(len(cells)), min(n_chunks, len(cells)))
        parts = Parallel(n_jobs=n_jobs, prefer="threads")(
            delayed(self._measure_rows)(cells, rows, known_sizes, chunk)
            for chunk in chunks
        )
        return np.concatenate(parts, axis=0)

    def get_feature_names_out(self, input_features=None):
        """Return the output column names, ``width`` to ``has_image``.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Ignored. It is accepted for API consistency.

        Returns
        -------
        feature_names_out : ndarray of str objects
        """
        return np.asarray(FEATURE_NAMES, dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        return tags

    # -- parameters and input -----------------------------------------------

    def _validate_params(self):
        if not isinstance(self.image_column, (str, numbers.Integral)):
            raise ValueError(
                f"Invalid image_column={self.image_column!r}: expected the name "
                "of the image column of X."
            )
        if (
            not isinstance(self.max_side, numbers.Integral)
            or isinstance(self.max_side, bool)
            or self.max_side < 8
        ):
            raise ValueError(
                f"Invalid max_side={self.max_side!r}: expected an int >= 8 (pixels)."
            )
        if self.size_columns is not None and (
            isinstance(self.size_columns, str) or len(self.size_columns) != 3
        ):
            raise ValueError(
                f"Invalid size_columns={self.size_columns!r}: expected None or "
                "three column names (width, height, encoded bytes)."
            )
        if self.on_image_error not in ("raise", "missing"):
            raise ValueError(
                f"Invalid on_image_error={self.on_image_error!r}: expected "
                "'raise' or 'missing'."
            )
        if self.n_jobs is not None and (
            not isinstance(self.n_jobs, numbers.Integral) or self.n_jobs == 0
        ):
            raise ValueError(
                f"Invalid n_jobs={self.n_jobs!r}: expected None or a non-zero int."
            )

    def _cells(self, X):
        """Return the image cells of ``X`` as a list, and their row labels."""
        if hasattr(X, "columns"):
            if self.image_column not in X.columns:
                raise ValueError(
                    f"Column image_column={self.image_column!r} not found in X, "
                    f"which has the columns {list(X.columns)}."
                )
            cells, rows = X[self.image_column].tolist(), list(X.index)
        elif hasattr(X, "index") and hasattr(X, "tolist"):
            cells, rows = X.tolist(), list(X.index)
        elif isinstance(X, (list, tuple)) or (
            isinstance(X, np.ndarray) and X.ndim == 1
        ):
            cells, rows = list(X), list(range(len(X)))
        else:
            raise TypeError(
                f"Invalid X: got {type(X).__name__}; expected a DataFrame with "
                f"the column image_column={self.image_column!r}, a Series or a "
                "list of image cells."
            )

        if not cells:
            raise ValueError(
                "X has 0 rows; ImageStatsFeaturizer needs at least one row."
            )
        for cell, row in zip(cells, rows):
            if not _is_image_cell(cell):
                raise TypeError(
                    f"Invalid image cell in row {row!r}: got {type(cell).__name__}; "
                    "expected a path, a PIL.Image.Image, encoded bytes, a "
                    "mapping with 'bytes' or 'path', or a missing value."
                )
        return cells, rows

    def _known_sizes(self, X, n_rows):
        """Return (width, height, bytes) per row from ``size_columns``, or None.

        Rows whose values are missing or not positive are NaN.
        """
        if self.size_columns is None or not hasattr(X, "columns"):
            return None
        if not all(column in X.columns for column in self.size_columns):
            return None
        import pandas as pd

        sizes = np.column_stack(
            [
                pd.to_numeric(X[column], errors="coerce").to_numpy(dtype=np.float64)
                for column in self.size_columns
            ]
        )
        sizes[~(sizes > 0).all(axis=1)] = np.nan
        return sizes

    # -- measuring ----------------------------------------------------------

    def _measure_rows(self, cells, rows, known_sizes, positions):
        features = np.zeros((len(positions), len(FEATURE_NAMES)))
        for slot, position in enumerate(positions):
            known = None if known_sizes is None else known_sizes[position]
            features[slot] = self._measure(cells[position], rows[position], known)
        return features

    def _measure(self, cell, row, known_size):
        """Return the feature row of one image cell."""
        try:
            source, _ = read_image_source(cell, self.image_root, row)
            if source is None:
                return np.zeros(len(FEATURE_NAMES))
            image = load_image(
                cell, self.image_root, row, max_side=self.max_side, source=source
            )
        except ImageReadError as exc:
            if self.on_image_error == "missing":
                return np.zeros(len(FEATURE_NAMES))
            raise ImageReadError(
                f"{exc} Pass on_image_error='missing' to treat unreadable "
                "images as missing."
            ) from exc

        if known_size is not None and not np.isnan(known_size).any():
            width, height, n_bytes = known_size
        else:
            width, height, n_bytes = _original_size(source)
        return np.array(
            [
                *_size_features(width, height, n_bytes),
                *_pixel_stats(image),
                1.0,
            ]
        )


def _is_image_cell(cell):
    from PIL import Image

    return is_missing(cell) or isinstance(
        cell, (str, os.PathLike, bytes, bytearray, memoryview, Mapping, Image.Image)
    )
