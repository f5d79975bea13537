"""Build the data files that skrouter ships in skrouter/datasets/data/.

Writes, from the upstream data sets under ``--data-home``:

- ``model_prices.csv``: prices, parameter counts and image token counts of
  every MATH-Vision and MathVista setup, each with its source and an
  estimate flag. Prices are read here from the tokencost price list and the
  VL-RouterBench price list; after that the CSV is the source of truth.
- ``math_vision/math_vision.csv.gz``: the 3,040 problems, each setup's
  grading (1/0) and response token count (no response texts).
- ``math_vision/images/<id>.jpg``: thumbnails, longest side 336 px, JPEG
  quality 85.
- ``math_vision/LICENSE`` and ``math_vision/README.md`` (MIT license and
  attribution).

Usage::

    python scripts/build_embedded_data.py --data-home PATH [--skip-images]
"""

import argparse
import csv
import json
import math
import shutil
import sys
from pathlib import Path

from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = REPO_ROOT / "skrouter" / "datasets" / "data"
THUMBNAIL_SIDE = 336
THUMBNAIL_QUALITY = 85

TOKENCOST = "tokencost"
VL_ROUTERBENCH = "vl_routerbench"

# Each setup's price comes from ("tokencost", key), the list price of that
# tokencost key, or from ("vl_routerbench", model), the hosting price of that
# open model. PRICE_NOTES below replaces the source text of stated estimates.
GEMINI_VISION = (TOKENCOST, "gemini-pro-vision")
QWEN_VL_PLUS = (TOKENCOST, "openrouter/qwen/qwen-vl-plus")
QWEN_VL_MAX = (VL_ROUTERBENCH, "Qwen2.5-VL-72B-Instruct")
HOSTED_7B = (VL_ROUTERBENCH, "LLaVA-Next-Vicuna-7B")
HOSTED_8B = (VL_ROUTERBENCH, "Qianfan-VL-8B")
HOSTED_12B = (VL_ROUTERBENCH, "Pixtral-12B")
HOSTED_32B = (VL_ROUTERBENCH, "Qwen2.5-VL-32B-Instruct")

ENCODER_336 = (576, "CLIP ViT-L/14 at 336 px: (336/14)^2 = 576 patch tokens")
ENCODER_224 = (256, "CLIP ViT-L/14 at 224 px: (224/14)^2 = 256 patch tokens")
ENCODER_490 = (1225, "CLIP ViT-L/14 at 490 px: (490/14)^2 = 1,225 patch tokens")
ENCODER_QWEN = (
    256,
    "Qwen-VL encoder (ViT-bigG/14 at 448 px, 1,024 patches) compressed to 256 "
    "tokens by its cross-attention adapter; assumed the same for the API models",
)
ENCODER_SPHINX = (
    1280,
    "SPHINX mixed encoders: five 224-px views (one global, four sub-images) x "
    "256 ViT-L/14 patch tokens; a rough count for a multi-encoder design",
)
ENCODER_QFORMER = (32, "EVA ViT-g/14 at 224 px read by a Q-Former of 32 query tokens")
ENCODER_PERCEIVER = (
    64,
    "OpenCLIP ViT-H/14 at 224 px read by a Perceiver resampler of 64 latents",
)
ENCODER_ABSTRACTOR = (
    64,
    "CLIP ViT-L/14 at 224 px read by a visual abstractor of 64 queries",
)
NO_IMAGE = (0, "text-only setup: the model saw no image")
PRICED_PER_IMAGE = (0, "priced per image (image_usd), not per token")

