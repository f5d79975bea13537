import json
import math

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from skrouter.datasets import (
    get_data_home,
    load_math_vision,
    load_mathvista,
    load_model_prices,
    load_routerbench,
    read_mmr_csv,
    to_mmr_csv,
)
from skrouter.datasets._math_vision import SETUPS as MATH_VISION_SETUPS
from skrouter.datasets._mathvista import SETUPS as MATHVISTA_SETUPS


@pytest.fixture(autouse=True)
def no_data_env(monkeypatch):
    monkeypatch.delenv("SKROUTER_DATA", raising=False)


@pytest.fixture(scope="module")
def math_vision_source(shared_data):
    return load_math_vision(shared_data)


@pytest.fixture(scope="module")
def math_vision_embedded():
    return load_math_vision()


def _published_count(result_path):
    numerator = json.loads(result_path.read_text())["-all"].split("=")[0]
    correct, total = numerator.split("/")
    return int(correct), int(total)


def test_math_vision_accuracy_matches_published(shared_data, math_vision_source):
    y = math_vision_source.y
    assert y.shape == (3040, 30)
    outputs = shared_data / "math-vision" / "outputs"
    for setup in MATH_VISION_SETUPS:
        (result,) = outputs.glob(f"*/*/{setup}_result.json")
        correct, total = _published_count(result)
        assert total == len(y)
        assert int(y["quality"][setup].sum()) == correct, setup


