"""Command line: ``skrouter evaluate`` trains routers and scores them.

Run ``skrouter evaluate --help`` (or ``python -m skrouter evaluate --help``)
for the options. The command exits with status 0 on success and 2, after one
line on stderr, when an argument is invalid or the data cannot be read.
"""

import argparse
import json
import math
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd

from . import _evaluate

_COLUMNS = [
    ("nauc_models", "nAUC (models)", "{:.4f}"),
    ("nauc_frontier", "nAUC (frontier)", "{:.4f}"),
    ("peak_score", "Ps", "{:.4f}"),
    ("qnc", "QNC", "{:.3f}"),
    ("cost_at_peak", "cost at Ps (USD)", "{:.3g}"),
]

_DESCRIPTION = """\
Train routers on part of a routing data set and score their cost-quality
trade-off on the rest. Queries are featurized once, all together, then split
into training and test queries (by default 20 % and 80 %, MMR-Bench's
protocol). Prints, for each router and for the oracle, the best and the
cheapest single model and a random router: nAUC over the single models' cost
range, nAUC over the router's own frontier (as MMR-Bench normalizes), the
peak score Ps, QNC and the mean cost per query at Ps. Writes results.json,
results.csv and curve.png to --out.
"""


class _OneLineErrorParser(argparse.ArgumentParser):
    """Argument parser that reports a usage error as one line, exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid int value: {text!r}; pass a whole number >= 1"
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1; got {value}")
    return value


def _train_fraction(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid float value: {text!r}; pass a fraction such as 0.2"
        ) from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(
            f"must be a fraction strictly between 0 and 1; got {value}"
        )
    return value


def _router_list(text):
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError("pass at least one router name")
    unknown = [name for name in names if name not in _evaluate.ROUTER_NAMES]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown router {unknown[0]!r}; choose from "
            f"{', '.join(_evaluate.ROUTER_NAMES)}"
        )
    if len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"a router is listed twice in {text!r}")
    return names


def build_parser():
    """Build the parser of the ``skrouter`` command and its subcommands."""
    parser = _OneLineErrorParser(
        prog="skrouter", description="Cost-aware routing of queries to LLMs."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    evaluate = commands.add_parser(
        "evaluate",
        help="train routers and score their cost-quality trade-off",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    evaluate.add_argument(
        "--data",
        default="math-vision",
        help="built-in data set (math-vision, shipped in the package; mathvista "
        "and routerbench, read from --data-home) or the path of an MMR-Bench "
        "CSV (default: %(default)s)",
    )
    evaluate.add_argument(
        "--data-home",
        help="folder of the upstream data sets, as the loaders' data_home "
        "(default: the environment variable SKROUTER_DATA)",
    )
    evaluate.add_argument(
        "--image-root",
        help="folder that relative image paths of a CSV are resolved against",
    )
    evaluate.add_argument(
        "--routers",
        type=_router_list,
        help="comma-separated routers to train, from "
        f"{', '.join(_evaluate.ROUTER_NAMES)} (default: all three)",
    )
    evaluate.add_argument(
        "--features",
        choices=_evaluate.FEATURE_KINDS,
        default="auto",
        help="query features: clip (CLIP text and image embeddings fused by "
        "AdaptiveFusion; downloads the weights when they are not cached), "
        "offline (the offline text and image featurizer), text-tfidf (TF-IDF "
        "of the text reduced by SVD), or auto: CLIP when its weights load "
        "without a download, else offline when installed, else text-tfidf "
        "(default: %(default)s)",
    )
    evaluate.add_argument(
        "--clip-model",
        default="ViT-B-32",
        help="open_clip architecture, or local-dir:FOLDER (default: %(default)s)",
    )
    evaluate.add_argument(
        "--clip-pretrained",
        default="openai",
        help="open_clip pretrained tag or weights file (default: %(default)s)",
    )
    evaluate.add_argument(
        "--cache-dir",
        help="folder of the embedding cache of the clip and offline features, "
        "so that later runs embed only new texts and images (default: no cache)",
    )
    evaluate.add_argument(
        "--train-size",
        type=_train_fraction,
        default=0.2,
        help="fraction of the queries used for training; the rest are test "
        "queries (default: %(default)s)",
    )
    evaluate.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the split, the subset, the SVD and the routers; the same "
        "seed gives the same numbers (default: %(default)s)",
    )
    evaluate.add_argument(
        "--sweep",
        choices=_evaluate.SWEEPS,
        default="cost_weight",
        help="operating points of the curve: every cost weight, or every cap "
        "on the predicted cost as MMR-Bench sweeps (default: %(default)s)",
    )
    evaluate.add_argument(
        "--max-queries",
        type=_positive_int,
        help="evaluate a random subset of this many queries, for speed",
    )
    evaluate.add_argument(
        "--out",
        default="skrouter-results",
        help="folder for results.json, results.csv and curve.png; created when "
        "missing (default: %(default)s)",
    )
    evaluate.add_argument(
        "--quiet",
        action="store_true",
        help="print no progress on stderr, only the table",
    )
    return parser


def main(argv=None):
    """Run the ``skrouter`` command line and return its exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    return run_evaluate(args, parser)


