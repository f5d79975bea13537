import io
import pickle

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from PIL import Image, ImageDraw

from skrouter import get_trusted_types
from skrouter.datasets import load_math_vision
from skrouter.features import ImageReadError, ImageStatsFeaturizer

NAMES = [
    "width",
    "height",
    "aspect_ratio",
    "megapixels",
    "bytes_per_pixel",
    "entropy",
    "edge_density",
    "ink_share",
    "n_colors",
    "has_image",
]


def reference_pixel_stats(rgb):
    """Compute the four pixel measures with plain float64 numpy, one by one."""
    rgb = rgb.astype(np.float64)
    height, width, _ = rgb.shape
    gray = np.floor(
        (rgb[..., 0] * 19595 + rgb[..., 1] * 38470 + rgb[..., 2] * 7471 + 0x8000)
        / 65536
    )

    _, counts = np.unique(gray, return_counts=True)
    p = counts / gray.size
    entropy = -np.sum(p * np.log2(p))

    dx = gray[:-1, 1:] - gray[:-1, :-1]
    dy = gray[1:, :-1] - gray[:-1, :-1]
    edge_density = np.mean(np.sqrt(dx**2 + dy**2) > 32) if dx.size else 0.0

    levels = np.floor(rgb / 16).reshape(-1, 3)
    colors, inverse, color_counts = np.unique(
        levels, axis=0, return_inverse=True, return_counts=True
    )
    n_colors = np.sum(color_counts >= 0.001 * gray.size)
    background = np.rint(
        rgb.reshape(-1, 3)[inverse.ravel() == np.argmax(color_counts)].mean(axis=0)
    )
    ink_share = np.mean(np.abs(rgb.reshape(-1, 3) - background).max(axis=1) > 32)
    return np.array([entropy, edge_density, ink_share, n_colors])


def encode(image, format="PNG", **options):
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def diagram(size=(120, 80), mode="RGB"):
    """Draw a small diagram: a black frame, a red disc and a blue line on white."""
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle((5, 5, size[0] - 6, size[1] - 6), outline="black", width=2)
    draw.ellipse((20, 15, 60, 55), fill=(200, 30, 30))
    draw.line((0, size[1] - 1, size[0] - 1, 0), fill=(20, 40, 220), width=3)
    return image.convert(mode) if mode != "RGB" else image


def features_of(cells, **params):
    return ImageStatsFeaturizer(**params).fit_transform(pd.DataFrame({"image": cells}))


def test_pixel_stats_match_reference():
    images = {
        "rgb": diagram(),
        "gray": diagram(mode="L"),
        "palette": diagram().convert("P", palette=Image.Palette.ADAPTIVE, colors=8),
        "noise": Image.fromarray(
            np.random.default_rng(0).integers(0, 256, (64, 96, 3), dtype=np.uint8)
        ),
        "one_row": Image.new("RGB", (50, 1), "gray"),
    }
    features = features_of(list(images.values()))

    for row, (name, image) in enumerate(images.items()):
        expected = reference_pixel_stats(np.asarray(image.convert("RGB")))
        np.testing.assert_allclose(
            features[row, 5:9], expected, atol=1e-12, err_msg=name
        )
        assert features[row, 9] == 1.0, name


def test_size_features_from_file():
    image = diagram(size=(200, 50))
    data = encode(image)
    features = features_of([data])[0]

    assert features[0] == 200
    assert features[1] == 50
    assert features[2] == pytest.approx(4.0)
    assert features[3] == pytest.approx(0.01)
    assert features[4] == pytest.approx(len(data) / 10_000)


def test_rgba_transparent_becomes_white():
    image = Image.new("RGBA", (40, 40), (0, 0, 0, 0))
    ImageDraw.Draw(image).rectangle((10, 10, 29, 29), fill=(0, 0, 0, 255))
    features = features_of([image])[0]

    # The transparent black background counts as white background, not ink.
    assert features[7] == pytest.approx(400 / 1600)
    assert features[8] == 2


def test_missing_image_gives_zero_row():
    features = features_of([None, np.nan, "", diagram()])

    np.testing.assert_array_equal(features[:3], 0.0)
    assert features[3, 9] == 1.0


def test_huge_jpeg_measured_on_draft(tmp_path):
    image = Image.new("RGB", (6000, 4000), "white")
    ImageDraw.Draw(image).rectangle((1000, 1000, 4999, 2999), fill="black")
    path = tmp_path / "huge.jpg"
    image.save(path, quality=90)
    del image

    features = features_of([str(path)])[0]

    assert features[:2].tolist() == [6000, 4000]
    assert features[3] == pytest.approx(24.0)
    assert features[4] == pytest.approx(path.stat().st_size / 24e6)
    # A third of the image is the black rectangle, at any scale.
    assert features[7] == pytest.approx(1 / 3, abs=0.01)


def test_max_side_bounds_measured_image():
    small = ImageStatsFeaturizer(max_side=16).fit_transform([diagram(size=(400, 400))])
    large = ImageStatsFeaturizer(max_side=400).fit_transform([diagram(size=(400, 400))])

    # Same original size, different measuring scale.
    np.testing.assert_array_equal(small[0, :5], large[0, :5])
    assert small[0, 6] != large[0, 6]


def test_exif_rotation_swaps_size():
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(Image.new("RGB", (60, 20), "white"), format="JPEG", exif=exif)

    features = features_of([data])[0]

    assert features[:2].tolist() == [20, 60]


