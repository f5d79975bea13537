"""MathVista testmini: 1,000 visual math questions, 14 model setups, no images."""

import ast
import json

import numpy as np
import pandas as pd
from sklearn.utils import Bunch

from .._outcomes import make_outcomes
from ._base import _dataset_dir, _resolve_data_home
from ._costs import _estimate_costs, _models_table, _text_tokens

SETUPS = [
    "bard",
    "chatgpt",
    "chatgpt_2shot_solution_use_ocr",
    "claude",
    "claude_2shot_solution_use_ocr",
    "gpt4",
    "gpt4_2shot_solution_use_ocr",
    "idefics_9b_instruct",
    "instruct_blip2_vicuna_13b",
    "llama_adapter_v2",
    "llava_llama_2_13b",
    "llavar",
    "minigpt4_llama2",
    "mplugowl_7b_ft",
]

_METADATA_COLUMNS = ["source", "category", "task", "context", "grade"]

DESCR = """\
MathVista testmini routing data
-------------------------------

1,000 visual math questions (MathVista testmini) and the graded answers of
14 model setups: Bard (multimodal), ChatGPT, Claude 2 and GPT-4 (text only,
zero-shot, and two-shot with the OCR text and a caption of the image in the
prompt), and seven open multimodal models. The images are not included:
``X`` holds the question, the EasyOCR text of the image (``ocr``) and a
Bard caption (``caption``, empty for the 70 problems without one), with the
original image size as ``image_width`` and ``image_height``.

Source: MathVista, Lu et al., "MathVista: Evaluating Mathematical Reasoning
of Foundation Models in Visual Contexts" (ICLR 2024),
https://github.com/lupantech/MathVista. License: CC BY-SA 4.0.

Quality: the benchmark's ``true_false`` grading as 1 or 0. An answer
without ``true_false`` (two ChatGPT refusals) or an empty response counts
as 0, as in the published scores, which every setup's mean quality equals.

Cost (USD) is an estimate: input_tokens * input_price + output_tokens *
output_price (+ a per-image price for Bard). Input tokens: ceil(characters
/ 4) of the prompt that setup saw (the ``query`` field of its own output
file; two-shot prompts are about five times longer), plus the image tokens
of the model family's vision encoder for the multimodal setups. Output
tokens: ceil(characters / 4) of the setup's own response (0 when empty).
Prices: list prices of the time for API models; Bard has none and takes
Gemini Pro Vision's price (an estimate); open models take the hosting price
of the nearest size in the VL-RouterBench price list (estimates).
``models`` names the source of every number and flags each estimate.
"""


