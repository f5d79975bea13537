"""MATH-Vision: 3,040 competition math problems with images, 15 model setups."""

import json

import numpy as np
import pandas as pd
from PIL import Image
from sklearn.utils import Bunch

from .._outcomes import make_outcomes
from ._base import EMBEDDED_DATA_DIR, _check_choice, _dataset_dir, _resolve_data_home
from ._costs import _estimate_costs, _models_table, _text_tokens

# Setup names are the output file names. The ``model`` field inside the files
# is shared by a setup and its chain-of-thought variant, so it cannot name them.
SETUPS = [
    "ChatGPT3.5-CoT (Text+Image Caption)",
    "GPT4-CoT (Text Only)",
    "Gemini-Pro",
    "Gemini-Pro-CoT",
    "Qwen-VL-Max",
    "Qwen-VL-Max-CoT",
    "Qwen-VL-Plus",
    "InternLM-XComposer2-VL",
    "InternLM-XComposer2-VL-CoT",
    "LLaVA-v1.5-7B",
    "LLaVA-v1.5-13B",
    "ShareGPT4V-7B",
    "ShareGPT4V-13B",
    "SPHINX-v2",
    "SPHINX-MoE",
]

EMBEDDED_DIR = EMBEDDED_DATA_DIR / "math_vision"
EMBEDDED_TABLE = EMBEDDED_DIR / "math_vision.csv.gz"
EMBEDDED_IMAGES = EMBEDDED_DIR / "images"

_PROBLEM_COLUMNS = [
    "id",
    "question",
    "options",
    "answer",
    "level",
    "subject",
    "testmini",
    "image_width",
    "image_height",
    "image_bytes",
]

DESCR = """\
MATH-Vision (MATH-V) routing data
---------------------------------

3,040 competition math problems (MATH-Vision test set: levels 1-5, 16
subjects), each with one image, and the graded answers of 15 model setups.
The 304-problem ``testmini`` subset is flagged in the ``testmini`` column.

Source: MATH-Vision, Wang et al., "Measuring Multimodal Mathematical
Reasoning with MATH-Vision Dataset" (NeurIPS 2024 Datasets and Benchmarks),
https://github.com/mathllm/MATH-V. License: MIT (the LICENSE file shipped
beside the embedded copy).

Quality: the benchmark's own grading, the ``correct`` field of each setup's
output file, as 1 or 0. An empty or unparseable answer was graded incorrect
and counts as 0. Every setup's mean quality equals its published accuracy.
Models are named by setup (output file name); a setup and its
chain-of-thought ("-CoT") variant are the same model with another prompt.

Cost (USD) is an estimate, because the benchmark records none:
input_tokens * input_price + output_tokens * output_price (+ a per-image
price for Gemini Pro Vision). Input tokens: ceil(characters / 4) of the
question and its options, which undercounts each setup's prompt template
because the templates are not recorded, plus the image tokens of the
model family's vision encoder (``models["image_tokens"]``; the text-only
GPT-4 setup has none, and the ChatGPT setup counts an estimated caption
length instead). Output tokens: ceil(characters / 4) of the setup's own
response. Prices: list prices of the time for API models, and for open
models the hosting price of the nearest size in the VL-RouterBench price
list. ``models`` names the source of every number and flags each estimate
(Qwen-VL-Max and Qwen-VL-Plus prices, the Bard-like Gemini image price,
parameter counts not in a model's name, all image token counts).

{images}
"""

_IMAGES_FULL = """\
Images: the original files under data_home (``image`` column)."""

_IMAGES_THUMBNAIL = """\
Images: thumbnails shipped in the package (longest side 336 px, JPEG
quality 85). Image features computed on them describe the thumbnail; the
columns ``image_width``, ``image_height`` and ``image_bytes`` keep the size
of the original image. Full-size images need ``data_home``."""