def test_math_vision_columns_and_images(shared_data, math_vision_source):
    X = math_vision_source.X
    assert list(X.columns) == [
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
    first = X.iloc[0]
    assert first["image"] == str((shared_data / "math-vision/images/1.jpg").resolve())
    with Image.open(first["image"]) as image:
        assert image.size == (first["image_width"], first["image_height"])
    assert X["testmini"].sum() == 304
    assert X["has_options"].sum() == sum(len(options) > 0 for options in X["options"])
    assert not math_vision_source.y.isna().to_numpy().any()


def test_math_vision_embedded_matches_source(math_vision_source, math_vision_embedded):
    pd.testing.assert_frame_equal(math_vision_embedded.y, math_vision_source.y)
    columns = [
        "id",
        "question",
        "answer",
        "level",
        "subject",
        "testmini",
        "image_width",
        "image_height",
        "image_bytes",
    ]
    pd.testing.assert_frame_equal(
        math_vision_embedded.X[columns], math_vision_source.X[columns]
    )
    assert list(math_vision_embedded.X["options"]) == list(
        math_vision_source.X["options"]
    )
    assert "thumbnails" in math_vision_embedded.DESCR


def test_math_vision_thumbnails(math_vision_embedded):
    X = math_vision_embedded.X
    paths = [X["image"].iloc[i] for i in (0, 1000, 3039)]
    for path in paths:
        with Image.open(path) as image:
            assert max(image.size) <= 336
            assert image.format == "JPEG"
    assert all(pd.Series(X["image"]).map(lambda p: p.endswith(".jpg")))


def test_math_vision_models_table(math_vision_embedded):
    models = math_vision_embedded.models
    assert list(models.index) == MATH_VISION_SETUPS
    assert models.loc["Qwen-VL-Max", "price_is_estimate"]
    assert models.loc["Qwen-VL-Plus", "price_is_estimate"]
    assert not models.loc["GPT4-CoT (Text Only)", "price_is_estimate"]
    assert models.loc["GPT4-CoT (Text Only)", "image_tokens"] == 0
    assert models.loc["SPHINX-MoE", "params_b_is_estimate"]
    for column in ("price_source", "params_b_source", "image_tokens_source"):
        assert models[column].str.len().gt(0).all(), column
    assert "estimate" in math_vision_embedded.DESCR


def test_math_vision_cost_by_hand(shared_data, math_vision_source):
    prices = load_model_prices("math_vision").set_index("setup")
    problems = {
        row["id"]: row
        for row in map(json.loads, open(shared_data / "math-vision/data/test.jsonl"))
    }
    outputs = shared_data / "math-vision" / "outputs"
    cases = [
        ("LLaVA-v1.5-13B", "2"),
        ("Gemini-Pro-CoT", "17"),
        ("GPT4-CoT (Text Only)", "3040"),
    ]
    for setup, pid in cases:
        (output,) = outputs.glob(f"*/*/{setup}.jsonl")
        answer = next(row for row in map(json.loads, open(output)) if row["id"] == pid)
        problem = problems[pid]
        prompt = problem["question"]
        if problem["options"]:
            prompt += "\n" + "\n".join(problem["options"])
        price = prices.loc[setup]
        input_tokens = math.ceil(len(prompt) / 4) + price["image_tokens"]
        output_tokens = math.ceil(len(answer["response"]) / 4)
        expected = (
            input_tokens * price["input_usd_per_1m"] / 1e6
            + output_tokens * price["output_usd_per_1m"] / 1e6
            + price["image_usd"]
        )
        row = math_vision_source.X.index[math_vision_source.X["id"] == pid][0]
        assert math_vision_source.y.loc[row, ("cost", setup)] == pytest.approx(
            expected, rel=1e-12
        ), setup


def test_math_vision_options_and_subset():
    X, y = load_math_vision(subset="testmini", return_X_y=True)
    assert X.shape[0] == 304
    assert y.shape[0] == 304
    assert X["testmini"].all()
    assert X.index.equals(y.index)


def test_math_vision_invalid_arguments(tmp_path):
    with pytest.raises(ValueError, match="image_size='full' needs the original"):
        load_math_vision(image_size="full")
    with pytest.raises(
        ValueError, match=r"subset must be one of \['test', 'testmini'\]"
    ):
        load_math_vision(subset="train")
    with pytest.raises(ValueError, match="image_size must be one of"):
        load_math_vision(image_size="small")
    with pytest.raises(FileNotFoundError, match="no 'math-vision' subfolder"):
        load_math_vision(tmp_path)


def test_data_home_from_environment(shared_data, monkeypatch):
    monkeypatch.setenv("SKROUTER_DATA", str(shared_data))
    assert get_data_home() == shared_data.resolve()
    X, _ = load_math_vision(return_X_y=True)
    assert X["image"].iloc[0].startswith(str(shared_data.resolve()))
    X_thumb, _ = load_math_vision(image_size="thumbnail", return_X_y=True)
    assert "datasets/data/math_vision/images" in X_thumb["image"].iloc[0]


def test_data_home_errors(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="is not an existing folder"):
        get_data_home(tmp_path / "absent")
    with pytest.raises(TypeError, match="data_home must be a str or path-like"):
        get_data_home(3)
    monkeypatch.setenv("SKROUTER_DATA", str(tmp_path / "absent"))
    with pytest.raises(FileNotFoundError, match="SKROUTER_DATA"):
        get_data_home()


def test_mathvista_accuracy_matches_published(shared_data):
    data = load_mathvista(shared_data)
    assert data.X.shape[0] == 1000
    assert list(data.models.index) == MATHVISTA_SETUPS
    results = shared_data / "mathvista" / "results"
    for setup in MATHVISTA_SETUPS:
        (scores,) = results.glob(f"*/scores_{setup}.json")
        published = json.loads(scores.read_text())["average"]["correct"]
        assert int(data.y["quality"][setup].sum()) == published, setup
    assert not data.y.isna().to_numpy().any()


def test_mathvista_texts_and_costs(shared_data):
    X, y = load_mathvista(shared_data, return_X_y=True)
    assert (X["caption"] != "").sum() == 930
    assert X.loc[0, "ocr"].startswith("The spring force does")

    prices = load_model_prices("mathvista").set_index("setup")
    results = shared_data / "mathvista" / "results"
    for setup, pid in [
        ("gpt4_2shot_solution_use_ocr", "5"),
        ("bard", "1"),
        ("instruct_blip2_vicuna_13b", None),
    ]:
        (output,) = results.glob(f"*/output_{setup}.json")
        answers = json.loads(output.read_text())
        if pid is None:
            pid = next(key for key, row in answers.items() if not row["response"])
        answer = answers[pid]
        price = prices.loc[setup]
        input_tokens = math.ceil(len(answer["query"]) / 4) + price["image_tokens"]
        output_tokens = math.ceil(len(answer["response"]) / 4)
        expected = (
            input_tokens * price["input_usd_per_1m"] / 1e6
            + output_tokens * price["output_usd_per_1m"] / 1e6
            + price["image_usd"]
        )
        row = X.index[X["pid"] == pid][0]
        assert y.loc[row, ("cost", setup)] == pytest.approx(expected, rel=1e-12), setup


def test_mathvista_not_shipped():
    with pytest.raises(FileNotFoundError, match="not shipped in the package"):
        load_mathvista()


def test_routerbench_splits_and_costs(shared_data):
    train = load_routerbench(shared_data, split="train")
    test = load_routerbench(shared_data, split="test")
    both = load_routerbench(shared_data, split=None)
    assert train.y.shape == (2225, 22)
    assert test.y.shape == (953, 22)
    assert len(both.y) == len(train.y) + len(test.y)
    assert train.y["quality"].isna().any(axis=1).sum() == 20
    assert test.y["quality"].isna().any(axis=1).sum() == 8

    raw = pd.read_csv(
        shared_data / "routerbench-subset/datasets/routerbench_zs/mbpp_test.csv"
    )
    rows = test.X["task"] == "mbpp"
    np.testing.assert_array_equal(
        test.y["cost"]["gpt-4-1106-preview"][rows].to_numpy(),
        raw["gpt-4-1106-preview|total_cost"].to_numpy(),
    )
    assert not test.X["prompt"].str.startswith("['").any()

    split_rows = train.X["sample_id"].duplicated(keep=False)
    assert split_rows.sum() == 14
    two_part = train.X["prompt"][split_rows].str.contains("\n\n")
    assert two_part.any()


def test_routerbench_not_shipped_and_bad_split(shared_data):
    with pytest.raises(FileNotFoundError, match="not shipped in the package"):
        load_routerbench()
    with pytest.raises(ValueError, match="split must be one of"):
        load_routerbench(shared_data, split="validation")


def test_mmr_csv_round_trip(tmp_path, math_vision_embedded):
    X = math_vision_embedded.X[["question", "image", "subject", "level"]].head(20)
    y = math_vision_embedded.y.head(20).copy()
    y.loc[3, ("quality", "SPHINX-v2")] = np.nan
    path = tmp_path / "outcomes.csv"
    to_mmr_csv(X, y, path)
    X_read, y_read = read_mmr_csv(path)
    pd.testing.assert_frame_equal(X_read, X.reset_index(drop=True))
    expected = y.reset_index(drop=True)
    expected.loc[3, ("cost", "SPHINX-v2")] = np.nan
    pd.testing.assert_frame_equal(y_read, expected, check_exact=False, rtol=1e-15)


def test_mmr_csv_dataset_idx_images(tmp_path):
    (tmp_path / "SEEDBenchv2Plus").mkdir()
    (tmp_path / "MMStar").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "SEEDBenchv2Plus" / "0.jpg")
    Image.new("RGB", (4, 4)).save(tmp_path / "MMStar" / "12.png")
    table = pd.DataFrame(
        {
            "question": ["a", "b", "c"],
            "dataset_idx": ["SEEDBench2_Plus_0", "MMStar_12", "MMStar_13"],
            "m1_correct": [1, 0, 1],
            "m1_cost": [0.1, 0.2, 0.3],
            "m2_correct": [0.5, 1, 0],
            "m2_cost": [0.01, 0.02, 0.03],
            "total_cost": [1, 2, 3],
        }
    )
    path = tmp_path / "mmr.csv"
    table.to_csv(path, index=False)
    with pytest.warns(UserWarning, match="No image found for 1 of 3"):
        X, y = read_mmr_csv(path, image_root=tmp_path)
    assert X["image"].tolist()[:2] == [
        str(tmp_path / "SEEDBenchv2Plus" / "0.jpg"),
        str(tmp_path / "MMStar" / "12.png"),
    ]
    assert pd.isna(X["image"].iloc[2])
    assert list(y["quality"].columns) == ["m1", "m2"]
    assert "total_cost" in X.columns
    assert y[("quality", "m2")].tolist() == [0.5, 1.0, 0.0]


