"""Throughput of ImageStatsFeaturizer on MATH-Vision images.

Measures images per second on the thumbnails shipped with skrouter and,
separately, on the full-size images under ``--data-home``, for:

- ``ImageStatsFeaturizer``: reads each image through skrouter's image reader
  (JPEG draft mode, then shrunk to a longer side of 336 pixels) and measures
  it there, with ``n_jobs=1`` and with ``n_jobs=2`` threads;
- ``plain``: the plainest alternative, ``PIL.Image.open(path).convert("RGB")``
  (full decode, no draft, no shrinking) and the same numpy measures on every
  pixel of the original.

Each case runs ``--repeat`` times and the table gives the median. The ratio
column is the throughput of the row divided by that of ``plain`` on the same
images. The load average is printed because other processes on the machine
change the numbers.

Run::

    python benchmarks/bench_image_stats.py --data-home /path/to/data
    python benchmarks/bench_image_stats.py --quick
"""

import argparse
import os
import platform
import statistics
import sys
import time

import numpy as np
import pandas as pd
from PIL import Image

from skrouter.datasets import load_math_vision
from skrouter.features import ImageStatsFeaturizer
from skrouter.features._image_stats import _pixel_stats


def plain_stats(paths):
    """Measure every image at full size with a full decode and no draft."""
    rows = []
    for path in paths:
        with Image.open(path) as image:
            rgb = image.convert("RGB")
        size = os.path.getsize(path)
        width, height = rgb.size
        rows.append(
            [
                width,
                height,
                width / height,
                width * height / 1e6,
                size / (width * height),
            ]
            + list(_pixel_stats(rgb))
            + [1.0]
        )
    return np.asarray(rows)


def time_call(function, repeat):
    """Return the median wall time of ``function()`` over ``repeat`` runs."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_images(label, X, repeat):
    paths = X["image"].tolist()
    cases = {
        "ImageStatsFeaturizer n_jobs=1": lambda: ImageStatsFeaturizer().transform(X),
        "ImageStatsFeaturizer n_jobs=2": lambda: ImageStatsFeaturizer(
            n_jobs=2
        ).transform(X),
        "plain (full decode, full size)": lambda: plain_stats(paths),
    }
    seconds = {name: time_call(case, repeat) for name, case in cases.items()}
    plain_rate = len(X) / seconds["plain (full decode, full size)"]
    rows = []
    for name, elapsed in seconds.items():
        rate = len(X) / elapsed
        rows.append(
            {
                "images": label,
                "method": name,
                "n": len(X),
                "median s": round(elapsed, 2),
                "images/s": round(rate, 1),
                "ratio to plain": round(rate / plain_rate, 2),
            }
        )
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Images per second of ImageStatsFeaturizer on MATH-Vision."
    )
    parser.add_argument(
        "--data-home",
        default=os.environ.get("SKROUTER_DATA"),
        help="folder containing math-vision/ with the full-size images "
        "(default: $SKROUTER_DATA); without it only thumbnails are timed",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="time 500 images of each kind, 3 repetitions",
    )
    parser.add_argument(
        "--repeat", type=int, default=None, help="repetitions (default 5, quick 3)"
    )
    args = parser.parse_args(argv)
    repeat = args.repeat or (3 if args.quick else 5)
    n_images = 500 if args.quick else None

    thumbnails, _ = load_math_vision(return_X_y=True)
    sets = [("thumbnails (336 px)", thumbnails)]
    if args.data_home:
        full, _ = load_math_vision(data_home=args.data_home, return_X_y=True)
        sets.append(("full size", full))
    else:
        print("No --data-home: full-size images are not timed.", file=sys.stderr)

    print(
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"load average at start {os.getloadavg()[0]:.1f}, {repeat} repetitions"
    )
    rows = []
    for label, X in sets:
        X = X.iloc[:n_images] if n_images else X
        # One untimed pass so that every run reads the files from the OS cache.
        ImageStatsFeaturizer().transform(X)
        rows.extend(bench_images(label, X, repeat))
    print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
