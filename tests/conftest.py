"""Shared fixtures: where ../shared lives, and small real images; the image cache in a private folder; train-side tests
skip without the train extra."""

from __future__ import annotations

import os
import shutil
import tempfile
from importlib.util import find_spec
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("EDGECNN_SHARED", REPO / ".." / "shared")).resolve()
TRAIN_EXTRA = ("keras", "sklearn")  # modules of the train extra that train-side code imports


def pytest_collection_modifyitems(config, items):
    """Tests marked ``train`` skip where only the device extra is installed (a Raspberry Pi, tools/arm64)."""
    missing = [name for name in TRAIN_EXTRA if find_spec(name) is None]
    if missing:
        skip = pytest.mark.skip(reason=f"needs the train extra ({', '.join(missing)} not installed)")
        for item in items:
            if item.get_closest_marker("train"):
                item.add_marker(skip)


def shared_path(*parts: str) -> Path:
    """A path under ../shared, or skip the test with the reason."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared test data not found at {path} (set EDGECNN_SHARED)")
    return path


@pytest.fixture
def coral_dir() -> Path:
    return shared_path("data", "coral")


@pytest.fixture
def flowers_dir() -> Path:
    return shared_path("data", "flowers5")


def pytest_configure(config):
    """Decoded images go to a folder of this test session (and its subprocesses), not ~/.cache/edgecnn."""
    folder = tempfile.mkdtemp(prefix="edgecnn-test-cache-")
    config._edgecnn_cache = folder
    os.environ["EDGECNN_CACHE_DIR"] = folder


def pytest_unconfigure(config):
    folder = getattr(config, "_edgecnn_cache", None)
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