def run_evaluate(args, parser):
    """Run ``skrouter evaluate`` with parsed arguments; return the exit status."""
    start = time.perf_counter()
    progress = _evaluate.Progress(enabled=not args.quiet)
    router_names = args.routers or _evaluate.default_router_names()

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        parser.error(f"--out {args.out!r} exists and is not a folder")
    if args.image_root is not None and not Path(args.image_root).is_dir():
        parser.error(f"--image-root {args.image_root!r} is not an existing folder")

    # Loaders raise FileNotFoundError and ValueError with messages that name
    # the file and the fix; any other exception is a bug and keeps its
    # traceback.
    try:
        with progress.step(f"loading {args.data}"):
            data = _evaluate.load_data(
                args.data, data_home=args.data_home, image_root=args.image_root
            )
    except (FileNotFoundError, ValueError) as exc:
        return _fail(exc)

    try:
        data = _evaluate.subsample(data, args.max_queries, args.seed)
        _check_split_sizes(len(data.y), args.train_size)
        choice = _evaluate.choose_features(
            args.features,
            data,
            clip_model=args.clip_model,
            clip_pretrained=args.clip_pretrained,
            image_root=args.image_root,
            seed=args.seed,
            progress=progress,
            memory=args.cache_dir,
        )
        progress.log(f"features: {choice.kind} ({choice.reason})")
        features = _evaluate.featurize(choice, data, progress=progress, seed=args.seed)
        evaluation = _evaluate.evaluate(
            features,
            data.y,
            router_names,
            train_size=args.train_size,
            seed=args.seed,
            sweep=args.sweep,
            progress=progress,
        )
    except _evaluate.EvaluationError as exc:
        return _fail(exc)

    print(format_table(evaluation.rows, args.sweep))

    out.mkdir(parents=True, exist_ok=True)
    wall_time = time.perf_counter() - start
    write_results(out, args, data, choice, features, evaluation, wall_time)
    _write_plot(out / "curve.png", data, choice, evaluation, args.sweep, progress)
    progress.log(f"wrote {out / 'results.json'}, results.csv and curve.png")
    progress.log(f"finished in {time.perf_counter() - start:.1f} s")
    return 0


def _check_split_sizes(n_queries, train_size):
    n_train = math.ceil(train_size * n_queries)
    if n_train < 2 or n_queries - n_train < 2:
        raise _evaluate.EvaluationError(
            f"--train-size {train_size} of {n_queries} queries leaves {n_train} "
            f"training and {n_queries - n_train} test queries; each side needs at "
            "least 2 (raise --max-queries or change --train-size)."
        )


def _fail(exc):
    """Print ``exc`` as one line on stderr and return exit status 2."""
    message = " ".join(str(exc).split())
    print(f"skrouter evaluate: error: {message}", file=sys.stderr)
    return 2


def format_table(rows, sweep):
    """Format the scores as a plain-text table, one router or reference a row."""
    name_width = max(len("router"), *(len(row["name"]) for row in rows))
    widths = [max(len(title), 8) for _, title, _ in _COLUMNS]
    header = "  ".join(
        ["router".ljust(name_width)]
        + [title.rjust(width) for (_, title, _), width in zip(_COLUMNS, widths)]
    )
    lines = [f"sweep: {sweep}", header, "-" * len(header)]
    previous_kind = rows[0]["kind"]
    for row in rows:
        if row["kind"] != previous_kind:
            lines.append("-" * len(header))
            previous_kind = row["kind"]
        cells = [row["name"].ljust(name_width)]
        for (key, _, template), width in zip(_COLUMNS, widths):
            value = row[key]
            text = template.format(value) if math.isfinite(value) else str(value)
            cells.append(text.rjust(width))
        lines.append("  ".join(cells))
    return "\n".join([*lines, "", _legend(sweep)])


