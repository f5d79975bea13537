import io
import pickle
import time
import warnings

import joblib
import numpy as np
import pandas as pd
import pytest
import skops.io
from PIL import Image
from sklearn.base import clone

from skrouter.features import AdaptiveFusion, CLIPFeaturizer, ImageReadError
from skrouter.features import _clip as clip_module
from skrouter.features import _images as images_module
from skrouter.features._images import load_image
from skrouter.features._tiny_clip import (
    TINY_CLIP_CONFIG,
)

DIM = TINY_CLIP_CONFIG["embed_dim"]


@pytest.fixture
def make_featurizer(tiny_clip_dir):
    """Build a CLIPFeaturizer on the tiny local model."""

    def make(**params):
        return CLIPFeaturizer(model_name=tiny_clip_dir, **params)

    return make


def _png_bytes(image):
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _pattern(mode="RGB", size=(48, 40)):
    """A left/right split image, so that rotations and crops change it."""
    array = np.zeros((size[1], size[0], 3), dtype=np.uint8)
    array[:, : size[0] // 2] = (220, 30, 30)
    array[:, size[0] // 2 :] = (20, 40, 200)
    return Image.fromarray(array).convert(mode)


def _count_model_calls(featurizer):
    """Wrap the loaded model's encoders to count the items they embed."""
    loaded = featurizer._load_model()
    counts = {"texts": 0, "images": 0}
    encode_text = loaded.model.encode_text
    encode_image = loaded.model.encode_image

    def counting_text(tokens, *args, **kwargs):
        counts["texts"] += len(tokens)
        return encode_text(tokens, *args, **kwargs)

    def counting_image(pixels, *args, **kwargs):
        counts["images"] += len(pixels)
        return encode_image(pixels, *args, **kwargs)

    loaded.model.encode_text = counting_text
    loaded.model.encode_image = counting_image
    return counts


@pytest.fixture
def image_files(tmp_path):
    """One file per image kind, named by kind, in ``tmp_path``."""
    paths = {}

    rgba = Image.new("RGBA", (40, 40), (0, 0, 0, 0))
    rgba.paste((0, 0, 0, 255), (10, 10, 30, 30))
    paths["rgba"] = tmp_path / "rgba.png"
    rgba.save(paths["rgba"])

    paths["palette"] = tmp_path / "palette.png"
    _pattern("P").save(paths["palette"])

    paths["gray"] = tmp_path / "gray.png"
    _pattern("L").save(paths["gray"])

    paths["cmyk"] = tmp_path / "cmyk.jpg"
    _pattern("CMYK").save(paths["cmyk"])

    gradient = (np.arange(40 * 48, dtype=np.uint16).reshape(40, 48) * 30).astype(
        np.uint16
    )
    paths["i16"] = tmp_path / "i16.png"
    Image.fromarray(gradient).save(paths["i16"])

    # EXIF orientation 6: the viewer turns the stored image 90 degrees clockwise.
    exif = Image.Exif()
    exif[0x0112] = 6
    paths["exif"] = tmp_path / "exif.jpg"
    _pattern("RGB", size=(48, 20)).save(paths["exif"], exif=exif)

    paths["rgb"] = tmp_path / "rgb.png"
    _pattern("RGB").save(paths["rgb"])
    return paths


# -- image reading -----------------------------------------------------------


def test_load_image_converts_every_mode(image_files):
    for kind, path in image_files.items():
        image = load_image(path)
        assert image.mode == "RGB", kind


def test_load_image_rgba_composited_on_white(image_files):
    array = np.asarray(load_image(image_files["rgba"]))
    assert tuple(array[0, 0]) == (255, 255, 255)
    assert tuple(array[20, 20]) == (0, 0, 0)


def test_load_image_scales_16_bit(image_files):
    array = np.asarray(load_image(image_files["i16"]))[..., 0]
    assert array.max() > 200
    assert array.min() == 0
    # Clipping instead of scaling would leave most pixels at 255.
    assert np.mean(array == 255) < 0.05


def test_load_image_applies_exif_orientation(image_files):
    image = load_image(image_files["exif"])
    assert image.size == (20, 48)


def test_load_image_relative_path_and_bytes(image_files, tmp_path):
    from_path = load_image("rgb.png", image_root=tmp_path)
    from_bytes = load_image(image_files["rgb"].read_bytes())
    from_mapping = load_image({"bytes": image_files["rgb"].read_bytes()})

    np.testing.assert_array_equal(np.asarray(from_path), np.asarray(from_bytes))
    np.testing.assert_array_equal(np.asarray(from_path), np.asarray(from_mapping))


def test_load_image_missing_cells():
    for cell in [None, np.nan, float("nan"), "", pd.NA]:
        assert load_image(cell) is None, repr(cell)


def test_load_image_large_jpeg_is_bounded(tmp_path):
    path = tmp_path / "large.jpg"
    Image.new("L", (10_000, 9_000), 128).save(path, quality=50)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        image = load_image(path, max_side=512)

    assert max(image.size) == 512
    assert image.size == (512, 461)


def test_load_image_rejects_too_many_pixels(image_files, monkeypatch):
    monkeypatch.setattr(images_module, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(ImageReadError, match="row 7 at .*rgb.png.*pixels"):
        load_image(image_files["rgb"], row=7)


def test_load_image_errors_name_row_and_path(tmp_path):
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")

    with pytest.raises(ImageReadError, match=r"row 3 at '.*missing.png'.*No such"):
        load_image("missing.png", image_root=tmp_path, row=3)
    with pytest.raises(ImageReadError, match=r"row 'q4' at '.*corrupt.png'"):
        load_image(corrupt, row="q4")
    with pytest.raises(ImageReadError, match="expected a path"):
        load_image(12345, row=0)


def test_load_image_real_math_vision(shared_data):
    folder = shared_data / "math-vision" / "images"
    for name in ["1.jpg", "2.jpg", "100.jpg", "1000.jpg"]:
        image = load_image(name, image_root=folder)
        assert image.mode == "RGB"
        assert 0 < max(image.size) <= images_module.DEFAULT_MAX_SIDE


# -- CLIPFeaturizer ------------------------------------------------------------


def test_output_shape_dtype_and_names(make_featurizer, image_files):
    X = pd.DataFrame(
        {"question": ["a square", "a circle"], "image": [image_files["rgb"], None]}
    )
    featurizer = make_featurizer().fit(X)
    features = featurizer.transform(X)

    assert features.shape == (2, 2 * DIM)
    assert features.dtype == np.float32
    assert featurizer.embedding_dim_ == DIM
    assert featurizer.n_features_in_ == 2
    assert list(featurizer.feature_names_in_) == ["question", "image"]
    names = featurizer.get_feature_names_out()
    assert names[0] == "text0"
    assert names[DIM] == "image0"
    assert len(names) == 2 * DIM


def test_deterministic_across_instances(make_featurizer, image_files):
    X = pd.DataFrame(
        {"question": ["x + 1 = 2", "area?"], "image": [image_files["gray"], None]}
    )
    first = make_featurizer().fit_transform(X)
    second = make_featurizer().fit_transform(X)
    np.testing.assert_array_equal(first, second)


def test_text_only_and_image_only_rows(make_featurizer, image_files):
    X = pd.DataFrame(
        {
            "question": ["only text", None, "", "   ", "both"],
            "image": [
                None,
                image_files["rgb"],
                image_files["rgb"],
                image_files["rgb"],
                image_files["rgb"],
            ],
        }
    )
    features = make_featurizer().fit_transform(X)
    text_half, image_half = features[:, :DIM], features[:, DIM:]

    assert text_half[0].any()
    assert not image_half[0].any()
    for row in (1, 2, 3):
        assert not text_half[row].any(), row
        assert image_half[row].any(), row
    assert text_half[4].any()
    np.testing.assert_array_equal(image_half[4], image_half[1])


def test_row_without_text_and_image_raises(make_featurizer):
    X = pd.DataFrame(
        {"question": ["fine", None], "image": [None, np.nan]}, index=["a", "b"]
    )
    with pytest.raises(ValueError, match="Row 'b' of X has no text and no image"):
        make_featurizer().fit_transform(X)


def test_every_image_kind_embeds(make_featurizer, image_files, tmp_path):
    cells = {kind: path for kind, path in image_files.items()}
    cells["bytes"] = image_files["rgb"].read_bytes()
    cells["pil"] = _pattern("RGB")
    cells["relative"] = "rgb.png"
    X = pd.DataFrame({"question": None, "image": list(cells.values())})

    features = make_featurizer(image_root=tmp_path).fit_transform(X)
    image_half = pd.DataFrame(features[:, DIM:], index=list(cells))

    assert (np.abs(image_half).sum(axis=1) > 0).all()
    np.testing.assert_array_equal(image_half.loc["bytes"], image_half.loc["rgb"])
    np.testing.assert_array_equal(image_half.loc["relative"], image_half.loc["rgb"])
    np.testing.assert_allclose(image_half.loc["pil"], image_half.loc["rgb"], atol=1e-6)


def test_real_math_vision_images(make_featurizer, shared_data):
    folder = shared_data / "math-vision" / "images"
    X = pd.DataFrame(
        {
            "question": ["Which figure comes next?", "", "How many cubes?"],
            "image": ["1.jpg", "2.jpg", "3.jpg"],
        }
    )
    features = make_featurizer(image_root=folder, batch_size=2).fit_transform(X)
    assert np.isfinite(features).all()
    assert (np.abs(features[:, DIM:]).sum(axis=1) > 0).all()


def test_batch_size_does_not_change_output(make_featurizer, image_files):
    X = pd.DataFrame(
        {
            "question": [f"question {i}" for i in range(5)],
            "image": [
                image_files["rgb"],
                None,
                image_files["gray"],
                image_files["cmyk"],
                None,
            ],
        }
    )
    one = make_featurizer(batch_size=1).fit_transform(X)
    many = make_featurizer(batch_size=32).fit_transform(X)
    np.testing.assert_allclose(one, many, atol=1e-5)


def test_long_text_is_truncated(make_featurizer):
    # The tiny model's context is 16 tokens, so only the shared prefix counts.
    prefix = "the same opening words " * 8
    X = pd.DataFrame(
        {"question": [prefix + "ending one", prefix + "other ending"], "image": None}
    )
    features = make_featurizer().fit_transform(X)
    np.testing.assert_array_equal(features[0], features[1])


def test_normalize_gives_unit_halves(make_featurizer, image_files):
    X = pd.DataFrame(
        {"question": ["a", None], "image": [image_files["rgb"], image_files["rgb"]]}
    )
    features = make_featurizer(normalize=True).fit_transform(X)

    np.testing.assert_allclose(np.linalg.norm(features[0, :DIM]), 1.0, rtol=1e-5)
    np.testing.assert_allclose(
        np.linalg.norm(features[:, DIM:], axis=1), 1.0, rtol=1e-5
    )
    assert not features[1, :DIM].any()


def test_unreadable_images_raise_with_row_and_path(make_featurizer, tmp_path):
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff garbage")
    missing_file = pd.DataFrame({"question": "q", "image": ["gone.png"]}, index=[41])
    corrupt_file = pd.DataFrame({"question": "q", "image": [corrupt]}, index=[42])

    with pytest.raises(ImageReadError, match=r"row 41 at '.*gone.png'.*on_image_error"):
        make_featurizer(image_root=tmp_path).fit_transform(missing_file)
    with pytest.raises(
        ImageReadError, match=r"row 42 at '.*corrupt.jpg'.*on_image_error"
    ):
        make_featurizer().fit_transform(corrupt_file)


def test_on_image_error_missing(make_featurizer, tmp_path, image_files):
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff garbage")
    X = pd.DataFrame(
        {
            "question": ["q1", "q2", "q3"],
            "image": ["gone.png", corrupt, image_files["rgb"]],
        }
    )
    featurizer = make_featurizer(image_root=tmp_path, on_image_error="missing")
    features = featurizer.fit_transform(X)

    assert not features[0, DIM:].any()
    assert not features[1, DIM:].any()
    assert features[2, DIM:].any()

    no_text = pd.DataFrame({"question": [None], "image": [corrupt]})
    with pytest.raises(ValueError, match="no text and no image"):
        featurizer.transform(no_text)


def test_cache_embeds_each_item_once(make_featurizer, image_files, tmp_path):
    cache_dir = tmp_path / "cache"
    X = pd.DataFrame(
        {
            "question": ["q1", "q2", "q1", "q3"],
            "image": [
                image_files["rgb"],
                image_files["gray"],
                image_files["rgb"],
                None,
            ],
        }
    )
    featurizer = make_featurizer(memory=cache_dir)
    counts = _count_model_calls(featurizer)

    first = featurizer.fit_transform(X)
    assert counts == {"texts": 3, "images": 2}

    second = featurizer.transform(X)
    assert counts == {"texts": 3, "images": 2}
    np.testing.assert_array_equal(first, second)

    # Only the new text and the new image are embedded.
    more = pd.concat(
        [X, pd.DataFrame({"question": ["q4"], "image": [image_files["cmyk"]]})],
        ignore_index=True,
    )
    featurizer.transform(more)
    assert counts == {"texts": 4, "images": 3}


def test_cache_shared_by_fresh_instance(make_featurizer, image_files, tmp_path):
    X = pd.DataFrame({"question": ["q1", "q2"], "image": [image_files["rgb"], None]})
    expected = make_featurizer(memory=tmp_path / "cache").fit_transform(X)

    fresh = make_featurizer(memory=joblib.Memory(tmp_path / "cache", verbose=0))
    features = fresh.fit_transform(X)

    np.testing.assert_array_equal(features, expected)
    # Every item came from the cache, so the model was never loaded.
    assert getattr(fresh, "_loaded_model", None) is None


def test_cache_separates_models(tiny_clip_name, image_files, tmp_path):
    X = pd.DataFrame({"question": ["q1"], "image": [image_files["rgb"]]})
    features = {}
    for seed in (0, 1):
        featurizer = CLIPFeaturizer(
            model_name=tiny_clip_name,
            pretrained=None,
            random_state=seed,
            memory=tmp_path / "cache",
        )
        with pytest.warns(UserWarning, match="carry no meaning"):
            features[seed] = featurizer.fit_transform(X)
    assert not np.allclose(features[0], features[1])


def test_random_weights_seeded_and_warned(tiny_clip_name):
    X = pd.DataFrame({"question": ["q1"], "image": [None]})
    outputs = []
    for _ in range(2):
        featurizer = CLIPFeaturizer(
            model_name=tiny_clip_name, pretrained=None, random_state=3
        )
        with pytest.warns(UserWarning, match="random weights.*carry no meaning"):
            outputs.append(featurizer.fit_transform(X))
    np.testing.assert_array_equal(outputs[0], outputs[1])


def test_checkpoint_file_matches_local_dir(tiny_clip_name, tiny_clip_dir, image_files):
    folder = tiny_clip_dir.removeprefix("local-dir:")
    X = pd.DataFrame({"question": ["q1"], "image": [image_files["rgb"]]})
    from_dir = CLIPFeaturizer(model_name=tiny_clip_dir).fit_transform(X)
    from_file = CLIPFeaturizer(
        model_name=tiny_clip_name, pretrained=f"{folder}/open_clip_model.safetensors"
    ).fit_transform(X)
    np.testing.assert_array_equal(from_file, from_dir)


def test_offline_tag_fails_fast(monkeypatch):
    from open_clip import get_pretrained_cfg

    if clip_module._cached_tag_checkpoint(get_pretrained_cfg("ViT-B-32", "openai")):
        pytest.skip("ViT-B-32 'openai' weights are cached on this machine")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    X = pd.DataFrame({"question": ["q1"], "image": [None]})
    featurizer = CLIPFeaturizer(model_name="ViT-B-32", pretrained="openai")

    start = time.perf_counter()
    with pytest.raises(OSError, match="not in the local cache.*local-dir:"):
        featurizer.fit_transform(X)
    assert time.perf_counter() - start < 10


def test_failed_download_message(monkeypatch):
    import huggingface_hub

    def unreachable(*args, **kwargs):
        raise ConnectionError("The hub could not be reached.")

    # No cached weights and a hub that cannot be reached, without a network.
    monkeypatch.setattr(clip_module, "_cached_tag_checkpoint", lambda config: None)
    monkeypatch.setattr(clip_module, "_hub_offline", lambda: False)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", unreachable)
    X = pd.DataFrame({"question": ["q1"], "image": [None]})
    featurizer = CLIPFeaturizer(model_name="ViT-B-32", pretrained="openai")

    with pytest.raises(OSError) as error:
        featurizer.fit_transform(X)
    message = str(error.value)
    assert "Failed to download the weights of pretrained='openai'" in message
    assert "could not be reached. Pass a downloaded checkpoint" in message
    assert ".." not in message


def test_unknown_pretrained_raises():
    X = pd.DataFrame({"question": ["q1"], "image": [None]})
    featurizer = CLIPFeaturizer(pretrained="no-such-tag")
    with pytest.raises(ValueError, match="pretrained='no-such-tag'.*known tags"):
        featurizer.fit_transform(X)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"batch_size": 0}, "batch_size=0"),
        ({"on_image_error": "skip"}, "on_image_error='skip'"),
        ({"text_column": None, "image_column": None}, "text_column=None"),
        ({"text_column": "prompt"}, "text_column='prompt' not found"),
        ({"normalize": "yes"}, "normalize='yes'"),
    ],
)
def test_invalid_params_raise(make_featurizer, params, match):
    X = pd.DataFrame({"question": ["q1"], "image": [None]})
    with pytest.raises(ValueError, match=match):
        make_featurizer(**params).fit(X)


