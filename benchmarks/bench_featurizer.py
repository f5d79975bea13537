"""Time CLIPFeaturizer against a plain open_clip loop over the same batches.

Throughput: queries per second on the first MATH-Vision problems (the
built-in 336-px thumbnails), texts and images timed separately. The tiny
test model embeds 256 queries. ViT-B-32 with random weights embeds 64,
because it runs at about 5 to 25 queries per second on 2 shared cores.
The plain loop is what a user would write with open_clip alone: the same
model, tokenizer and preprocessing, the same batch size,
``torch.inference_mode``, and per batch
``tokenizer`` + ``encode_text`` or ``Image.open`` + ``preprocess`` +
``encode_image``. The ratio is skrouter's throughput over the plain loop's
(1.0 = no overhead). Model loading is not timed.

The machine is shared with other jobs, so the two sides run interleaved
(A B, B A, A B, ...) and each time is the median of the repetitions.

Cache hit: a featurizer with ``memory`` set to a new temporary folder
transforms the queries once to fill the cache, and the later transforms
(text and image together) are timed.

Peak memory: one subprocess per setting embeds the images of the first
1,000 or all 3,040 problems with the tiny model, and reports how far its peak
resident set size rose above its live resident size just before
``transform``. It reads ``/proc``, so it runs on Linux only.

Run::

    python benchmarks/bench_featurizer.py           # 3 to 7 minutes on 2 cores
    python benchmarks/bench_featurizer.py --quick   # tiny model only, a smoke run
"""

import argparse
import ctypes
import gc
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

from skrouter.datasets import load_math_vision
from skrouter.features import CLIPFeaturizer
from skrouter.features._tiny_clip import save_tiny_clip


def load_queries(n_queries):
    X = load_math_vision().X
    return X.iloc[:n_queries].reset_index(drop=True)


def make_featurizer(model_name, **params):
    pretrained_params = {}
    if not model_name.startswith("local-dir:"):
        pretrained_params = {"pretrained": None, "random_state": 0}
    return CLIPFeaturizer(model_name=model_name, **pretrained_params, **params)


class PlainCLIP:
    """open_clip used directly: one model, its tokenizer and preprocessing."""

    def __init__(self, model_name):
        import open_clip
        import torch

        # Seeded as CLIPFeaturizer seeds random weights, so both sides compute
        # the same embeddings (checked in ``check_same_embeddings``).
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model, _, preprocess = open_clip.create_model_and_transforms(
                model_name, pretrained=None
            )
        self.model = model.eval()
        self.preprocess = preprocess
        self.tokenizer = open_clip.get_tokenizer(model_name)

    def embed_texts(self, texts, batch_size):
        import torch

        batches = []
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                tokens = self.tokenizer(texts[start : start + batch_size])
                batches.append(self.model.encode_text(tokens).numpy())
        return np.concatenate(batches)

    def embed_images(self, paths, batch_size):
        import torch
        from PIL import Image

        batches = []
        with torch.inference_mode():
            for start in range(0, len(paths), batch_size):
                pixels = torch.stack(
                    [
                        self.preprocess(Image.open(path))
                        for path in paths[start : start + batch_size]
                    ]
                )
                batches.append(self.model.encode_image(pixels).numpy())
        return np.concatenate(batches)


def interleaved_runs(functions, repeats):
    """Call two functions alternately, in the order A B, B A, A B, ...

    Returns the times of each function, in seconds, and the output of its
    first call. Reversing the order every repetition keeps a slow spell of
    the shared machine from always falling on the same side.
    """
    names = list(functions)
    times = {name: [] for name in names}
    outputs = {}
    for repetition in range(repeats):
        for name in names if repetition % 2 == 0 else names[::-1]:
            start = time.perf_counter()
            output = functions[name]()
            times[name].append(time.perf_counter() - start)
            outputs.setdefault(name, output)
    return times, outputs