def load_mathvista(data_home=None, *, return_X_y=False):
    """Load MathVista testmini and the outcomes of 14 model setups.

    This data set is not shipped in the package.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Folder that contains ``mathvista/`` in its upstream layout
        (``data/testmini.json``, ``data/texts/``, ``results/``). By default
        the environment variable ``SKROUTER_DATA``.
    return_X_y : bool, default=False
        If True, return ``(X, y)`` instead of a Bunch.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        X : DataFrame of shape (1000, 17)
            ``pid``, ``question``, ``ocr`` (detected text, joined by spaces),
            ``caption``, ``choices`` (list, empty for free-form questions),
            ``answer``, ``question_type``, ``answer_type``, ``unit``,
            ``precision``, ``image_width``, ``image_height`` and the
            metadata ``source``, ``category``, ``task``, ``context``,
            ``grade``.
        y : DataFrame of shape (1000, 28)
            Outcomes: quality 1 for a correct answer, else 0, and the
            estimated cost in USD.
        models : DataFrame of shape (14, 14)
            Per setup: display name, provider, parameter count, prices, image
            token count, the source of each and whether it is an estimate.
        DESCR : str
            Source, license and how quality and cost were obtained.
    (X, y) : tuple of DataFrames
        If ``return_X_y`` is True.

    Raises
    ------
    FileNotFoundError
        If no data folder is given (by argument or ``SKROUTER_DATA``) or a
        file it must contain does not exist.

    Examples
    --------
    >>> from skrouter.datasets import load_mathvista
    >>> data = load_mathvista("path/to/data")  # doctest: +SKIP
    >>> data.y["quality"]["gpt4"].mean()  # doctest: +SKIP
    0.261
    """
    if not isinstance(return_X_y, (bool, np.bool_)):
        raise TypeError(f"return_X_y must be a bool; got {return_X_y!r}.")
    home, embedded = _resolve_data_home(data_home)
    if embedded:
        raise FileNotFoundError(
            "MathVista is not shipped in the package: pass data_home (or set "
            "SKROUTER_DATA) to the folder that contains mathvista/."
        )
    root = _dataset_dir(home, "mathvista")

    problems = _read_json(root / "data" / "testmini.json")
    pids = list(problems)
    X = _problems_frame(problems, pids, root)

    correct = {}
    input_tokens = {}
    output_tokens = {}
    for setup in SETUPS:
        outputs = _read_outputs(root, setup)
        rows = [outputs.get(pid) for pid in pids]
        answered = np.array([row is not None for row in rows])
        graded = np.array(
            [row is not None and row.get("true_false") is True for row in rows]
        )
        # A problem absent from the file is missing; an answer without a
        # `true_false` grade was scored wrong upstream.
        correct[setup] = np.where(answered, graded.astype(np.float64), np.nan)
        input_tokens[setup] = _text_tokens([(row or {}).get("query") for row in rows])
        output_tokens[setup] = _text_tokens(
            [(row or {}).get("response") for row in rows]
        )

    models = _models_table("mathvista", SETUPS)
    cost = _estimate_costs(
        pd.DataFrame(input_tokens, columns=SETUPS).to_numpy(),
        pd.DataFrame(output_tokens, columns=SETUPS).to_numpy(),
        np.ones(len(pids)),
        models,
    )
    quality = pd.DataFrame(correct, columns=SETUPS).to_numpy()
    y = make_outcomes(quality, cost, models=SETUPS)

    if return_X_y:
        return X, y
    return Bunch(X=X, y=y, models=models, DESCR=DESCR)


def _problems_frame(problems, pids, root):
    texts = root / "data" / "texts"
    ocr = _read_json(texts / "ocrs_easyocr.json")["texts"]
    captions = _read_json(texts / "captions_bard.json")["texts"]

    rows = []
    for pid in pids:
        problem = problems[pid]
        metadata = problem.get("metadata") or {}
        row = {
            "pid": str(pid),
            "question": problem["question"],
            "ocr": _ocr_text(ocr.get(pid)),
            "caption": captions.get(pid) or "",
            "choices": list(problem.get("choices") or []),
            "answer": problem.get("answer"),
            "question_type": problem.get("question_type"),
            "answer_type": problem.get("answer_type"),
            "unit": problem.get("unit"),
            "precision": problem.get("precision"),
            "image_width": metadata.get("img_width"),
            "image_height": metadata.get("img_height"),
        }
        for name in _METADATA_COLUMNS:
            row[name] = metadata.get(name)
        rows.append(row)
    return pd.DataFrame(rows)


def _ocr_text(value):
    """Join the texts of EasyOCR's (box, text, confidence) detections."""
    if not value:
        return ""
    detections = ast.literal_eval(value) if isinstance(value, str) else value
    return " ".join(str(detection[1]) for detection in detections)


def _read_outputs(root, setup):
    matches = sorted((root / "results").glob(f"*/output_{setup}.json"))
    if not matches:
        raise FileNotFoundError(
            f"No output file 'output_{setup}.json' under {str(root / 'results')!r}; "
            "the MathVista folder must keep the upstream layout "
            "results/<family>/output_<setup>.json."
        )
    return _read_json(matches[0])


def _read_json(path):
    if not path.is_file():
        raise FileNotFoundError(f"Required file {str(path)!r} not found.")
    with open(path, encoding="utf-8") as file:
        return json.load(file)
