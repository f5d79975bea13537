"""RouterBench rows with the real cost of every call (not shipped)."""

import ast

import numpy as np
import pandas as pd
from sklearn.utils import Bunch

from .._outcomes import make_outcomes
from ._base import _check_choice, _dataset_dir, _resolve_data_home

SUBFOLDER = "routerbench-subset"
TASKS = ["arc_challenge", "mbpp", "winograde"]
COST_SUFFIX = "|total_cost"
PROMPT_SEPARATOR = "\n\n"

DESCR = """\
RouterBench routing data (ARC-Challenge, MBPP, Winogrande)
----------------------------------------------------------

RouterBench rows of three tasks, with the train/test split of the RouterDC
project, answered by 11 models (GPT-4 Turbo, GPT-3.5 Turbo, Claude,
Llama 2, Mixtral, Yi and others).

Source: RouterBench, Hu et al., "RouterBench: A Benchmark for Multi-LLM
Routing System" (2024), as split by RouterDC (Chen et al., NeurIPS 2024).

Quality: RouterBench's grading (1 or 0 on these tasks). Cost: the
``<model>|total_cost`` column, the real USD cost of each call recorded by
RouterBench, not an estimate.

Missing outcomes: a few rows lack some models' quality. Most of them are
one upstream sample split in two rows with the same ``sample_id``: one
observing only gpt-3.5-turbo-1106 (with a two-part prompt, joined here by
a blank line), the other the ten remaining models. They are kept as NaN
outcomes: routers skip them when they learn, and metrics use the complete
rows.
"""


def load_routerbench(data_home=None, split="train", *, return_X_y=False):
    """Load RouterBench rows with the real per-query cost of 11 models.

    This data set is not shipped in the package: pass ``data_home`` or set
    the environment variable ``SKROUTER_DATA``.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Folder that contains
        ``routerbench-subset/datasets/routerbench_zs/<task>_<split>.csv``.
        By default the environment variable ``SKROUTER_DATA``.
    split : {"train", "test"} or None, default="train"
        The provided split to load; ``None`` loads both, one after the other.
    return_X_y : bool, default=False
        If True, return ``(X, y)`` instead of a Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        X : DataFrame of shape (n_rows, 5)
            ``sample_id``, ``prompt`` (text of the Python-list literal, its
            parts joined by a blank line), ``eval_name``, ``task`` (the file's
            task name) and ``split``.
        y : DataFrame of shape (n_rows, 22)
            Outcomes: quality 1 or 0, cost in USD as recorded; NaN where a
            row has no outcome for a model.
        models : DataFrame of shape (11, 1)
            ``cost_source`` per model.
        DESCR : str
            Source and how quality and cost were obtained.
    (X, y) : tuple of DataFrames
        If ``return_X_y`` is True.

    Raises
    ------
    FileNotFoundError
        If no data folder is given (by argument or ``SKROUTER_DATA``), or a
        file it must contain does not exist.
    ValueError
        If ``split`` is not an allowed value, or the files disagree on the
        models.

    Examples
    --------
    >>> from skrouter.datasets import load_routerbench
    >>> data = load_routerbench("path/to/data", split="test")  # doctest: +SKIP
    >>> data.y.shape  # doctest: +SKIP
    (953, 22)
    """
    _check_choice(split, "split", ("train", "test", None))
    if not isinstance(return_X_y, (bool, np.bool_)):
        raise TypeError(f"return_X_y must be a bool; got {return_X_y!r}.")
    home, embedded = _resolve_data_home(data_home)
    if embedded:
        raise FileNotFoundError(
            "RouterBench is not shipped in the package: pass data_home (or set "
            "SKROUTER_DATA) to the folder that contains routerbench-subset/."
        )
    folder = _dataset_dir(home, SUBFOLDER) / "datasets" / "routerbench_zs"

    splits = ["train", "test"] if split is None else [split]
    frames = []
    for split_name in splits:
        for task in TASKS:
            path = folder / f"{task}_{split_name}.csv"
            if not path.is_file():
                raise FileNotFoundError(f"Required file {str(path)!r} not found.")
            frame = pd.read_csv(path, index_col=0)
            frame["task"] = task
            frame["split"] = split_name
            frames.append(frame)

    models = _model_names(frames[0].columns)
    for frame in frames[1:]:
        if _model_names(frame.columns) != models:
            raise ValueError(
                "The RouterBench files name different models; expected "
                f"{models} in every file, got {_model_names(frame.columns)}."
            )
    rows = pd.concat(frames, ignore_index=True)

    X = pd.DataFrame(
        {
            "sample_id": rows["sample_id"].astype(str),
            "prompt": rows["prompt"].map(_prompt_text),
            "eval_name": rows["eval_name"].astype(str),
            "task": rows["task"],
            "split": rows["split"],
        }
    )
    quality = rows[models].to_numpy(dtype=np.float64)
    cost = rows[[name + COST_SUFFIX for name in models]].to_numpy(dtype=np.float64)
    y = make_outcomes(quality, cost, models=models)

    if return_X_y:
        return X, y
    model_table = pd.DataFrame(
        {"cost_source": "recorded by RouterBench (<model>|total_cost), USD"},
        index=pd.Index(models, name="model"),
    )
    return Bunch(X=X, y=y, models=model_table, DESCR=DESCR)


def _model_names(columns):
    """Return the models that have both a quality and a cost column."""
    names = [name for name in columns if f"{name}{COST_SUFFIX}" in columns]
    return names


def _prompt_text(literal):
    """Turn the Python-list literal of a prompt into one text."""
    parts = ast.literal_eval(literal)
    if isinstance(parts, str):
        return parts
    return PROMPT_SEPARATOR.join(str(part) for part in parts)
