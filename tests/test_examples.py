import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "examples"
EXAMPLES = sorted(EXAMPLES_DIR.glob("plot_*.py"))


def test_examples_found():
    assert len(EXAMPLES) >= 4


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda path: path.stem)
def test_example_runs_quick(example, tmp_path):
    environment = {
        **os.environ,
        "SKROUTER_EXAMPLES_QUICK": "1",
        "MPLBACKEND": "Agg",
    }
    completed = subprocess.run(
        [sys.executable, str(example)],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )

    assert completed.returncode == 0, completed.stderr[-3000:]


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda path: path.stem)
def test_example_documents_quick_mode(example):
    text = example.read_text(encoding="utf-8")

    assert text.startswith('"""\n')
    assert "SKROUTER_EXAMPLES_QUICK=1" in text.split('"""')[1]
    assert "# %%" in text
