import json
import subprocess
import sys

import pandas as pd
import pytest

from skrouter import _evaluate
from skrouter.cli import main
from skrouter.datasets import load_math_vision, to_mmr_csv
from skrouter.features import _clip

# A small run: 300 queries, 90 of them for training.
SMALL = ["--max-queries", "300", "--train-size", "0.3", "--quiet"]
REFERENCE_ROWS = ["oracle", "best single model", "cheapest model", "random"]
SCORE_COLUMNS = ["nauc_models", "nauc_frontier", "peak_score", "qnc", "cost_at_peak"]


def _run(argv, capsys):
    status = main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _read_results(folder):
    with open(folder / "results.json", encoding="utf-8") as file:
        return json.load(file)


@pytest.fixture(scope="module")
def math_vision():
    return load_math_vision(return_X_y=True)


@pytest.fixture(scope="module")
def tfidf_run(tmp_path_factory):
    """Results folder and stdout of one TF-IDF run on the built-in data."""
    out = tmp_path_factory.mktemp("tfidf")
    argv = ["evaluate", "--features", "text-tfidf", "--routers", "knn,kmeans"]
    status = main(argv + SMALL + ["--out", str(out)])
    assert status == 0
    return out


def test_builtin_tfidf_writes_files(tfidf_run):
    assert (tfidf_run / "results.csv").is_file()
    assert (tfidf_run / "curve.png").stat().st_size > 10_000

    results = _read_results(tfidf_run)
    assert results["data"] == "math-vision"
    assert results["features"]["kind"] == "text-tfidf"
    assert results["features"]["requested"] == "text-tfidf"
    assert results["seed"] == 0
    assert results["n_queries"] == 300
    assert results["split"]["n_train"] == 90
    assert results["split"]["n_test"] == 210
    assert len(results["models"]) == 15
    assert "scikit-learn" in results["versions"]
    assert "skrouter" in results["versions"]

    names = [row["name"] for row in results["results"]]
    assert names[:2] == ["knn", "kmeans"]
    assert names[2] == "oracle"
    for prefix, name in zip(REFERENCE_ROWS, names[2:]):
        assert name.startswith(prefix)
    for row in results["results"]:
        for column in SCORE_COLUMNS:
            assert column in row


def test_builtin_tfidf_csv_matches_json(tfidf_run):
    results = _read_results(tfidf_run)
    table = pd.read_csv(tfidf_run / "results.csv")

    assert list(table["router"]) == [row["name"] for row in results["results"]]
    for column in ["nauc_models", "nauc_frontier", "peak_score", "cost_at_peak"]:
        expected = [row[column] for row in results["results"]]
        assert table[column].tolist() == pytest.approx(expected)


def test_oracle_beats_routers(tfidf_run):
    rows = {row["name"]: row for row in _read_results(tfidf_run)["results"]}

    for name in ["knn", "kmeans", "random"]:
        assert rows["oracle"]["nauc_models"] >= rows[name]["nauc_models"]
        assert 0.0 <= rows[name]["nauc_models"] <= 1.0
        assert 0.0 <= rows[name]["nauc_frontier"] <= 1.0


def test_table_printed(capsys, tmp_path):
    argv = ["evaluate", "--features", "text-tfidf", "--routers", "knn"]
    status, out, err = _run(argv + SMALL + ["--out", str(tmp_path)], capsys)

    assert status == 0
    assert err == ""
    lines = out.splitlines()
    assert lines[0] == "sweep: cost_weight"
    for title in ["nAUC (models)", "nAUC (frontier)", "Ps", "QNC", "cost at Ps (USD)"]:
        assert title in lines[1]
    body = "\n".join(lines[2:])
    for name in ["knn", *REFERENCE_ROWS]:
        assert name in body

    # The legend defines every column, in lines of at most 80 characters.
    legend = out.split("\n\n")[-1]
    assert legend.startswith(
        "Each router is a curve of operating points, one per cost weight."
    )
    for term in ["nAUC (models):", "nAUC (frontier):", "Ps:", "QNC:"]:
        assert term in legend
    assert max(len(line) for line in legend.splitlines()) <= 80


def test_progress_on_stderr(capsys, tmp_path):
    argv = ["evaluate", "--features", "text-tfidf", "--routers", "knn"]
    argv += ["--max-queries", "200", "--out", str(tmp_path)]
    status, _, err = _run(argv, capsys)

    assert status == 0
    assert "features: text-tfidf" in err
    assert "featurizing 200 queries" in err
    assert "fitting knn" in err