def test_non_dataframe_input_raises(make_featurizer):
    with pytest.raises(TypeError, match="pandas DataFrame"):
        make_featurizer().fit([["q1", None]])


def test_set_output_pandas(make_featurizer):
    X = pd.DataFrame({"question": ["q1", "q2"], "image": [None, None]}, index=[10, 20])
    featurizer = make_featurizer().set_output(transform="pandas")
    features = featurizer.fit_transform(X)

    assert isinstance(features, pd.DataFrame)
    assert list(features.index) == [10, 20]
    assert features.columns[0] == "text0"
    assert features.columns[DIM] == "image0"


def test_clone_and_get_params(make_featurizer):
    featurizer = make_featurizer(batch_size=4, memory="/tmp/somewhere")
    cloned = clone(featurizer)
    assert cloned.get_params() == featurizer.get_params()
    assert cloned is not featurizer


@pytest.mark.parametrize("fitted", [False, True])
def test_pickle_drops_model_and_reloads(make_featurizer, image_files, fitted):
    X = pd.DataFrame({"question": ["q1"], "image": [image_files["rgb"]]})
    featurizer = make_featurizer()
    expected = featurizer.fit_transform(X)
    if not fitted:
        featurizer = make_featurizer()

    featurizer._load_model()
    state = featurizer.__getstate__()
    assert "_loaded_model" not in state

    restored = pickle.loads(pickle.dumps(featurizer))
    assert getattr(restored, "_loaded_model", None) is None
    np.testing.assert_array_equal(restored.transform(X), expected)


