"""End to end: built-in digits -> train -> export -> runtime -> comparison table (reduced epochs)."""

import json

import pytest

from edgecnn.data.digits import write_digits_dataset
from edgecnn.data.folder import scan_folder


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
def test_quickstart_end_to_end(tmp_path):
    from edgecnn.quickstart import QUICKSTART_FORMATS, results_table, run_quickstart

    results = run_quickstart(tmp_path / "qs", epochs=3, verbose=0)
    assert [r.format for r in results] == list(QUICKSTART_FORMATS)
    by_format = {r.format: r for r in results}
    for r in results:
        assert r.path.is_file() and r.size_bytes == r.path.stat().st_size
        assert r.accuracy > 0.85, (r.format, r.accuracy)
        assert r.median_ms > 0
    assert abs(by_format["tflite-int8"].accuracy - by_format["tflite-fp32"].accuracy) <= 0.03
    assert by_format["tflite-int8"].size_bytes < 0.5 * by_format["tflite-fp32"].size_bytes
    table = results_table(results)
    assert "format" in table and "median latency" in table and "tflite-int8" in table
    saved = json.loads((tmp_path / "qs" / "quickstart.json").read_text())
    assert [r["format"] for r in saved["results"]] == list(QUICKSTART_FORMATS)