def test_same_seed_same_numbers(tfidf_run, tmp_path):
    argv = ["evaluate", "--features", "text-tfidf", "--routers", "knn,kmeans"]
    assert main(argv + SMALL + ["--out", str(tmp_path)]) == 0

    first = _read_results(tfidf_run)["results"]
    second = _read_results(tmp_path)["results"]
    assert first == second


def test_other_seed_other_split(tfidf_run, tmp_path):
    argv = ["evaluate", "--features", "text-tfidf", "--routers", "knn,kmeans"]
    assert main(argv + SMALL + ["--seed", "1", "--out", str(tmp_path)]) == 0

    first = _read_results(tfidf_run)["results"]
    second = _read_results(tmp_path)["results"]
    assert [row["nauc_models"] for row in first] != [
        row["nauc_models"] for row in second
    ]


def test_cap_sweep(tmp_path, capsys):
    argv = ["evaluate", "--features", "text-tfidf", "--routers", "knn"]
    status, out, _ = _run(
        argv + SMALL + ["--sweep", "cap", "--out", str(tmp_path)], capsys
    )

    assert status == 0
    assert out.startswith("sweep: cap")
    assert _read_results(tmp_path)["sweep"] == "cap"


def test_auto_features_fall_back(tmp_path, capsys):
    argv = ["evaluate", "--features", "auto", "--routers", "knn"]
    argv += ["--max-queries", "120", "--train-size", "0.4", "--out", str(tmp_path)]
    status, _, err = _run(argv, capsys)

    assert status == 0
    features = _read_results(tmp_path)["features"]
    assert features["requested"] == "auto"
    assert features["kind"] in ("clip", "offline", "text-tfidf")
    assert f"features: {features['kind']}" in err
    # Without network access the default CLIP weights cannot be in the cache
    # of a fresh test machine, so the reason names what was tried.
    if features["kind"] != "clip":
        assert "CLIP weights" in features["reason"]


def test_cache_dir_filled(tmp_path, capsys):
    cache = tmp_path / "cache"
    argv = ["evaluate", "--routers", "knn", "--max-queries", "60", "--quiet"]
    argv += ["--cache-dir", str(cache), "--out", str(tmp_path / "out")]
    status, _, _ = _run(argv, capsys)

    assert status == 0
    results = _read_results(tmp_path / "out")
    assert results["cache_dir"] == str(cache)
    if results["features"]["kind"] == "text-tfidf":
        pytest.skip("neither CLIP nor the offline featurizer is available here")
    assert any(path.is_file() for path in cache.rglob("*"))


def test_auto_without_offline_uses_tfidf(tmp_path, capsys, monkeypatch):
    def unavailable(data, **settings):
        raise ImportError("not installed")

    monkeypatch.setattr(_evaluate, "make_offline_featurizer", unavailable)
    monkeypatch.setattr(
        _evaluate, "clip_weights_available", lambda featurizer, data: False
    )
    argv = ["evaluate", "--routers", "knn", "--max-queries", "100"]
    status, _, err = _run(argv + ["--out", str(tmp_path)], capsys)

    assert status == 0
    features = _read_results(tmp_path)["features"]
    assert features["kind"] == "text-tfidf"
    assert "offline featurizer unavailable (not installed)" in features["reason"]
    assert "features: text-tfidf" in err


def test_mmr_csv(tmp_path, capsys, math_vision):
    X, y = math_vision
    path = tmp_path / "outcomes.csv"
    to_mmr_csv(X[["question", "image"]].head(200), y.head(200), path)
    out = tmp_path / "out"

    argv = ["evaluate", "--data", str(path), "--features", "text-tfidf"]
    status, out_text, _ = _run(
        argv + ["--routers", "knn", "--quiet", "--out", str(out)], capsys
    )

    assert status == 0
    results = _read_results(out)
    assert results["data"] == str(path)
    assert results["n_queries"] == 200
    assert results["models"] == list(y["quality"].columns)
    assert "knn" in out_text