def check_same_embeddings(skrouter_side, plain_side, half):
    """Raise AssertionError unless both sides computed the same embeddings."""
    scale = np.abs(plain_side).max()
    error = np.abs(skrouter_side - plain_side).max() / scale
    if error > 1e-4:
        raise AssertionError(
            f"CLIPFeaturizer and the plain loop disagree on the {half} "
            f"embeddings: max relative difference {error:.2e} > 1e-4."
        )


def time_throughput(model_name, label, X, batch_size, repeats):
    """Return table rows of text and image throughput for one model."""
    texts = X["question"].astype(str).tolist()
    paths = X["image"].tolist()
    n_queries = len(X)
    plain = PlainCLIP(model_name)

    rows = []
    for half, featurizer_params, plain_function in [
        ("text", {"image_column": None}, lambda: plain.embed_texts(texts, batch_size)),
        ("image", {"text_column": None}, lambda: plain.embed_images(paths, batch_size)),
    ]:
        featurizer = make_featurizer(
            model_name, batch_size=batch_size, **featurizer_params
        )
        # Load the model and warm up both sides before timing.
        dim = featurizer.fit(X.iloc[:batch_size]).embedding_dim_
        featurizer.transform(X.iloc[:batch_size])
        plain_function()

        times, outputs = interleaved_runs(
            {"skrouter": lambda f=featurizer: f.transform(X), "plain": plain_function},
            repeats,
        )
        columns = slice(0, dim) if half == "text" else slice(dim, 2 * dim)
        check_same_embeddings(outputs["skrouter"][:, columns], outputs["plain"], half)

        ratios = np.divide(times["plain"], times["skrouter"])
        rows.append(
            [
                label,
                half,
                f"{n_queries / np.median(times['skrouter']):,.0f}",
                f"{n_queries / np.median(times['plain']):,.0f}",
                f"{np.median(ratios):.2f}",
                f"{ratios.min():.2f}-{ratios.max():.2f}",
            ]
        )
    return rows


def time_cache_hit(model_name, label, X, warm_up, batch_size, repeats):
    """Return a table row of the throughput of transforms from the cache.

    ``warm_up`` contains queries outside ``X``, transformed first so that the
    timed first transform does not include loading the model.
    """
    with tempfile.TemporaryDirectory() as folder:
        featurizer = make_featurizer(model_name, batch_size=batch_size, memory=folder)
        featurizer.fit_transform(warm_up)
        start = time.perf_counter()
        featurizer.transform(X)
        miss_seconds = time.perf_counter() - start

        hit_seconds = []
        for _ in range(repeats):
            start = time.perf_counter()
            featurizer.transform(X)
            hit_seconds.append(time.perf_counter() - start)
    hit_seconds = np.median(hit_seconds)
    return [
        label,
        f"{len(X) / miss_seconds:,.0f}",
        f"{len(X) / hit_seconds:,.0f}",
        f"{miss_seconds / hit_seconds:,.0f}",
    ]


def print_table(columns, rows):
    print(" | ".join(columns))
    print(" | ".join("---" for _ in columns))
    for row in rows:
        print(" | ".join(row))
    print()


# -- peak memory, one subprocess per setting ---------------------------------


def _resident_bytes():
    """Return the current and the peak resident set size of this process.

    Reads ``VmRSS`` and ``VmHWM`` from ``/proc/self/status``, so it works on
    Linux only. ``VmHWM`` is the peak that writing 5 to
    ``/proc/self/clear_refs`` resets.
    """
    sizes = {}
    with open("/proc/self/status") as file:
        for line in file:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                sizes[key] = int(value.split()[0]) * 1024
    return sizes["VmRSS"], sizes["VmHWM"]