def load_math_vision(
    data_home=None, *, subset="test", image_size=None, return_X_y=False
):
    """Load the MATH-Vision problems and the outcomes of 15 model setups.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Folder that contains ``math-vision/`` in its upstream layout
        (``data/test.jsonl``, ``images/``, ``outputs/``). By default the
        environment variable ``SKROUTER_DATA``, else the copy shipped in the
        package (all 3,040 problems, thumbnails for images, no response
        texts).
    subset : {"test", "testmini"}, default="test"
        All 3,040 problems, or the 304-problem ``testmini`` subset.
    image_size : {"full", "thumbnail"} or None, default=None
        Which image file the ``image`` column points to. ``None`` gives the
        original images when reading ``data_home`` and the thumbnails for the
        shipped copy, which has no full-size images.
    return_X_y : bool, default=False
        If True, return ``(X, y)`` instead of a Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        X : DataFrame of shape (n_problems, 12)
            ``id``, ``question`` (with ``<image1>`` markers), ``image``
            (absolute path of the image file), ``options`` (list, empty for
            free-form questions), ``has_options``, ``answer``, ``level``
            (1-5), ``subject``, ``testmini``, and the original image's
            ``image_width``, ``image_height`` (pixels) and ``image_bytes``.
        y : DataFrame of shape (n_problems, 30)
            Outcomes: ``("quality", setup)`` is 1 for a correct answer, else
            0; ``("cost", setup)`` is the estimated cost in USD.
        models : DataFrame of shape (15, 14)
            Per setup: display name, provider, parameter count, prices, image
            token count, the source of each and whether it is an estimate.
        DESCR : str
            Source, license and how quality and cost were obtained.
    (X, y) : tuple of DataFrames
        If ``return_X_y`` is True.

    Raises
    ------
    FileNotFoundError
        If ``data_home`` or a file it must contain does not exist.
    ValueError
        If ``subset`` or ``image_size`` is not an allowed value, or if
        ``image_size="full"`` is requested from the shipped copy.

    Examples
    --------
    >>> from skrouter.datasets import load_math_vision
    >>> data = load_math_vision()
    >>> data.X.shape, data.y.shape
    ((3040, 12), (3040, 30))
    >>> float(data.y["quality"]["Gemini-Pro"].mean().round(4))
    0.1766
    """
    _check_choice(subset, "subset", ("test", "testmini"))
    _check_choice(image_size, "image_size", (None, "full", "thumbnail"))
    if not isinstance(return_X_y, (bool, np.bool_)):
        raise TypeError(f"return_X_y must be a bool; got {return_X_y!r}.")

    home, embedded = _resolve_data_home(data_home)
    if image_size is None:
        image_size = "thumbnail" if embedded else "full"
    if embedded and image_size == "full":
        raise ValueError(
            "image_size='full' needs the original images: pass data_home (or set "
            "SKROUTER_DATA) to the folder that contains math-vision/. The copy "
            "shipped in the package has thumbnails only (image_size='thumbnail')."
        )

    if embedded:
        problems, correct, output_tokens = _read_embedded()
    else:
        problems, correct, output_tokens = _read_source(
            _dataset_dir(home, "math-vision")
        )
        if image_size == "full":
            images_dir = home / "math-vision" / "images"
            problems["image"] = [
                str(images_dir / f"{pid}.jpg") for pid in problems["id"]
            ]
    if image_size == "thumbnail":
        _check_thumbnails()
        problems["image"] = [
            str(EMBEDDED_IMAGES / f"{pid}.jpg") for pid in problems["id"]
        ]

    if subset == "testmini":
        keep = problems["testmini"].to_numpy()
        problems = problems[keep].reset_index(drop=True)
        correct = correct[keep].reset_index(drop=True)
        output_tokens = output_tokens[keep].reset_index(drop=True)

    models = _models_table("math_vision", SETUPS)
    input_tokens = _text_tokens(_prompt_texts(problems))
    n_images = np.ones(len(problems))
    cost = _estimate_costs(input_tokens, output_tokens.to_numpy(), n_images, models)
    y = make_outcomes(correct.to_numpy(dtype=np.float64), cost, models=SETUPS)

    X = problems[
        [
            "id",
            "question",
            "image",
            "options",
            "has_options",
            "answer",
            "level",
            "subject",
            "testmini",
            "image_width",
            "image_height",
            "image_bytes",
        ]
    ]
    if return_X_y:
        return X, y
    images = _IMAGES_THUMBNAIL if image_size == "thumbnail" else _IMAGES_FULL
    return Bunch(X=X, y=y, models=models, DESCR=DESCR.format(images=images))


def _prompt_texts(problems):
    """Return the text counted as each problem's prompt: question and options."""
    options = problems["options"].map(lambda values: "\n".join(map(str, values)))
    return (problems["question"] + "\n" + options).str.rstrip("\n")