def test_mmr_csv_missing_outcomes(tmp_path, capsys, math_vision):
    X, y = math_vision
    y = y.head(200).copy()
    y.iloc[:30, 0] = float("nan")
    path = tmp_path / "outcomes.csv"
    to_mmr_csv(X[["question", "image"]].head(200), y, path)

    argv = ["evaluate", "--data", str(path), "--features", "text-tfidf"]
    argv += ["--routers", "knn", "--train-size", "0.5", "--out", str(tmp_path / "o")]
    status, _, err = _run(argv, capsys)

    assert status == 0
    split = _read_results(tmp_path / "o")["split"]
    assert split["n_test"] == 100
    assert split["n_test_complete"] < split["n_test"]
    assert f"({split['n_test_complete']} with every outcome observed)" in err


def _assert_one_line_error(status, err, fragment):
    """Check exit status 2 and one error line after any progress lines."""
    assert status == 2
    lines = [line for line in err.splitlines() if not line.startswith("[skrouter]")]
    assert len(lines) == 1
    assert lines[0].startswith("skrouter evaluate: error: ")
    assert fragment in lines[0]


def test_csv_without_outcome_columns(tmp_path, capsys):
    path = tmp_path / "queries.csv"
    pd.DataFrame({"question": ["a", "b"], "img_path": ["", ""]}).to_csv(path)

    status, out, err = _run(["evaluate", "--data", str(path)], capsys)

    _assert_one_line_error(status, err, "has no outcome columns")
    assert out == ""


def test_missing_data_file(tmp_path, capsys):
    missing = tmp_path / "missing.csv"

    status, _, err = _run(["evaluate", "--data", str(missing)], capsys)

    _assert_one_line_error(status, err, "neither a built-in data set")


def test_builtin_without_data_home(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("SKROUTER_DATA", raising=False)

    argv = ["evaluate", "--data", "mathvista", "--data-home", str(tmp_path)]
    status, _, err = _run(argv, capsys)

    _assert_one_line_error(status, err, str(tmp_path))


@pytest.mark.parametrize(
    "arguments, fragment",
    [
        (["--train-size", "1.5"], "strictly between 0 and 1"),
        (["--train-size", "abc"], "invalid float value"),
        (["--routers", "knn,forest"], "unknown router 'forest'"),
        (["--routers", "knn,knn"], "listed twice"),
        (["--features", "bert"], "invalid choice: 'bert'"),
        (["--sweep", "lambda"], "invalid choice: 'lambda'"),
        (["--max-queries", "0"], "must be >= 1"),
        (["--no-such-option"], "unrecognized arguments"),
    ],
)
def test_bad_arguments(arguments, fragment, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", *arguments])

    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert len(err.strip().splitlines()) == 1
    assert fragment in err


def test_missing_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([])

    assert exit_info.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_split_too_small(tmp_path, capsys):
    argv = ["evaluate", "--max-queries", "3", "--features", "text-tfidf"]
    status, _, err = _run(argv + ["--out", str(tmp_path)], capsys)

    _assert_one_line_error(status, err, "each side needs at least 2")


def test_mf_unavailable(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(_evaluate, "mf_router_class", lambda: None)
    assert _evaluate.default_router_names() == ["knn", "kmeans"]

    argv = ["evaluate", "--routers", "mf", "--features", "text-tfidf"]
    status, _, err = _run(argv + SMALL + ["--out", str(tmp_path)], capsys)

    _assert_one_line_error(status, err, "MFRouter")


def test_python_m_skrouter(tmp_path):
    argv = [sys.executable, "-m", "skrouter", "evaluate", "--features", "text-tfidf"]
    argv += ["--routers", "knn", "--max-queries", "150", "--quiet"]
    completed = subprocess.run(
        argv + ["--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert completed.returncode == 0, completed.stderr
    assert completed.stderr == ""
    assert "oracle" in completed.stdout
    assert (tmp_path / "results.json").is_file()


def test_clip_without_weights_names_the_options(tmp_path, capsys, monkeypatch):
    # No cached weights, and offline so the download fails at once.
    monkeypatch.setattr(_clip, "_cached_tag_checkpoint", lambda tag_config: None)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    argv = ["evaluate", "--features", "clip", "--clip-model", "ViT-B-32"]
    argv += ["--clip-pretrained", "openai", "--out", str(tmp_path), *SMALL]

    status, _, err = _run(argv, capsys)

    _assert_one_line_error(status, err, "--features clip failed")
    assert "--clip-pretrained /path/to/weights.pt" in err
    assert "--clip-model local-dir:" in err
    assert "pretrained='/path" not in err
