import itertools
import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from skrouter.features import AdaptiveFusion

DIM = 6


def _unit(x):
    norm = np.sqrt(np.sum(x * x))
    return x / norm if norm > 0 else np.zeros_like(x)


def _reference_stats(X):
    """Prototype, norm mean and norm std of each half, row by row."""
    stats = {}
    for name, half in (("text", X[:, :DIM]), ("image", X[:, DIM:])):
        units = []
        norms = []
        for row in half:
            if np.any(row != 0):
                units.append(_unit(row))
                norms.append(np.sqrt(np.sum(row * row)))
        if units:
            prototype = np.sum(units, axis=0) / len(units)
            mean = sum(norms) / len(norms)
            std = np.sqrt(sum((n - mean) ** 2 for n in norms) / len(norms))
        else:
            prototype, mean, std = np.zeros(DIM), 0.0, 0.0
        stats[name] = (prototype, mean, std)
    return stats


def _reference_confidence(x, stats, confidence):
    norm = np.sqrt(np.sum(x * x))
    if confidence == "norm":
        return norm
    prototype, mean, std = stats
    prototype_norm = np.sqrt(np.sum(prototype * prototype))
    cosine = _unit(x) @ prototype / prototype_norm if prototype_norm > 0 else 0.0
    norm_term = 0.5 if std < 1e-12 else 1 / (1 + np.exp(-(norm - mean) / std))
    return min(max(0.5 * (cosine + 1) / 2 + 0.5 * norm_term, 0.0), 1.0)


def _reference_row(t, v, stats, strategy, confidence, difference, eta, alpha, beta):
    """Fuse one row straight from the written formulas."""
    t_hat, v_hat = _unit(t), _unit(v)
    t_present, v_present = np.any(t != 0), np.any(v != 0)

    if strategy == "text":
        return t_hat
    if strategy == "image":
        return v_hat
    if strategy == "concat":
        return np.concatenate([t_hat, v_hat])
    if not v_present:
        return t_hat
    if not t_present:
        return v_hat
    if strategy == "mean":
        return _unit((t_hat + v_hat) / 2)

    c_t = _reference_confidence(t, stats["text"], confidence)
    c_v = _reference_confidence(v, stats["image"], confidence)
    logits = np.array([eta * c_t, eta * c_v])
    weights = np.exp(logits - logits.max())
    w_t, w_v = weights / weights.sum()
    delta = t_hat - v_hat if difference == "signed" else np.abs(t_hat - v_hat)
    f = w_t * t_hat + w_v * v_hat + alpha * t_hat * v_hat + beta * delta
    return _unit(f)


def _make_X(seed=0, n=40):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2 * DIM)) * rng.uniform(0.2, 3.0, size=(n, 1))
    X[::5, DIM:] = 0.0  # text-only rows
    X[1::7, :DIM] = 0.0  # image-only rows
    return X


SETTINGS = list(
    itertools.product(
        ["adaptive", "mean", "concat", "text", "image"],
        ["norm", "prototype_norm"],
        ["signed", "absolute"],
    )
)


@pytest.mark.parametrize("strategy, confidence, difference", SETTINGS)
def test_fusion_matches_reference(strategy, confidence, difference):
    X_train = _make_X(seed=0)
    X_test = _make_X(seed=1, n=25)
    params = dict(
        strategy=strategy,
        confidence=confidence,
        difference=difference,
        eta=3.0,
        alpha=0.7,
        beta=0.2,
    )
    fusion = AdaptiveFusion(**params).fit(X_train)
    stats = _reference_stats(X_train)

    expected = np.array(
        [_reference_row(row[:DIM], row[DIM:], stats, **params) for row in X_test]
    )
    np.testing.assert_allclose(fusion.transform(X_test), expected, atol=1e-12)


def test_fit_statistics_match_reference():
    X = _make_X()
    fusion = AdaptiveFusion(confidence="prototype_norm").fit(X)
    stats = _reference_stats(X)

    np.testing.assert_allclose(fusion.text_prototype_, stats["text"][0])
    np.testing.assert_allclose(fusion.image_prototype_, stats["image"][0])
    assert fusion.text_norm_mean_ == pytest.approx(stats["text"][1])
    assert fusion.image_norm_std_ == pytest.approx(stats["image"][2])
    assert fusion.embedding_dim_ == DIM


def test_default_formula_by_hand():
    # t̂ = (1, 0), v̂ = (0, 1), c = (3, 1): w_t = sigmoid(10).
    X = np.array([[3.0, 0.0, 0.0, 1.0]])
    w_t = 1 / (1 + np.exp(-10.0))
    f = np.array([w_t + 0.5, (1 - w_t) - 0.5])

    fused = AdaptiveFusion().fit(X).transform(X)

    np.testing.assert_allclose(fused[0], f / np.linalg.norm(f))


@pytest.mark.parametrize("strategy, confidence, difference", SETTINGS)
def test_one_row_equals_batch_row(strategy, confidence, difference):
    X = _make_X()
    fusion = AdaptiveFusion(
        strategy=strategy, confidence=confidence, difference=difference
    ).fit(X)
    batch = fusion.transform(X)

    for i in (0, 1, 2, 5):
        np.testing.assert_allclose(fusion.transform(X[i : i + 1])[0], batch[i])