# dataset, setup, display name, provider, (params_b, active, source, estimate),
# price, (image_tokens, source, estimate)
API = (None, None, "not published", False)
SETUPS = [
    (
        "math_vision",
        "ChatGPT3.5-CoT (Text+Image Caption)",
        "GPT-3.5 Turbo (0125), CoT, image caption",
        "OpenAI",
        API,
        (TOKENCOST, "gpt-3.5-turbo-0125"),
        None,
    ),
    (
        "math_vision",
        "GPT4-CoT (Text Only)",
        "GPT-4 Turbo (0125-preview), CoT, text only",
        "OpenAI",
        API,
        (TOKENCOST, "gpt-4-0125-preview"),
        NO_IMAGE + (False,),
    ),
    (
        "math_vision",
        "Gemini-Pro",
        "Gemini Pro Vision",
        "Google",
        API,
        GEMINI_VISION,
        PRICED_PER_IMAGE + (False,),
    ),
    (
        "math_vision",
        "Gemini-Pro-CoT",
        "Gemini Pro Vision, CoT",
        "Google",
        API,
        GEMINI_VISION,
        PRICED_PER_IMAGE + (False,),
    ),
    (
        "math_vision",
        "Qwen-VL-Max",
        "Qwen-VL-Max",
        "Alibaba",
        API,
        QWEN_VL_MAX,
        ENCODER_QWEN + (True,),
    ),
    (
        "math_vision",
        "Qwen-VL-Max-CoT",
        "Qwen-VL-Max, CoT",
        "Alibaba",
        API,
        QWEN_VL_MAX,
        ENCODER_QWEN + (True,),
    ),
    (
        "math_vision",
        "Qwen-VL-Plus",
        "Qwen-VL-Plus",
        "Alibaba",
        API,
        QWEN_VL_PLUS,
        ENCODER_QWEN + (True,),
    ),
    (
        "math_vision",
        "InternLM-XComposer2-VL",
        "InternLM-XComposer2-VL-7B",
        "Shanghai AI Lab",
        (
            7.0,
            None,
            "model card name InternLM-XComposer2-VL-7B (language model size)",
            False,
        ),
        HOSTED_7B,
        ENCODER_490 + (True,),
    ),
    (
        "math_vision",
        "InternLM-XComposer2-VL-CoT",
        "InternLM-XComposer2-VL-7B, CoT",
        "Shanghai AI Lab",
        (
            7.0,
            None,
            "model card name InternLM-XComposer2-VL-7B (language model size)",
            False,
        ),
        HOSTED_7B,
        ENCODER_490 + (True,),
    ),
    (
        "math_vision",
        "LLaVA-v1.5-7B",
        "LLaVA-v1.5-7B",
        "open (LLaVA)",
        (7.0, None, "model name", False),
        HOSTED_7B,
        ENCODER_336 + (True,),
    ),
    (
        "math_vision",
        "LLaVA-v1.5-13B",
        "LLaVA-v1.5-13B",
        "open (LLaVA)",
        (13.0, None, "model name", False),
        HOSTED_12B,
        ENCODER_336 + (True,),
    ),
    (
        "math_vision",
        "ShareGPT4V-7B",
        "ShareGPT4V-7B",
        "open (ShareGPT4V)",
        (7.0, None, "model name", False),
        HOSTED_7B,
        ENCODER_336 + (True,),
    ),
    (
        "math_vision",
        "ShareGPT4V-13B",
        "ShareGPT4V-13B",
        "open (ShareGPT4V)",
        (13.0, None, "model name", False),
        HOSTED_12B,
        ENCODER_336 + (True,),
    ),
    (
        "math_vision",
        "SPHINX-v2",
        "SPHINX-v2-1k",
        "open (SPHINX)",
        (13.0, None, "estimate: LLaMA-2-13B language model", True),
        HOSTED_12B,
        ENCODER_SPHINX + (True,),
    ),
    (
        "math_vision",
        "SPHINX-MoE",
        "SPHINX-MoE",
        "open (SPHINX)",
        (
            46.7,
            12.9,
            "estimate: Mixtral-8x7B language model (46.7B total, 12.9B active)",
            True,
        ),
        HOSTED_32B,
        ENCODER_SPHINX + (True,),
    ),
    (
        "mathvista",
        "bard",
        "Bard",
        "Google",
        API,
        GEMINI_VISION,
        PRICED_PER_IMAGE + (True,),
    ),
    (
        "mathvista",
        "chatgpt",
        "ChatGPT (gpt-3.5-turbo), zero-shot",
        "OpenAI",
        API,
        (TOKENCOST, "gpt-3.5-turbo-0613"),
        NO_IMAGE + (False,),
    ),
    (
        "mathvista",
        "chatgpt_2shot_solution_use_ocr",
        "ChatGPT (gpt-3.5-turbo), 2-shot, OCR and caption",
        "OpenAI",
        API,
        (TOKENCOST, "gpt-3.5-turbo-0613"),
        NO_IMAGE + (False,),
    ),
    (
        "mathvista",
        "claude",
        "Claude 2, zero-shot",
        "Anthropic",
        API,
        (TOKENCOST, "claude-2"),
        NO_IMAGE + (False,),
    ),
    (
        "mathvista",
        "claude_2shot_solution_use_ocr",
        "Claude 2, 2-shot, OCR and caption",
        "Anthropic",
        API,
        (TOKENCOST, "claude-2"),
        NO_IMAGE + (False,),
    ),
    (
        "mathvista",
        "gpt4",
        "GPT-4 (0613), zero-shot",
        "OpenAI",
        API,
        (TOKENCOST, "gpt-4-0613"),
        NO_IMAGE + (False,),
    ),
    (
        "mathvista",
        "gpt4_2shot_solution_use_ocr",
        "GPT-4 (0613), 2-shot, OCR and caption",
        "OpenAI",
        API,
        (TOKENCOST, "gpt-4-0613"),
        NO_IMAGE + (False,),
    ),
    (
        "mathvista",
        "idefics_9b_instruct",
        "IDEFICS-9B-Instruct",
        "open (Hugging Face)",
        (9.0, None, "model name", False),
        HOSTED_8B,
        ENCODER_PERCEIVER + (True,),
    ),
    (
        "mathvista",
        "instruct_blip2_vicuna_13b",
        "InstructBLIP (Vicuna-13B)",
        "open (Salesforce)",
        (13.0, None, "model name (language model size)", False),
        HOSTED_12B,
        ENCODER_QFORMER + (True,),
    ),
    (
        "mathvista",
        "llama_adapter_v2",
        "LLaMA-Adapter-V2 (7B)",
        "open (Shanghai AI Lab)",
        (7.0, None, "estimate: LLaMA-7B language model", True),
        HOSTED_7B,
        ENCODER_224 + (True,),
    ),
    (
        "mathvista",
        "llava_llama_2_13b",
        "LLaVA (LLaMA-2-13B)",
        "open (LLaVA)",
        (13.0, None, "model name", False),
        HOSTED_12B,
        ENCODER_224 + (True,),
    ),
    (
        "mathvista",
        "llavar",
        "LLaVAR (13B)",
        "open (LLaVAR)",
        (13.0, None, "estimate: Vicuna-13B language model", True),
        HOSTED_12B,
        ENCODER_336 + (True,),
    ),
    (
        "mathvista",
        "minigpt4_llama2",
        "MiniGPT-4 (LLaMA-2-7B)",
        "open (MiniGPT-4)",
        (7.0, None, "estimate: LLaMA-2-7B-chat language model", True),
        HOSTED_7B,
        ENCODER_QFORMER + (True,),
    ),
    (
        "mathvista",
        "mplugowl_7b_ft",
        "mPLUG-Owl-7B (fine-tuned)",
        "open (Alibaba DAMO)",
        (7.0, None, "model name", False),
        HOSTED_7B,
        ENCODER_ABSTRACTOR + (True,),
    ),
]

