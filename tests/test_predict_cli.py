"""`edgecnn predict`: human and JSON output, folders and globs, failing inputs, exit codes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
from conftest import CORAL_MODEL

from edgecnn.cli import main

FEEDBACK = ("Super confident!", "Pretty sure!", "Hmm, I think...", "Not very sure...")


def predict(capsys, *args):
    code = main(["predict", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def json_lines(out):
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_coral_cat_human_output(capsys, coral_dir):
    code, out, err = predict(capsys, coral_dir / CORAL_MODEL, coral_dir / "cat.bmp",
                             "--labels", coral_dir / "imagenet_labels.txt", "--top-k", "3")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith(f"{coral_dir / 'cat.bmp'}: Egyptian cat  0.8")
    assert any(phrase in lines[0] for phrase in FEEDBACK) and lines[0].endswith(" ms)")
    assert len(lines) == 4
    ranked = [line.split(None, 2) for line in lines[1:]]
    assert [r[0] for r in ranked] == ["1.", "2.", "3."]
    scores = [float(r[1]) for r in ranked]
    assert scores == sorted(scores, reverse=True) and ranked[0][2] == "Egyptian cat"


def test_coral_json_output_schema(capsys, coral_dir):
    code, out, err = predict(capsys, coral_dir / CORAL_MODEL, coral_dir / "cat.bmp", coral_dir / "grace_hopper.bmp",
                             "--json", "--top-k", "2", "--threads", "2")
    assert code == 0, err
    records = json_lines(out)
    assert [r["top"][0]["label"] for r in records] == ["Egyptian cat", "military uniform"]
    for r in records:
        assert set(r) == {"input", "top", "latency_ms"}
        assert isinstance(r["latency_ms"], float) and r["latency_ms"] > 0
        assert len(r["top"]) == 2
        for t in r["top"]:
            assert set(t) == {"label", "index", "score"}
            assert isinstance(t["index"], int) and 0.0 <= t["score"] <= 1.0
    assert records[0]["top"][0]["index"] == 286


@pytest.fixture
def image_tree(tmp_path, coral_dir):
    """photos/a.bmp, photos/sub/b.png (a PNG re-encode), photos/sub/broken.jpg, photos/notes.txt."""
    root = tmp_path / "photos"
    (root / "sub").mkdir(parents=True)
    shutil.copy(coral_dir / "cat.bmp", root / "a.bmp")
    cv2.imwrite(str(root / "sub" / "b.png"), cv2.imread(str(coral_dir / "grace_hopper.bmp")))
    (root / "sub" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    (root / "notes.txt").write_text("not an image, and not picked up from a folder")
    return root


def test_folder_is_recursive_and_a_broken_image_fails_alone(capsys, coral_dir, image_tree):
    code, out, err = predict(capsys, coral_dir / CORAL_MODEL, image_tree, "--json", "--top-k", "1")
    assert code == 1
    records = json_lines(out)
    got = {r["input"].replace(str(image_tree), "").lstrip("/"): r["top"][0]["label"] for r in records}
    assert got == {"a.bmp": "Egyptian cat", "sub/b.png": "military uniform"}
    err_lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(err_lines) == 1 and "broken.jpg" in err_lines[0]
    assert "1 of 3 input(s) failed" in err


def test_glob_and_missing_inputs(capsys, coral_dir, image_tree, tmp_path):
    code, out, err = predict(capsys, coral_dir / CORAL_MODEL, f"{image_tree}/**/*.png", tmp_path / "missing.jpg",
                             f"{tmp_path}/*.nothing", "--json")
    assert code == 1
    assert [r["top"][0]["label"] for r in json_lines(out)] == ["military uniform"]
    assert "image not found" in err and "missing.jpg" in err
    assert "no files match" in err


def test_all_good_inputs_exit_0_and_labels_mismatch_exits_2(capsys, coral_dir, tmp_path):
    code, out, _ = predict(capsys, coral_dir / CORAL_MODEL, coral_dir / "bird.bmp", "--top-k", "1")
    assert code == 0 and len(out.splitlines()) == 1
    labels = tmp_path / "labels.txt"
    labels.write_text("cat\ndog\n")
    code, out, err = predict(capsys, coral_dir / CORAL_MODEL, coral_dir / "bird.bmp", "--labels", labels)
    assert code == 2 and out == ""
    assert err.strip().startswith("error: labels file") and "2 labels but the model has 1001 outputs" in err
    assert len(err.strip().splitlines()) == 1


def test_bad_model_file_is_one_error_line(tmp_path, coral_dir):
    bad = tmp_path / "model.tflite"
    bad.write_text("hello")
    result = subprocess.run([sys.executable, "-m", "edgecnn", "predict", str(bad), str(coral_dir / "cat.bmp")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(bad) in lines[0]
    assert "Traceback" not in result.stderr


def test_float_onnx_without_card_notes_its_normalization(capsys, tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 4, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])
    nodes = [helper.make_node("GlobalAveragePool", ["x"], ["g"]), helper.make_node("Flatten", ["g"], ["f"]),
             helper.make_node("Softmax", ["f"], ["y"], axis=-1)]
    model = helper.make_model(helper.make_graph(nodes, "m", [x], [y]), opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    img = np.zeros((4, 4, 3), np.uint8)
    img[..., 2] = 255  # red
    cv2.imwrite(str(tmp_path / "red.png"), img)
    labels = tmp_path / "labels.txt"
    labels.write_text("background\nred\ngreen\nblue\n")
    code, out, err = predict(capsys, path, tmp_path / "red.png", "--labels", labels, "--json")
    assert code == 0
    assert json_lines(out)[0]["top"][0]["label"] == "red"
    assert "no model card" in err and "-1..1" in err


def test_a_damaged_jpeg_is_classified_with_one_line_of_ours_not_libjpegs(tmp_path, coral_dir):
    """libjpeg writes "Corrupt JPEG data: ..." straight to fd 2 for a file it still decodes: predict names the file
    in its own warning instead (and -v shows libjpeg's line)."""
    data = (coral_dir / "cat_720p.jpg").read_bytes()
    assert data.endswith(b"\xff\xd9")
    damaged = tmp_path / "damaged.jpg"
    damaged.write_bytes(data[:-2] + b"\x00\x01\x02" + data[-2:])
    cmd = [sys.executable, "-m", "edgecnn", "predict", str(coral_dir / CORAL_MODEL), str(damaged), "--top-k", "1"]
    quiet = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert quiet.returncode == 0 and "cat" in quiet.stdout.lower(), quiet.stderr
    assert quiet.stderr.splitlines() == [line for line in quiet.stderr.splitlines() if line.startswith("warning:")]
    assert len(quiet.stderr.splitlines()) == 1 and "damaged.jpg: damaged image data" in quiet.stderr
    verbose = subprocess.run(cmd + ["-v"], capture_output=True, text=True, timeout=120)
    assert "Corrupt JPEG data" in verbose.stderr
