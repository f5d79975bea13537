"""Read and write MMR-Bench's wide CSV of per-query outcomes.

One row per query: ``question``, the image as ``img_path`` or
``dataset_idx``, and for each model M the columns ``M_correct`` (quality)
and ``M_cost`` (USD). Any other column is kept with the queries.
"""

import os
from pathlib import Path

import numpy as np
import pandas as pd

from .._outcomes import check_outcomes, make_outcomes
from .._params import warn

QUALITY_SUFFIX = "_correct"
COST_SUFFIX = "_cost"
IMAGE_EXTENSIONS = (".jpg", ".png", ".jpeg", ".webp")

# Image folder of each data set name that appears in ``dataset_idx``.
# MMR-Bench renames SEEDBench2_Plus to SEEDBenchv2Plus; the *_MINI and
# Vision_Only names are VLMEvalKit's names of subsets stored in the same
# folders. Any other name is its own folder (MathVerse, MathVision,
# MathVista, MMStar, OCRBench, RealWorldQA).
DATASET_FOLDERS = {
    "SEEDBench2_Plus": "SEEDBenchv2Plus",
    "MathVista_MINI": "MathVista",
    "MathVision_MINI": "MathVision",
    "MathVerse_MINI_Vision_Only": "MathVerse",
}


def read_mmr_csv(path, image_root=None):
    """Read queries and outcomes from a CSV in MMR-Bench's wide format.

    Parameters
    ----------
    path : str or path-like
        The CSV file. It must have a ``question`` column, an ``img_path`` or
        ``dataset_idx`` column, and at least one model M with both an
        ``M_correct`` and an ``M_cost`` column. A ``_correct`` or ``_cost``
        column without its partner is not a model and stays in ``X``.
    image_root : str or path-like, default=None
        Folder of the images. A relative ``img_path`` is joined to it. A
        ``dataset_idx`` such as ``SEEDBench2_Plus_0`` becomes
        ``<image_root>/SEEDBenchv2Plus/0.<ext>``, trying the extensions
        jpg, png, jpeg and webp in turn (see ``DATASET_FOLDERS`` for the
        folder names). Without it, ``img_path`` is kept as written and
        ``dataset_idx`` gives no image path.

    Returns
    -------
    X : DataFrame of shape (n_queries, n_columns)
        ``question``, ``image`` (path of the image, missing where it is
        unknown or not found) and
        every other non-outcome column of the file.
    y : DataFrame of shape (n_queries, 2 * n_models)
        Outcomes: ``M_correct`` as quality, ``M_cost`` as cost; an empty
        cell is a missing outcome (NaN).

    Raises
    ------
    FileNotFoundError
        If ``path`` or ``image_root`` does not exist.
    ValueError
        If a required column is missing, no model has both outcome columns,
        or an outcome is out of range.

    See Also
    --------
    to_mmr_csv : Write queries and outcomes in this format.

    Examples
    --------
    >>> import tempfile, os
    >>> from skrouter.datasets import load_math_vision, read_mmr_csv, to_mmr_csv
    >>> X, y = load_math_vision(return_X_y=True)
    >>> path = os.path.join(tempfile.mkdtemp(), "math_vision.csv")
    >>> to_mmr_csv(X[["question", "image"]].head(5), y.head(5), path)
    >>> X_read, y_read = read_mmr_csv(path)
    >>> y_read.shape
    (5, 30)
    """
    path = _check_path(path, "path")
    if not path.is_file():
        raise FileNotFoundError(
            f"path={str(path)!r} is not an existing file; pass the MMR-Bench CSV."
        )
    if image_root is not None:
        image_root = _check_path(image_root, "image_root")
        if not image_root.is_dir():
            raise FileNotFoundError(
                f"image_root={str(image_root)!r} is not an existing folder; pass "
                "the folder that holds the image folders, or None."
            )

    table = pd.read_csv(path)
    models = _model_names(table.columns)
    if not models:
        raise ValueError(
            f"{str(path)!r} has no outcome columns: a model M needs both an "
            f"'M{QUALITY_SUFFIX}' and an 'M{COST_SUFFIX}' column. Columns found: "
            f"{list(table.columns)[:10]}."
        )
    if "question" not in table.columns:
        raise ValueError(
            f"{str(path)!r} has no 'question' column; MMR-Bench CSVs need one."
        )
    if "img_path" not in table.columns and "dataset_idx" not in table.columns:
        raise ValueError(
            f"{str(path)!r} has neither an 'img_path' nor a 'dataset_idx' column; "
            "one of them must locate each query's image."
        )

    quality = table[[name + QUALITY_SUFFIX for name in models]]
    cost = table[[name + COST_SUFFIX for name in models]]
    try:
        y = make_outcomes(_numeric(quality, path), _numeric(cost, path), models=models)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"Invalid outcomes in {str(path)!r}: {exc}") from exc

    outcome_columns = set(quality.columns) | set(cost.columns)
    X = table[[name for name in table.columns if name not in outcome_columns]].copy()
    X.insert(1, "image", _image_paths(X, image_root))
    X = X.drop(columns=["img_path"], errors="ignore")
    return X, y


