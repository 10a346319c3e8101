"""End to end: built-in digits -> train -> export -> runtime -> comparison table (reduced epochs)."""

import json

import pytest

from edgecnn.data.digits import write_digits_dataset
from edgecnn.data.folder import scan_folder

pytestmark = pytest.mark.train  # skipped without the train extra (conftest.py)


def test_digits_dataset_is_a_real_stratified_image_folder(tmp_path):
    root = write_digits_dataset(tmp_path / "digits")
    train, val = scan_folder(root / "train"), scan_folder(root / "val")
    assert train.class_names == val.class_names == [str(d) for d in range(10)]
    assert len(train.files) + len(val.files) == 1797
    assert 0.18 < len(val.files) / 1797 < 0.22
    import cv2

    img = cv2.imread(str(train.files[0][0]), cv2.IMREAD_UNCHANGED)
    assert img.shape == (32, 32, 3) and img.max() > 128  # real ink, upscaled, RGB


@pytest.mark.slow
def test_quickstart_end_to_end_prints_no_native_log_lines(tmp_path):
    """`edgecnn quickstart` as a user runs it: the table on stdout, edgecnn's progress on stderr and no native
    log line there (no LiteRT "INFO: Created TensorFlow Lite XNNPACK delegate", no converter
    "fully_quantize: 0, ...", no absl "I0000 ..."/"W0000 ..." lines)."""
    import re
    import subprocess
    import sys

    from edgecnn.quickstart import QUICKSTART_FORMATS

    result = subprocess.run([sys.executable, "-m", "edgecnn", "quickstart", "--out", str(tmp_path / "qs"),
                             "--epochs", "3"], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    native = [line for line in result.stderr.splitlines()
              if re.match(r"(INFO|WARNING|ERROR): |[IWEF]\d{4} |fully_quantize: |\[\w+ @ 0x", line)]
    assert native == [], result.stderr[-3000:]
    assert "[3/4] exporting" in result.stderr  # edgecnn's own progress is there
    assert "format" in result.stdout and "median latency" in result.stdout and "tflite-int8" in result.stdout
    saved = json.loads((tmp_path / "qs" / "quickstart.json").read_text())
    results = saved["results"]
    assert [r["format"] for r in results] == list(QUICKSTART_FORMATS)
    by_format = {r["format"]: r for r in results}
    for r in results:
        path = tmp_path / "qs" / r["path"]  # relative to the quickstart folder
        assert path.is_file() and r["size_bytes"] == path.stat().st_size
        assert r["accuracy"] > 0.85, (r["format"], r["accuracy"])
        assert r["median_latency_ms"] > 0
    assert abs(by_format["tflite-int8"]["accuracy"] - by_format["tflite-fp32"]["accuracy"]) <= 0.03
    assert by_format["tflite-int8"]["size_bytes"] < 0.5 * by_format["tflite-fp32"]["size_bytes"]
    assert all(r["path"].startswith("export/model") for r in results)  # relative, never a temp path