def test_size_columns_replace_file_size():
    image = diagram(size=(100, 50))
    X = pd.DataFrame(
        {
            "image": [image, image],
            "image_width": [1000, np.nan],
            "image_height": [500, 50],
            "image_bytes": [25_000, 100],
        }
    )
    features = ImageStatsFeaturizer().fit_transform(X)

    assert features[0, :5].tolist() == [1000, 500, 2.0, 0.5, 0.05]
    # A row with a missing size uses the image itself (no file: 0 bytes).
    assert features[1, :5].tolist() == [100, 50, 2.0, 0.005, 0.0]
    np.testing.assert_array_equal(features[0, 5:], features[1, 5:])

    ignored = ImageStatsFeaturizer(size_columns=None).fit_transform(X)
    assert ignored[0, :2].tolist() == [100, 50]


def test_corrupt_bytes_name_row():
    X = pd.DataFrame({"image": [diagram(), b"not an image"]}, index=["a", "b"])

    with pytest.raises(ImageReadError, match="row 'b'.*on_image_error='missing'"):
        ImageStatsFeaturizer().fit_transform(X)

    features = ImageStatsFeaturizer(on_image_error="missing").fit_transform(X)
    np.testing.assert_array_equal(features[1], 0.0)
    assert features[0, 9] == 1.0


def test_non_image_file_names_path(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")

    with pytest.raises(ImageReadError, match=r"row 0 at '.*notes\.txt'"):
        features_of(["notes.txt"], image_root=tmp_path)
    with pytest.raises(ImageReadError, match="missing.png"):
        features_of([str(tmp_path / "missing.png")])


def test_truncated_jpeg_file(tmp_path):
    path = tmp_path / "cut.jpg"
    path.write_bytes(encode(diagram(), format="JPEG")[:200])

    with pytest.raises(ImageReadError, match="cut.jpg"):
        features_of([str(path)])
    assert features_of([str(path)], on_image_error="missing")[0, 9] == 0.0


@pytest.mark.parametrize(
    "X, error, message",
    [
        (
            pd.DataFrame({"image": [1, 2]}),
            TypeError,
            r"row 0: got int; expected a path",
        ),
        (pd.DataFrame({"image": []}), ValueError, "X has 0 rows"),
        (
            pd.DataFrame({"picture": [None]}),
            ValueError,
            r"image_column='image' not found",
        ),
        (np.zeros((2, 2)), TypeError, r"got ndarray; expected a DataFrame"),
    ],
)
def test_invalid_input(X, error, message):
    with pytest.raises(error, match=message):
        ImageStatsFeaturizer().fit(X)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"max_side": 4}, r"max_side=4: expected an int >= 8"),
        ({"on_image_error": "skip"}, r"on_image_error='skip': expected 'raise'"),
        ({"size_columns": "image_width"}, r"size_columns='image_width'"),
        ({"n_jobs": 0}, r"n_jobs=0"),
    ],
)
def test_invalid_params(params, message):
    with pytest.raises(ValueError, match=message):
        ImageStatsFeaturizer(**params).fit([None])


def test_threads_give_same_features():
    images = [diagram(size=(60 + 7 * i, 50)) for i in range(20)] + [None]

    serial = ImageStatsFeaturizer().fit_transform(images)
    threaded = ImageStatsFeaturizer(n_jobs=2).fit_transform(images)

    np.testing.assert_array_equal(serial, threaded)


def test_feature_names_and_pandas_output():
    X = pd.DataFrame({"image": [diagram(), None]}, index=[10, 20])
    featurizer = ImageStatsFeaturizer().set_output(transform="pandas")

    features = featurizer.fit_transform(X)

    assert featurizer.get_feature_names_out().tolist() == NAMES
    assert list(features.columns) == NAMES
    assert list(features.index) == [10, 20]


def test_pickle_and_skops_round_trip():
    featurizer = ImageStatsFeaturizer(max_side=64).fit([diagram()])
    expected = featurizer.transform([diagram(), None])

    from_pickle = pickle.loads(pickle.dumps(featurizer))
    data = sio.dumps(featurizer)
    from_skops = sio.loads(data, trusted=get_trusted_types())

    assert sio.get_untrusted_types(data=data) == [
        "skrouter.features._image_stats.ImageStatsFeaturizer"
    ]
    np.testing.assert_array_equal(from_pickle.transform([diagram(), None]), expected)
    np.testing.assert_array_equal(from_skops.transform([diagram(), None]), expected)


def test_math_vision_thumbnails_keep_original_size():
    X, _ = load_math_vision(return_X_y=True)
    X = X.iloc[:5]

    features = ImageStatsFeaturizer().fit_transform(X)

    np.testing.assert_array_equal(features[:, 0], X["image_width"])
    np.testing.assert_array_equal(features[:, 1], X["image_height"])
    np.testing.assert_allclose(
        features[:, 4], X["image_bytes"] / (X["image_width"] * X["image_height"])
    )
    assert (features[:, 5] > 0).all()
    assert (features[:, 9] == 1).all()


def test_math_vision_full_size_close_to_thumbnails(shared_data):
    thumbnails, _ = load_math_vision(return_X_y=True)
    full, _ = load_math_vision(data_home=shared_data, return_X_y=True)
    rows = slice(0, 8)

    from_thumbnails = ImageStatsFeaturizer().fit_transform(thumbnails.iloc[rows])
    from_files = ImageStatsFeaturizer(size_columns=None).fit_transform(full.iloc[rows])

    # The size read from the files is the one the thumbnails carry along.
    np.testing.assert_array_equal(from_files[:, :5], from_thumbnails[:, :5])
    # Both are measured at 336 pixels, so ink shares agree closely.
    np.testing.assert_allclose(from_files[:, 7], from_thumbnails[:, 7], atol=0.05)
