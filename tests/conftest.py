"""Shared test fixtures: where the shared data lives, and quiet TensorFlow logs."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # as the CLI does (polytask.cli._common.use_onednn)

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = REPO_ROOT / "examples"
SHARED_DATA = Path(os.environ.get("POLYTASK_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def omniglot_zips() -> list[Path]:
    """The two small Omniglot background zips from ../shared/data; skip when absent."""
    zips = sorted((SHARED_DATA / "omniglot").glob("images_background_small*.zip"))
    if not zips:
        pytest.skip(f"Omniglot zips not found under {SHARED_DATA / 'omniglot'}")
    return zips


def pytest_collection_modifyitems(config, items):
    """`exhaustive` tests (full cross products, minutes of CPU) run only when asked for by name:
    `pytest -m exhaustive`; a plain `pytest` (CI) runs the covering subset beside them."""
    if "exhaustive" in (config.getoption("markexpr") or ""):
        return
    dropped = [item for item in items if item.get_closest_marker("exhaustive")]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if not item.get_closest_marker("exhaustive")]
