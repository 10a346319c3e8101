"""Shared fixtures: where ../shared lives, and small real images; the image cache in a private folder; train-side tests
(the ``train`` marker) skip without the train extra; ``pytest`` alone runs the fast set (``-m slow``: the rest)."""

from __future__ import annotations

import os
import shutil
import tempfile
from importlib.util import find_spec
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("EDGECNN_SHARED", REPO / ".." / "shared")).resolve()
# What the train extra adds to a device install (tools/arm64 installs the device extra, pytest, Pillow and onnx).
TRAIN_EXTRA = ("tensorflow", "keras", "tf2onnx", "sklearn", "scipy", "matplotlib")
TRAIN_MISSING = [name for name in TRAIN_EXTRA if find_spec(name) is None]  # find_spec imports nothing
TRAIN_SKIP = f"needs the train extra ({', '.join(TRAIN_MISSING)} not installed)"


def skip_file_without_train_extra() -> None:
    """At the top of a file of ``train`` tests that imports the stack there: without the extra, skip the file first.

    The same rule as the marker (one fact, TRAIN_MISSING); with the extra installed the imports run and a failing
    one is a collection error, not a skip.
    """
    if TRAIN_MISSING:
        pytest.skip(TRAIN_SKIP, allow_module_level=True)


def runs_the_fast_set(config) -> bool:
    """A bare ``pytest`` (no path, ``-k`` or ``-m`` given), as the README's test command runs it: the fast set.

    Naming a file, a test, ``-k`` or ``-m`` selects exactly that (``-m slow``: the rest, as CI runs it next).
    """
    args = config.invocation_params.args
    marks = bool(config.option.markexpr) or any(a.startswith("-m") for a in args)
    return not (config.option.file_or_dir or config.option.keyword or marks)


def pytest_report_header(config):
    if runs_the_fast_set(config):
        return "the fast set: tests marked slow are deselected (pytest -m slow runs them, pytest -m '' everything)"
    return None


def pytest_collection_modifyitems(config, items):
    """A bare ``pytest`` deselects the tests marked ``slow``; tests marked ``train`` skip without the train extra.

    ``train`` is the one mechanism for "needs the train stack" (a Raspberry Pi, tools/arm64, installs the device
    extra): where the extra is installed these tests run, and an import that fails in them fails the test (no
    ``pytest.importorskip`` turning a broken install into a skip).
    """
    if runs_the_fast_set(config):
        slow = [item for item in items if item.get_closest_marker("slow")]
        if slow:
            config.hook.pytest_deselected(items=slow)
            items[:] = [item for item in items if not item.get_closest_marker("slow")]
    if TRAIN_MISSING:
        skip = pytest.mark.skip(reason=TRAIN_SKIP)
        for item in items:
            if item.get_closest_marker("train"):
                item.add_marker(skip)


def shared_path(*parts: str) -> Path:
    """A path under ../shared, or skip the test with the reason."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared test data not found at {path} (set EDGECNN_SHARED)")
    return path


CORAL_MODEL = "mobilenet_v2_1.0_224_quant.tflite"  # coral_dir's quantized MobileNetV2 (ImageNet, standard metadata)


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


# --- one tiny trained model for the whole session --------------------------------------------------------------------
COLOUR_SIZE = 24
COLOURS = {"red": (200, 40, 40), "green": (40, 180, 60), "blue": (40, 60, 200)}


def colour_folder(root: Path, per_class: int, seed: int) -> Path:
    """One noisy flat colour per class (PNG): a tiny learnable dataset."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    for name, colour in COLOURS.items():
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = np.clip(np.array(colour) + rng.normal(0, 30, (COLOUR_SIZE, COLOUR_SIZE, 3)), 0, 255)
            Image.fromarray(pixels.astype(np.uint8)).save(root / name / f"{i}.png")
    return root


@pytest.fixture(scope="session")
def colour_run(tmp_path_factory):
    """A simple_cnn trained briefly on colour images, saved as a run folder (model, labels, config), and exported
    to tflite-fp32, tflite-int8 and onnx: (Keras model, export folder, val images, export report).

    Built once per session for every file that needs a small real trained export (tests marked ``train``);
    read it, do not change it: write into your own tmp_path.
    """
    import json

    import keras

    from edgecnn.data import load_folder
    from edgecnn.export import export
    from edgecnn.models import create_model

    root = tmp_path_factory.mktemp("colour_run")
    train, val = colour_folder(root / "train", 30, seed=0), colour_folder(root / "val", 12, seed=1)
    data = load_folder(train, COLOUR_SIZE)
    keras.utils.set_random_seed(0)
    model = create_model("simple_cnn", 3, (COLOUR_SIZE, COLOUR_SIZE, 3))
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy")
    model.fit(data.images.astype("float32"), data.labels, epochs=3, batch_size=16, verbose=0)
    run = root / "run"
    run.mkdir()
    model.save(run / "model.keras")
    (run / "labels.txt").write_text("".join(f"{c}\n" for c in data.class_names))
    (run / "config.json").write_text(json.dumps({"data": str(train), "val": str(val)}))
    report = export(run, "tflite-fp32,tflite-int8,onnx", root / "export", calib_samples=30)
    return model, root / "export", load_folder(val, COLOUR_SIZE), report
