from pathlib import Path

import pytest

from skrouter.features import _clip as clip_module
from skrouter.features._tiny_clip import register_tiny_clip, save_tiny_clip

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data():
    """Folder of the real routing data that the tests read (never shipped)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(
            f"real data folder {SHARED_DATA} not found; it sits beside the "
            "repository on developer machines and in CI"
        )
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_clip_name():
    """Name of the tiny open_clip architecture, registered with open_clip."""
    return register_tiny_clip()


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory):
    """``local-dir:`` model name of the tiny model with weights seeded by 0."""
    return save_tiny_clip(tmp_path_factory.mktemp("tiny-clip"), random_state=0)


@pytest.fixture
def embedded_counts(monkeypatch):
    """Count the texts and images that reach the CLIP model in this process.

    The counters wrap the loaded-model class, so they see every clone that a
    grid search makes.
    """
    counts = {"texts": 0, "images": 0}
    encode_texts = clip_module._LoadedModel.encode_texts
    encode_images = clip_module._LoadedModel.encode_images

    def counting_texts(self, texts):
        texts = list(texts)
        counts["texts"] += len(texts)
        return encode_texts(self, texts)

    def counting_images(self, images):
        images = list(images)
        counts["images"] += len(images)
        return encode_images(self, images)

    monkeypatch.setattr(clip_module._LoadedModel, "encode_texts", counting_texts)
    monkeypatch.setattr(clip_module._LoadedModel, "encode_images", counting_images)
    return counts