def test_mmr_csv_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="is not an existing file"):
        read_mmr_csv(tmp_path / "absent.csv")
    path = tmp_path / "plain.csv"
    pd.DataFrame({"question": ["a"], "img_path": ["x.jpg"], "m_correct": [1]}).to_csv(
        path, index=False
    )
    with pytest.raises(ValueError, match="has no outcome columns"):
        read_mmr_csv(path)
    pd.DataFrame({"img_path": ["x.jpg"], "m_correct": [1], "m_cost": [0.1]}).to_csv(
        path, index=False
    )
    with pytest.raises(ValueError, match="has no 'question' column"):
        read_mmr_csv(path)
    pd.DataFrame({"question": ["a"], "m_correct": [1], "m_cost": [0.1]}).to_csv(
        path, index=False
    )
    with pytest.raises(ValueError, match="neither an 'img_path' nor a 'dataset_idx'"):
        read_mmr_csv(path)
    pd.DataFrame(
        {"question": ["a"], "img_path": ["x.jpg"], "m_correct": [2], "m_cost": [0.1]}
    ).to_csv(path, index=False)
    with pytest.raises(ValueError, match="Invalid outcomes .* must lie in"):
        read_mmr_csv(path)
    with pytest.raises(FileNotFoundError, match="image_root="):
        read_mmr_csv(path, image_root=tmp_path / "absent")
    with pytest.raises(TypeError, match="X must be a DataFrame"):
        to_mmr_csv([["a"]], None, path)


def test_model_prices_table():
    prices = load_model_prices()
    assert set(prices["dataset"]) == {"math_vision", "mathvista"}
    assert len(prices) == 29
    assert (prices["input_usd_per_1m"] >= 0).all()
    assert prices.loc[prices["setup"] == "bard", "price_is_estimate"].item()
    with pytest.raises(ValueError, match="dataset must be one of"):
        load_model_prices("routerbench")