@pytest.mark.parametrize("strategy", ["adaptive", "mean"])
@pytest.mark.parametrize("confidence", ["norm", "prototype_norm"])
@pytest.mark.parametrize("difference", ["signed", "absolute"])
def test_one_sided_rows_return_present_half(strategy, confidence, difference):
    rng = np.random.default_rng(3)
    t = rng.normal(size=DIM) * 4
    v = rng.normal(size=DIM) * 0.5
    X = np.vstack(
        [np.concatenate([t, np.zeros(DIM)]), np.concatenate([np.zeros(DIM), v])]
    )
    fusion = AdaptiveFusion(
        strategy=strategy, confidence=confidence, difference=difference
    ).fit(_make_X())

    fused = fusion.transform(X)

    np.testing.assert_allclose(fused[0], t / np.linalg.norm(t))
    np.testing.assert_allclose(fused[1], v / np.linalg.norm(v))


def test_text_only_rows_by_strategy():
    t = np.arange(1.0, DIM + 1)
    X = np.concatenate([t, np.zeros(DIM)])[None, :]
    t_hat = t / np.linalg.norm(t)

    for strategy, expected in [
        ("image", np.zeros(DIM)),
        ("text", t_hat),
        ("concat", np.concatenate([t_hat, np.zeros(DIM)])),
    ]:
        fused = AdaptiveFusion(strategy=strategy).fit(X).transform(X)
        np.testing.assert_array_equal(fused[0], expected)


def test_both_halves_zero_gives_zero_row():
    X = np.zeros((2, 2 * DIM))
    X[1, 0] = 1.0

    for strategy in ["adaptive", "mean", "concat", "text", "image"]:
        fused = AdaptiveFusion(strategy=strategy).fit(X).transform(X)
        assert not fused[0].any(), strategy


def test_zero_f_stays_zero_row():
    t = np.array([1.0, 2.0, 0.0, 0.0, 0.0, 0.0])
    X = np.concatenate([t, -t])[None, :]

    mean = AdaptiveFusion(strategy="mean").fit(X).transform(X)
    adaptive = AdaptiveFusion(alpha=0.0, beta=0.0).fit(X).transform(X)

    np.testing.assert_array_equal(mean, np.zeros((1, DIM)))
    np.testing.assert_array_equal(adaptive, np.zeros((1, DIM)))


def test_prototype_absent_half_and_constant_norms():
    # Every training row is text-only with norm 2: no image prototype, and
    # a zero norm spread makes the norm term 0.5.
    X_train = np.zeros((3, 2 * DIM))
    X_train[:, 0] = 2.0
    fusion = AdaptiveFusion(confidence="prototype_norm").fit(X_train)

    np.testing.assert_array_equal(fusion.image_prototype_, np.zeros(DIM))
    assert fusion.text_norm_std_ == 0.0

    X_test = _make_X(seed=4, n=10)
    stats = _reference_stats(X_train)
    params = dict(
        strategy="adaptive",
        confidence="prototype_norm",
        difference="signed",
        eta=5.0,
        alpha=0.5,
        beta=0.5,
    )
    expected = np.array(
        [_reference_row(row[:DIM], row[DIM:], stats, **params) for row in X_test]
    )
    np.testing.assert_allclose(fusion.transform(X_test), expected, atol=1e-12)


def test_output_keeps_float32():
    X = _make_X().astype(np.float32)
    fused = AdaptiveFusion().fit(X).transform(X)
    assert fused.dtype == np.float32


@pytest.mark.parametrize(
    "params, match",
    [
        ({"strategy": "sum"}, "strategy='sum'.*'adaptive'"),
        ({"confidence": "entropy"}, "confidence='entropy'.*'prototype_norm'"),
        ({"difference": "squared"}, "difference='squared'.*'absolute'"),
        ({"eta": float("nan")}, "eta=nan.*finite"),
        ({"alpha": "0.5"}, "alpha='0.5'.*finite"),
        ({"beta": np.inf}, "beta=inf.*finite"),
    ],
)
def test_invalid_params_raise(params, match):
    with pytest.raises(ValueError, match=match):
        AdaptiveFusion(**params).fit(_make_X())


def test_invalid_X_raises():
    X = _make_X()
    with pytest.raises(ValueError, match="X with 5 columns"):
        AdaptiveFusion().fit(X[:, :5])

    X_nan = X.copy()
    X_nan[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        AdaptiveFusion().fit(X_nan)

    X_inf = X.copy()
    X_inf[0, 0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        AdaptiveFusion().fit(X).transform(X_inf)

    with pytest.raises(ValueError, match="features"):
        AdaptiveFusion().fit(X).transform(X[:, :4])


def test_feature_names_and_pandas_output():
    X = pd.DataFrame(
        _make_X(),
        columns=[f"text{i}" for i in range(DIM)] + [f"image{i}" for i in range(DIM)],
    )
    fusion = AdaptiveFusion().set_output(transform="pandas").fit(X)
    fused = fusion.transform(X)

    assert isinstance(fused, pd.DataFrame)
    assert list(fused.columns) == [f"fused{i}" for i in range(DIM)]
    assert list(fused.index) == list(X.index)

    concat = AdaptiveFusion(strategy="concat").fit(X)
    assert list(concat.get_feature_names_out()) == list(X.columns)


def test_clone_get_params_and_pickle():
    fusion = AdaptiveFusion(strategy="mean", eta=2.0)
    assert clone(fusion).get_params() == fusion.get_params()

    X = _make_X()
    fusion.fit(X)
    restored = pickle.loads(pickle.dumps(fusion))
    np.testing.assert_array_equal(restored.transform(X), fusion.transform(X))


def test_skops_round_trip():
    import skops.io

    X = _make_X()
    fusion = AdaptiveFusion(confidence="prototype_norm").fit(X)
    dumped = skops.io.dumps(fusion)
    untrusted = skops.io.get_untrusted_types(data=dumped)
    restored = skops.io.loads(dumped, trusted=untrusted)

    np.testing.assert_array_equal(restored.transform(X), fusion.transform(X))