def _release_free_heap():
    """Return freed heap pages to the system (glibc only), so RSS is live memory."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def measure_memory_in_this_process(model_name, batch_size, n_images):
    """Embed the first ``n_images`` images; return the peak RSS growth in bytes."""
    X = load_queries(n_images)
    featurizer = make_featurizer(model_name, text_column=None, batch_size=batch_size)
    # Load the model with one image first, so that loading does not count.
    featurizer.fit_transform(X.iloc[:1])
    gc.collect()
    _release_free_heap()

    # Writing 5 to clear_refs resets VmHWM to the current resident size, so
    # that the peak below is the transform's own, not that of the imports.
    with open("/proc/self/clear_refs", "w") as file:
        file.write("5")
    before, _ = _resident_bytes()
    features = featurizer.transform(X)
    _, peak = _resident_bytes()
    assert features.shape[0] == n_images
    return peak - before


def measure_memory(model_name, batch_size, n_images):
    """Run ``measure_memory_in_this_process`` in a fresh interpreter."""
    command = [
        sys.executable,
        __file__,
        "--memory-child",
        json.dumps([model_name, batch_size, n_images]),
    ]
    output = subprocess.run(command, check=True, capture_output=True, text=True)
    return int(output.stdout.strip().splitlines()[-1])


def run(n_queries, vit_queries, batch_size, repeats, vit_repeats, memory_settings):
    warnings.simplefilter("ignore")
    queries = load_queries(n_queries + 1)
    X, warm_up = queries.iloc[:n_queries], queries.iloc[n_queries:]
    with tempfile.TemporaryDirectory() as folder:
        tiny = save_tiny_clip(folder, random_state=0)

        print(
            f"## Throughput: MATH-Vision queries (built-in thumbnails), batch "
            f"size {batch_size}, {os.cpu_count()} cores ({platform.machine()}); "
            "q/s from the median times of interleaved repetitions, ratio = "
            "median of the per-repetition ratios skrouter / plain"
        )
        rows = []
        if vit_queries:
            rows += time_throughput(
                "ViT-B-32",
                f"ViT-B-32 (random), {vit_queries} queries, {vit_repeats} runs",
                X.iloc[:vit_queries],
                batch_size,
                vit_repeats,
            )
        rows += time_throughput(
            tiny, f"tiny, {n_queries} queries, {repeats} runs", X, batch_size, repeats
        )
        print_table(
            ["model", "half", "skrouter q/s", "plain q/s", "ratio", "ratio range"],
            rows,
        )

        print(
            f"## Cache hit: tiny model, {n_queries} queries, text + image, "
            "memory= a new temporary folder; the first transform once, then the "
            f"median of {repeats} transforms from the cache"
        )
        rows = [time_cache_hit(tiny, "tiny", X, warm_up, batch_size, repeats)]
        print_table(["model", "first transform q/s", "cache hit q/s", "speedup"], rows)

        print(
            "## Peak memory: tiny model, images only (built-in thumbnails), one "
            "subprocess per row; peak RSS during transform minus the live RSS "
            "before it"
        )
        rows = []
        for memory_batch_size, n_images in memory_settings:
            growth = measure_memory(tiny, memory_batch_size, n_images)
            rows.append(
                [f"{memory_batch_size:,}", f"{n_images:,}", f"{growth / 2**20:.0f}"]
            )
        print_table(["batch size", "images", "peak RSS growth MiB"], rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="small sizes for a smoke run"
    )
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.memory_child:
        warnings.simplefilter("ignore")
        model_name, batch_size, n_images = json.loads(args.memory_child)
        print(measure_memory_in_this_process(model_name, batch_size, n_images))
    elif args.quick:
        run(
            64,
            vit_queries=0,
            batch_size=16,
            repeats=5,
            vit_repeats=0,
            memory_settings=[(16, 100), (64, 100)],
        )
    else:
        run(
            256,
            vit_queries=64,
            batch_size=32,
            repeats=15,
            vit_repeats=3,
            memory_settings=[
                (16, 1_000),
                (16, 3_040),
                (128, 1_000),
                (128, 3_040),
                (1_024, 1_000),
                (1_024, 3_040),
            ],
        )


if __name__ == "__main__":
    main()