# Estimates of price, written beside the price they change.
PRICE_NOTES = {
    "Qwen-VL-Max": (
        "estimate: no list price of the time in tokencost; hosting price of "
        "Qwen2.5-VL-72B-Instruct (VL-RouterBench), the largest Qwen-VL listed"
    ),
    "Qwen-VL-Plus": (
        "estimate: tokencost openrouter/qwen/qwen-vl-plus, a 2025 OpenRouter "
        "price, not the price at the time of the results"
    ),
    "bard": (
        "estimate: Bard has no API price; tokencost gemini-pro-vision, the "
        "Google multimodal API model of the time, incl. its per-image price"
    ),
}


def build_prices(data_home):
    tokencost = json.loads(
        (data_home / "prices" / "tokencost_model_prices.json").read_text()
    )
    with open(data_home / "prices" / "vl_routerbench_prices.csv", newline="") as file:
        hosted = {row["model"]: row for row in csv.DictReader(file)}
    caption_tokens = _mean_caption_tokens(data_home)

    rows = []
    for dataset, setup, display, provider, params, price, image in SETUPS:
        kind, key = price
        image_usd = 0.0
        if kind == TOKENCOST:
            entry = tokencost[key]
            input_price = entry["input_cost_per_token"] * 1e6
            output_price = entry["output_cost_per_token"] * 1e6
            source = f"tokencost {key} (list price, project file of 2025-09)"
            if image is not None and image[:2] == PRICED_PER_IMAGE:
                image_usd = entry["input_cost_per_image"]
                source += " incl. input_cost_per_image"
        else:
            entry = hosted[key]
            input_price = float(entry["input_usd_per_1m"])
            output_price = float(entry["output_usd_per_1m"])
            source = (
                f"estimate: VL-RouterBench hosting price of {key} "
                f"({entry['params_b']}B), the nearest size listed"
            )
        # A CoT setup is the same model as its plain setup, so it shares the note.
        note = PRICE_NOTES.get(setup.removesuffix("-CoT"))
        price_is_estimate = kind != TOKENCOST or note is not None
        source = note or source

        if image is None:
            image = (
                caption_tokens,
                "estimate: the image reached the model as a caption that is not "
                "recorded; mean ceil(chars/4) of the MathVista testmini Bard captions",
                True,
            )
        params_b, active, params_source, params_estimate = params
        rows.append(
            {
                "dataset": dataset,
                "setup": setup,
                "display_name": display,
                "provider": provider,
                "params_b": "" if params_b is None else params_b,
                "active_params_b": "" if active is None else active,
                "params_b_source": params_source,
                "params_b_is_estimate": params_estimate,
                "input_usd_per_1m": round(input_price, 6),
                "output_usd_per_1m": round(output_price, 6),
                "image_usd": image_usd,
                "price_source": source,
                "price_is_estimate": price_is_estimate,
                "image_tokens": image[0],
                "image_tokens_source": image[1],
                "image_tokens_is_estimate": image[2],
            }
        )

    path = OUT_DIR / "model_prices.csv"
    with open(path, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {path} ({len(rows)} setups)")


def _mean_caption_tokens(data_home):
    captions = json.loads(
        (data_home / "mathvista" / "data" / "texts" / "captions_bard.json").read_text()
    )["texts"]
    counts = [math.ceil(len(text) / 4) for text in captions.values() if text]
    return round(sum(counts) / len(counts))


def build_math_vision(data_home, skip_images):
    # Import after the prices exist: the loader reads them.
    from skrouter.datasets import _math_vision

    out = OUT_DIR / "math_vision"
    out.mkdir(parents=True, exist_ok=True)
    root = data_home / "math-vision"
    problems, correct, output_tokens = _math_vision._read_source(root)
    table = _math_vision._to_embedded_table(problems, correct, output_tokens)
    table_path = out / "math_vision.csv.gz"
    # mtime=0 keeps the gzip bytes identical across rebuilds of the same data.
    table.to_csv(
        table_path,
        index=False,
        compression={"method": "gzip", "mtime": 0, "compresslevel": 9},
    )
    print(f"wrote {table_path} ({table_path.stat().st_size / 1e6:.2f} MB)")

    shutil.copyfile(root / "LICENSE", out / "LICENSE")
    (out / "README.md").write_text(ATTRIBUTION)

    if skip_images:
        return
    images = out / "images"
    images.mkdir(exist_ok=True)
    total = 0
    for pid, relative in zip(problems["id"], problems["image"]):
        target = images / f"{pid}.jpg"
        with Image.open(root / relative) as image:
            image = image.convert("RGB")
            image.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.LANCZOS)
            image.save(target, "JPEG", quality=THUMBNAIL_QUALITY, optimize=True)
        total += target.stat().st_size
    print(f"wrote {len(problems)} thumbnails to {images} ({total / 1e6:.1f} MB)")