_POINTS = {
    "cost_weight": "one per cost weight",
    "cap": "one per cap on the predicted cost",
}

_TERMS = [
    "nAUC (models): mean quality under the router's cost-quality frontier over "
    "the single models' cost range. The frontier counts as 0 below its "
    "cheapest point, so a curve that starts at a high cost scores well below "
    "its Ps.",
    "nAUC (frontier): the same over the frontier's own cost range, as "
    "MMR-Bench reports it.",
    "Ps: the best mean quality of any operating point.",
    "QNC: the lowest cost at which the router reaches the best single model's "
    "quality, divided by that model's cost (inf: it never does).",
    "cost at Ps: the mean cost per query, in USD, at the Ps operating point.",
    "Higher is better for nAUC and Ps, lower for QNC and cost.",
]


def _legend(sweep):
    """Return the lines that define the columns of the table, 80 wide."""
    lines = [f"Each router is a curve of operating points, {_POINTS[sweep]}."]
    lines += [textwrap.fill(term, width=80, subsequent_indent="  ") for term in _TERMS]
    return "\n".join(lines)


def _json_number(value):
    """Keep finite floats; write inf and nan as the strings "inf" and "nan"."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def write_results(out, args, data, choice, features, evaluation, wall_time):
    """Write results.json and results.csv into the folder ``out``."""
    rows = [
        {key: _json_number(value) for key, value in row.items()}
        for row in evaluation.rows
    ]
    for row in rows:
        row["params"] = evaluation.router_params.get(row["name"])

    results = {
        "data": data.name,
        "n_queries": len(data.y),
        "models": list(data.y["quality"].columns),
        "features": {
            "kind": choice.kind,
            "requested": choice.requested,
            "description": choice.description,
            "reason": choice.reason,
            "n_features": int(features.shape[1]),
        },
        "seed": args.seed,
        "train_size": args.train_size,
        "max_queries": args.max_queries,
        "cache_dir": args.cache_dir,
        "sweep": args.sweep,
        "split": {
            "n_train": evaluation.n_train,
            "n_test": evaluation.n_test,
            "n_test_complete": evaluation.n_test_complete,
        },
        "results": rows,
        "versions": _evaluate.package_versions(),
        "wall_time_s": round(wall_time, 2),
    }
    with open(out / "results.json", "w", encoding="utf-8") as file:
        json.dump(results, file, indent=2, allow_nan=False)
        file.write("\n")

    table = pd.DataFrame(evaluation.rows).rename(columns={"name": "router"})
    table.to_csv(out / "results.csv", index=False)


def _write_plot(path, data, choice, evaluation, sweep, progress):
    """Draw every router, the random router, the single models and the oracle."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        progress.log(
            "matplotlib is not installed, so curve.png is not written; install it "
            'with: pip install "skrouter[plot]"'
        )
        return

    from .plotting import CostQualityDisplay

    # Lay the figure out before drawing: model labels are placed for the
    # axes size they are drawn at.
    figure, ax = plt.subplots(figsize=(9.0, 6.0))
    ax.set_title(
        f"{Path(data.name).name}: {evaluation.n_test_complete:,} test queries, "
        f"{choice.kind} features, "
        f"{'cost-weight' if sweep == 'cost_weight' else 'cost-cap'} operating points",
        fontsize="medium",
    )
    ax.set_xlabel("Mean cost per query (USD)")
    ax.set_ylabel("Mean quality")
    figure.tight_layout()

    display = None
    for name, (kind, quality_pred, cost_pred) in evaluation.predictions.items():
        # Single models are drawn as points already.
        if kind == "reference" and name != "random":
            continue
        curve_kwargs = None
        if name == "random":
            curve_kwargs = {"color": "0.6", "linestyle": ":", "markersize": 2}
        display = CostQualityDisplay.from_predictions(
            evaluation.y_test,
            quality_pred,
            cost_pred,
            sweep=sweep,
            name=name,
            ax=ax,
            plot_models=display is None,
            plot_oracle=display is None,
            curve_kwargs=curve_kwargs,
        )
    figure.savefig(path, dpi=150)
    plt.close(figure)