@pytest.mark.parametrize("fitted", [False, True])
def test_skops_round_trip(make_featurizer, image_files, fitted):
    X = pd.DataFrame({"question": ["q1"], "image": [image_files["rgb"]]})
    featurizer = make_featurizer()
    expected = featurizer.fit_transform(X)
    if not fitted:
        featurizer = make_featurizer()
        featurizer._load_model()

    dumped = skops.io.dumps(featurizer)
    untrusted = skops.io.get_untrusted_types(data=dumped)
    restored = skops.io.loads(dumped, trusted=untrusted)

    assert restored.get_params() == featurizer.get_params()
    np.testing.assert_array_equal(restored.transform(X), expected)


def test_verbose_reports_to_stderr(make_featurizer, capsys):
    X = pd.DataFrame({"question": ["q1", "q2"], "image": [None, None]})
    make_featurizer(verbose=1).fit_transform(X)
    captured = capsys.readouterr()
    assert "[CLIPFeaturizer] embedded 2/2 texts" in captured.err
    assert captured.out == ""


def test_pipeline_with_fusion(make_featurizer, image_files):
    from sklearn.pipeline import make_pipeline

    X = pd.DataFrame(
        {
            "question": ["q1", "q2", None],
            "image": [image_files["rgb"], None, image_files["gray"]],
        }
    )
    pipeline = make_pipeline(make_featurizer(), AdaptiveFusion())
    fused = pipeline.fit_transform(X)

    assert fused.shape == (3, DIM)
    np.testing.assert_allclose(np.linalg.norm(fused, axis=1), 1.0, rtol=1e-5)