def to_mmr_csv(X, y, path):
    """Write queries and outcomes as a CSV in MMR-Bench's wide format.

    Parameters
    ----------
    X : DataFrame of shape (n_queries, n_columns)
        Queries with a ``question`` column. An ``image`` column is written
        as ``img_path``; other columns are written as they are (lists as
        their text form).
    y : DataFrame of shape (n_queries, 2 * n_models)
        Outcomes table. Each model M gets ``M_correct`` and ``M_cost``;
        missing outcomes are written as empty cells.
    path : str or path-like
        The CSV file to write. Its folder must exist.

    Raises
    ------
    TypeError
        If ``X`` is not a DataFrame.
    ValueError
        If ``X`` has no ``question`` column, ``X`` and ``y`` differ in length,
        or a column name would clash with an outcome column.
    FileNotFoundError
        If the folder of ``path`` does not exist.

    See Also
    --------
    read_mmr_csv : Read this format.

    Examples
    --------
    >>> import tempfile, os
    >>> from skrouter.datasets import load_math_vision, to_mmr_csv
    >>> X, y = load_math_vision(return_X_y=True)
    >>> path = os.path.join(tempfile.mkdtemp(), "outcomes.csv")
    >>> to_mmr_csv(X[["question", "image"]], y, path)
    >>> open(path).readline().split(",")[:3]
    ['question', 'img_path', 'ChatGPT3.5-CoT (Text+Image Caption)_correct']
    """
    if not isinstance(X, pd.DataFrame):
        raise TypeError(
            f"X must be a DataFrame with a 'question' column; got {type(X).__name__}."
        )
    if "question" not in X.columns:
        raise ValueError(
            f"X must have a 'question' column; got columns {list(X.columns)[:10]}."
        )
    y = check_outcomes(y)
    if len(X) != len(y):
        raise ValueError(
            f"X and y must have the same number of queries; got {len(X)} and {len(y)}."
        )
    path = _check_path(path, "path")
    if not path.parent.is_dir():
        raise FileNotFoundError(
            f"The folder of path={str(path)!r} does not exist; create it first."
        )

    queries = X.rename(columns={"image": "img_path"}).reset_index(drop=True)
    models = list(y["quality"].columns)
    outcomes = {}
    for name in models:
        outcomes[f"{name}{QUALITY_SUFFIX}"] = y["quality"][name].to_numpy()
        outcomes[f"{name}{COST_SUFFIX}"] = y["cost"][name].to_numpy()
    clashes = sorted(set(queries.columns) & set(outcomes))
    if clashes:
        raise ValueError(
            f"X has columns {clashes} that would be read back as outcome columns; "
            "rename them before writing."
        )
    table = pd.concat([queries, pd.DataFrame(outcomes)], axis=1)
    table.to_csv(path, index=False)


def _model_names(columns):
    columns = [str(name) for name in columns]
    names = [
        name[: -len(QUALITY_SUFFIX)]
        for name in columns
        if name.endswith(QUALITY_SUFFIX) and len(name) > len(QUALITY_SUFFIX)
    ]
    return [name for name in names if name + COST_SUFFIX in columns]


def _numeric(block, path):
    try:
        return block.astype(np.float64)
    except (TypeError, ValueError):
        bad = [
            name
            for name in block.columns
            if not pd.api.types.is_numeric_dtype(block[name])
        ]
        raise ValueError(
            f"{str(path)!r} has non-numeric outcome columns {bad}; they must hold "
            "numbers, with empty cells for missing outcomes."
        ) from None


def _image_paths(X, image_root):
    """Return each query's image path, None where it cannot be found."""
    if "img_path" in X.columns:
        paths = X["img_path"].astype(object)
        if image_root is None:
            return paths.where(paths.notna(), None).to_numpy()
        return np.array(
            [
                None if pd.isna(value) else str(image_root / str(value))
                for value in paths
            ],
            dtype=object,
        )

    if image_root is None:
        return np.full(len(X), None, dtype=object)
    parts = X["dataset_idx"].astype(str).str.rsplit("_", n=1, expand=True)
    if parts.shape[1] != 2 or parts[1].isna().any():
        bad = X["dataset_idx"][parts.iloc[:, -1].isna()].iloc[0]
        raise ValueError(
            f"dataset_idx must look like '<dataset>_<index>', e.g. "
            f"'SEEDBench2_Plus_0'; got {bad!r}."
        )
    folders = parts[0].map(lambda name: DATASET_FOLDERS.get(name, name))
    stems = [
        str(image_root / folder / index) for folder, index in zip(folders, parts[1])
    ]

    found = np.full(len(stems), None, dtype=object)
    for extension in IMAGE_EXTENSIONS:
        todo = np.flatnonzero([value is None for value in found])
        if len(todo) == 0:
            break
        for i in todo:
            candidate = stems[i] + extension
            if os.path.exists(candidate):
                found[i] = candidate
    missing = [i for i, value in enumerate(found) if value is None]
    if missing:
        warn(
            f"No image found for {len(missing)} of {len(found)} queries under "
            f"image_root={str(image_root)!r} (first: {stems[missing[0]]} with "
            f"extension {'/'.join(IMAGE_EXTENSIONS)}); their image is missing.",
        )
    return found


def _check_path(value, name):
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(
            f"{name} must be a str or path-like object; got {type(value).__name__}."
        )
    return Path(value).expanduser()