ATTRIBUTION = """\
# MATH-Vision, as shipped with skrouter

Source: MATH-Vision (MATH-V), https://github.com/mathllm/MATH-V
Ke Wang, Junting Pan, Weikang Shi, Zimu Lu, Mingjie Zhan, Hongsheng Li.
"Measuring Multimodal Mathematical Reasoning with MATH-Vision Dataset".
NeurIPS 2024 Datasets and Benchmarks Track.

License: MIT, see LICENSE in this folder.

Contents, derived from the upstream test set and model outputs:

- `math_vision.csv.gz`: the 3,040 test problems (question, options, answer,
  level, subject, testmini flag, original image width, height and bytes),
  and for each of 15 model setups the upstream grading (`correct|<setup>`,
  1 or 0) and the response length in estimated tokens
  (`output_tokens|<setup>`, ceil(characters / 4)). Response texts are not
  included.
- `images/<id>.jpg`: each problem's image reduced to a longest side of
  336 px, JPEG quality 85.

Built by scripts/build_embedded_data.py in the skrouter repository.
"""


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-home",
        required=True,
        type=Path,
        help="folder that contains math-vision/, mathvista/ and prices/",
    )
    parser.add_argument(
        "--skip-images",
        action="store_true",
        help="write the prices and the table only, not the thumbnails",
    )
    args = parser.parse_args(argv)
    data_home = args.data_home.resolve()
    for name in ("math-vision", "mathvista", "prices"):
        if not (data_home / name).is_dir():
            parser.error(f"--data-home {str(data_home)!r} has no {name}/ folder")

    build_prices(data_home)
    build_math_vision(data_home, args.skip_images)
    return 0


if __name__ == "__main__":
    sys.exit(main())
