"""Per-query costs for benchmarks that record answers but not what they cost.

cost = input_tokens * input_price + output_tokens * output_price
       + n_images * image_price

Token counts are estimates. Text tokens are ``ceil(characters / 4)``, the
usual rule of thumb for English text with byte-pair tokenizers, applied to
the prompt and to the model's own response. Each image adds the number of
tokens that the model family's vision encoder produces (its patch grid, or
the fixed number of query tokens of its resampler), as written per model in
``model_prices.csv``. Models priced per image (Gemini Pro Vision) use the
per-image price instead.

``model_prices.csv`` is the source of truth for every number: it names the
source of each price, parameter count and image token count, and flags each
one that is an estimate.
"""

from pathlib import Path

import numpy as np
import pandas as pd

from ._base import _check_choice

PRICES_PATH = Path(__file__).resolve().parent / "data" / "model_prices.csv"
CHARS_PER_TOKEN = 4

_PRICE_DATASETS = ("math_vision", "mathvista")
_MODEL_COLUMNS = [
    "display_name",
    "provider",
    "params_b",
    "active_params_b",
    "params_b_source",
    "params_b_is_estimate",
    "input_usd_per_1m",
    "output_usd_per_1m",
    "image_usd",
    "price_source",
    "price_is_estimate",
    "image_tokens",
    "image_tokens_source",
    "image_tokens_is_estimate",
]


def load_model_prices(dataset=None):
    """Load the prices and token assumptions behind the estimated costs.

    Parameters
    ----------
    dataset : {"math_vision", "mathvista"} or None, default=None
        Keep the setups of one data set; ``None`` keeps all.

    Returns
    -------
    prices : DataFrame
        One row per setup with the columns ``dataset``, ``setup``,
        ``display_name``, ``provider``, ``params_b`` (total parameters in
        billions, NaN when unknown), ``active_params_b`` (for mixtures of
        experts), ``params_b_source``, ``params_b_is_estimate``,
        ``input_usd_per_1m`` and ``output_usd_per_1m`` (USD per million
        tokens), ``image_usd`` (USD per image for models priced per image,
        else 0), ``price_source``, ``price_is_estimate``, ``image_tokens``
        (tokens counted per input image), ``image_tokens_source`` and
        ``image_tokens_is_estimate``.

    Examples
    --------
    >>> from skrouter.datasets import load_model_prices
    >>> prices = load_model_prices("math_vision")
    >>> len(prices)
    15
    >>> int(prices.set_index("setup").loc["LLaVA-v1.5-7B", "image_tokens"])
    576
    """
    if dataset is not None:
        _check_choice(dataset, "dataset", _PRICE_DATASETS)
    prices = pd.read_csv(PRICES_PATH, keep_default_na=False, na_values=[""])
    if dataset is not None:
        prices = prices[prices["dataset"] == dataset].reset_index(drop=True)
    return prices


def _models_table(dataset, setups):
    """Return the per-model metadata of ``setups``, indexed by setup name."""
    prices = load_model_prices(dataset).set_index("setup")
    missing = [name for name in setups if name not in prices.index]
    if missing:
        raise ValueError(
            f"model_prices.csv has no row for the {dataset} setups {missing}; "
            "rebuild it with scripts/build_embedded_data.py."
        )
    models = prices.loc[list(setups), _MODEL_COLUMNS].copy()
    models.index.name = "model"
    return models


def _text_tokens(texts):
    """Estimate token counts as ceil(characters / 4); a missing text has 0."""
    lengths = pd.Series(texts, dtype="object").fillna("").astype(str).str.len()
    return -(-lengths.to_numpy(dtype=np.int64) // CHARS_PER_TOKEN)


def _estimate_costs(input_tokens, output_tokens, n_images, models):
    """Return the (n_queries, n_models) cost matrix in USD.

    Parameters
    ----------
    input_tokens : ndarray of shape (n_queries,) or (n_queries, n_models)
        Prompt text tokens, shared by every model or per model.
    output_tokens : ndarray of shape (n_queries, n_models)
        Tokens of each model's response.
    n_images : ndarray of shape (n_queries,)
        Images sent with each query, for the models that see images.
    models : DataFrame
        Rows of :func:`load_model_prices`, in the column order of the result.
    """
    input_tokens = np.asarray(input_tokens, dtype=np.float64)
    if input_tokens.ndim == 1:
        input_tokens = input_tokens[:, np.newaxis]
    output_tokens = np.asarray(output_tokens, dtype=np.float64)
    n_images = np.asarray(n_images, dtype=np.float64)[:, np.newaxis]

    image_tokens = models["image_tokens"].to_numpy(dtype=np.float64)
    input_price = models["input_usd_per_1m"].to_numpy(dtype=np.float64) / 1e6
    output_price = models["output_usd_per_1m"].to_numpy(dtype=np.float64) / 1e6
    image_price = models["image_usd"].to_numpy(dtype=np.float64)

    total_input = input_tokens + n_images * image_tokens
    return (
        total_input * input_price
        + output_tokens * output_price
        + n_images * image_price
    )
