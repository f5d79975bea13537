from pathlib import Path

import pytest

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