def _read_source(root):
    """Read problems, correctness and response token counts from upstream files.

    Returns the problems (with original image sizes), then two DataFrames of
    shape (n_problems, n_setups): ``correct`` as 1.0/0.0 (NaN where a setup
    has no line for a problem) and the response token counts.
    """
    problems = _read_jsonl(root / "data" / "test.jsonl")
    problems["id"] = problems["id"].astype(str)
    testmini = _read_jsonl(root / "data" / "testmini.jsonl")
    problems["testmini"] = problems["id"].isin(testmini["id"].astype(str))
    problems["options"] = problems["options"].map(lambda values: list(values or []))
    problems["has_options"] = problems["options"].map(len) > 0
    problems["level"] = problems["level"].astype(np.int64)

    sizes = [_image_size(root / path) for path in problems["image"]]
    problems["image_width"] = [size[0] for size in sizes]
    problems["image_height"] = [size[1] for size in sizes]
    problems["image_bytes"] = [size[2] for size in sizes]

    correct = {}
    output_tokens = {}
    for setup in SETUPS:
        answers = _read_setup(root, setup)
        answered = problems["id"].isin(answers.index).to_numpy()
        answers = answers.reindex(problems["id"])
        # A line without `correct: true` is a graded wrong answer; a problem
        # with no line at all is a missing outcome.
        graded = (answers["correct"] == True).to_numpy(dtype=np.float64)  # noqa: E712
        correct[setup] = np.where(answered, graded, np.nan)
        output_tokens[setup] = _text_tokens(answers["response"].to_numpy())
    correct = pd.DataFrame(correct, columns=SETUPS)
    output_tokens = pd.DataFrame(output_tokens, columns=SETUPS)
    return problems, correct, output_tokens


def _read_setup(root, setup):
    matches = sorted((root / "outputs").glob(f"*/*/{_glob_escape(setup)}.jsonl"))
    if not matches:
        raise FileNotFoundError(
            f"No output file {setup + '.jsonl'!r} under {str(root / 'outputs')!r}; "
            "the MATH-Vision folder must keep the upstream layout "
            "outputs/<open-source|closed-source>/<family>/<setup>.jsonl."
        )
    answers = _read_jsonl(matches[0])
    answers["id"] = answers["id"].astype(str)
    duplicated = answers["id"].duplicated()
    if duplicated.any():
        first = answers["id"][duplicated].iloc[0]
        raise ValueError(
            f"{str(matches[0])!r} has more than one line for problem {first!r}; "
            "each problem must have one line."
        )
    return answers.set_index("id")[["response", "correct"]]


def _read_jsonl(path):
    if not path.is_file():
        raise FileNotFoundError(f"Required file {str(path)!r} not found.")
    with open(path, encoding="utf-8") as file:
        rows = [json.loads(line) for line in file if line.strip()]
    return pd.DataFrame(rows)


def _glob_escape(name):
    return name.replace("[", "[[]").replace("*", "[*]").replace("?", "[?]")


def _image_size(path):
    """Return (width, height, bytes) of an image, reading its header only."""
    with Image.open(path) as image:
        width, height = image.size
    return width, height, path.stat().st_size


def _read_embedded():
    if not EMBEDDED_TABLE.is_file():
        raise FileNotFoundError(
            f"The MATH-Vision copy shipped in the package is missing "
            f"({str(EMBEDDED_TABLE)!r}). Reinstall skrouter, or pass data_home."
        )
    table = pd.read_csv(
        EMBEDDED_TABLE, dtype={"id": str, "answer": str}, keep_default_na=False
    )
    problems = table[_PROBLEM_COLUMNS].copy()
    problems["options"] = problems["options"].map(json.loads)
    problems["has_options"] = problems["options"].map(len) > 0
    problems["testmini"] = problems["testmini"].astype(bool)
    correct = table[[f"correct|{setup}" for setup in SETUPS]].replace("", np.nan)
    correct = correct.astype(np.float64)
    correct.columns = SETUPS
    output_tokens = table[[f"output_tokens|{setup}" for setup in SETUPS]]
    output_tokens.columns = SETUPS
    return problems, correct, output_tokens.astype(np.int64)


def _check_thumbnails():
    if not EMBEDDED_IMAGES.is_dir():
        raise FileNotFoundError(
            f"The thumbnails shipped in the package are missing "
            f"({str(EMBEDDED_IMAGES)!r}). Reinstall skrouter, or pass data_home "
            "with image_size='full'."
        )


def _to_embedded_table(problems, correct, output_tokens):
    """Return the table that the package ships: no response texts."""
    table = problems[_PROBLEM_COLUMNS].copy()
    table["options"] = table["options"].map(json.dumps)
    table["testmini"] = table["testmini"].astype(int)
    for setup in SETUPS:
        table[f"correct|{setup}"] = correct[setup].astype("Int64")
        table[f"output_tokens|{setup}"] = output_tokens[setup].astype(np.int64)
    return table
