"""The error contract on hostile input: one ``error:`` line (or the right answer), never silence or a traceback.

Each test is one case from a hostile pass over predict and the runtime: accelerator-compiled and
custom-op models, a library that is not a delegate, argparse errors, non-finite options and scores,
undecodable file names, FIFOs, labels files one line too long, native log lines.
"""

from __future__ import annotations

import ctypes.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import CORAL_MODEL

from edgecnn import cli
from edgecnn.errors import ModelError, UsageError
from edgecnn.runtime import Classifier

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def edgecnn(*args, timeout=120, **kwargs):
    return subprocess.run([sys.executable, "-m", "edgecnn", *map(str, args)], capture_output=True, timeout=timeout,
                          cwd=REPO, **kwargs)


def one_error_line(stderr: bytes | str, *needles: str) -> str:
    text = stderr.decode() if isinstance(stderr, bytes) else stderr
    lines = text.strip().splitlines()
    assert len(lines) == 1, f"expected one error line, got:\n{text}"
    assert lines[0].startswith("error: ") and "Traceback" not in text
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def tiny_onnx(path, head: str = "softmax"):
    """3 classes from the mean colour (16x16 NCHW); ``head="nan"`` outputs 0/0."""
    nodes = [helper.make_node("ReduceMean", ["image"], ["mean"], axes=[2, 3], keepdims=0),
             helper.make_node("MatMul", ["mean", "w"], ["logits"])]
    if head == "nan":
        nodes += [helper.make_node("Sub", ["logits", "logits"], ["zero"]),
                  helper.make_node("Div", ["zero", "zero"], ["probs"])]
    else:
        nodes.append(helper.make_node("Softmax", ["logits"], ["probs"], axis=1))
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [1, 3])],
        initializer=[helper.make_tensor("w", TensorProto.FLOAT, [3, 3], (np.eye(3) * 10).ravel().tolist())])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@pytest.fixture
def red_png(tmp_path):
    import cv2

    path = tmp_path / "red.png"
    cv2.imwrite(str(path), np.full((20, 20, 3), (30, 30, 220), np.uint8))
    return path


# ------------------------------------------------------------------ accelerator and custom-op models
def patched_coral(coral_dir, tmp_path, custom_code: str):
    """The Coral model with its first operator turned into custom op ``custom_code`` (as edgetpu_compiler does)."""
    flatbuffers = pytest.importorskip("flatbuffers")
    schema = pytest.importorskip("ai_edge_litert.schema_py_generated")
    data = (coral_dir / CORAL_MODEL).read_bytes()
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(data, 0))
    code = model.operatorCodes[0]
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.CUSTOM
    code.customCode = custom_code
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path = tmp_path / f"model_{custom_code}.tflite"
    path.write_bytes(bytes(builder.Output()))
    return path


def test_edgetpu_model_without_delegate_names_the_flag(coral_dir, tmp_path):
    from edgecnn.tflite_metadata.read import custom_ops

    path = patched_coral(coral_dir, tmp_path, "edgetpu-custom-op")
    assert custom_ops(path) == ["edgetpu-custom-op"] and custom_ops(coral_dir / CORAL_MODEL) == []
    result = edgecnn("predict", path, coral_dir / "cat.bmp")
    assert result.returncode == 2
    one_error_line(result.stderr, "compiled for a Coral Edge TPU", "--delegate libedgetpu.so.1")


@pytest.mark.parametrize("op, needles", [
    ("MyCustomOp", ("custom op(s) MyCustomOp", "--delegate LIB")),
    ("FlexMatrixDeterminant", ("TensorFlow ops (FlexMatrixDeterminant)", "Flex delegate", "--allow-tf-ops")),
])
def test_custom_op_model_names_the_op(coral_dir, tmp_path, op, needles):
    with pytest.raises(ModelError) as exc:
        Classifier(patched_coral(coral_dir, tmp_path, op))
    message = str(exc.value)
    assert "\n" not in message and "corrupt" not in message
    assert all(n in message for n in needles), message


def test_library_that_is_not_a_delegate_is_one_line_and_nothing_after(coral_dir):
    libc = ctypes.util.find_library("c") or "libc.so.6"
    result = edgecnn("predict", coral_dir / CORAL_MODEL, coral_dir / "cat.bmp", "--delegate", libc)
    assert result.returncode == 2
    one_error_line(result.stderr, f"{libc!r} is not a TFLite delegate library", "tflite_plugin_create_delegate")


# ------------------------------------------------------------------ native log lines
def test_native_stderr_drops_noise_keeps_real_lines_and_drops_all_when_raising(capfd):
    from edgecnn.native_logs import native_stderr

    with native_stderr():
        os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
        os.write(2, b"fully_quantize: 0, inference_type: 6, input_inference_type: UINT8\n")
        os.write(2, b"W0000 00:00:1764270000.123456  1234 tf_tfl_flatbuffer_helpers.cc:365] Ignored output_format.\n")
        os.write(2, b"a real problem\n")
    assert capfd.readouterr().err == "a real problem\n"
    with pytest.raises(RuntimeError):
        with native_stderr():
            os.write(2, b"ERROR: the reason, which the exception carries\n")
            raise RuntimeError("boom")
    assert capfd.readouterr().err == ""


def test_the_first_import_of_a_noisy_native_package_is_quiet(tmp_path):
    """TensorFlow logs through absl at import, before absl::InitializeLog(), whatever TF_CPP_MIN_LOG_LEVEL says
    (on CPUs where oneDNN is on by default: AVX-512 VNNI/BF16, AMX). A stand-in package writes such lines to fd 2
    at import, so this fails on any CPU without the quiet import; a real line still gets through."""
    pkg = tmp_path / "noisy_native"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        "import os\n"
        "os.write(2, b'WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\\n')\n"
        "os.write(2, b'I0000 00:00:1796579025.073252   10419 port.cc:153] oneDNN custom operations are on.\\n')\n"
        "os.write(2, b'a real problem\\n')\n"
        "VALUE = 42\n")
    code = ("import sys; from edgecnn import native_logs; "
            "sys.meta_path.insert(0, native_logs._QuietImport('noisy_native')); "
            "import noisy_native, noisy_native as again; assert noisy_native.VALUE == 42; "
            "print(noisy_native.__loader__)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(Path(__file__).resolve().parents[1])])}
    env.pop("EDGECNN_NATIVE_LOGS", None)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "a real problem\n"
    assert "_QuietLoader" not in result.stdout  # the module keeps its real loader


@pytest.mark.train
def test_importing_tensorflow_after_quiet_environment_prints_nothing():
    code = "from edgecnn.native_logs import quiet_environment; quiet_environment(); import keras, tensorflow"
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "EDGECNN_NATIVE_LOGS")}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0 and result.stderr == "", result.stderr[-2000:]


def test_opencv_warnings_stay_off_the_terminal_unless_verbose(tmp_path):
    missing = tmp_path / "missing.png"
    code = (f"import cv2; from edgecnn.native_logs import quiet_environment; quiet_environment(); "
            f"cv2.imread({str(missing)!r})")
    env = {k: v for k, v in os.environ.items() if k not in ("OPENCV_LOG_LEVEL", "EDGECNN_NATIVE_LOGS")}
    quiet = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
    loud = subprocess.run([sys.executable, "-c", code.replace("quiet_environment();", "")], capture_output=True,
                          text=True, env=env, timeout=60)
    assert "WARN" in loud.stderr  # the stand-in really warns without quiet_environment


def test_predict_prints_no_native_log_lines_unless_verbose(coral_dir):
    args = ("predict", coral_dir / CORAL_MODEL, coral_dir / "cat.bmp", "--top-k", "1")
    quiet = edgecnn(*args)
    assert quiet.returncode == 0 and quiet.stderr == b"", quiet.stderr
    assert b"Egyptian cat" in quiet.stdout
    verbose = edgecnn(*args, "-v")
    assert b"INFO: Created TensorFlow Lite XNNPACK delegate" in verbose.stderr


# ------------------------------------------------------------------ command line
def test_argparse_errors_are_one_line_without_usage():
    for args in (("predict",), ("predict", "m.tflite", "x.jpg", "--top-k", "zero"), ("nonsense",)):
        result = edgecnn(*args)
        assert result.returncode == 2
        line = one_error_line(result.stderr)
        assert "usage:" not in result.stderr.decode() and "--help" in line


@pytest.mark.parametrize("option", [["--mean", "nan"], ["--std", "inf"], ["--mean", "1,-inf,2"]])
def test_non_finite_mean_or_std_is_refused(tmp_path, red_png, option, capsys):
    model = tiny_onnx(tmp_path / "m.onnx")
    with pytest.raises(SystemExit) as exc:
        cli.main(["predict", str(model), str(red_png), *option])
    assert exc.value.code == 2
    one_error_line(capsys.readouterr().err, f"argument {option[0]}", "finite")
    with pytest.raises(UsageError, match="finite"):
        Classifier(model, mean=float("nan"))


def test_nan_score_is_an_error_not_an_answer(tmp_path, red_png, capsys):
    model = tiny_onnx(tmp_path / "nan.onnx", head="nan")
    rc = cli.main(["predict", str(model), str(red_png), "--labels", str(labels_file(tmp_path, 3)),
                   "--mean", "0", "--std", "255"])
    captured = capsys.readouterr()
    assert rc == 2 and captured.out == ""
    one_error_line(captured.err, "nan.onnx gave NaN scores", "red.png")


def labels_file(tmp_path, n, first=None):
    names = ["red", "green", "blue"][:n]
    path = tmp_path / f"labels_{first or n}.txt"
    path.write_text("".join(f"{x}\n" for x in ([first] if first else []) + names))
    return path


def test_labels_one_line_longer_are_aligned_only_after_background(tmp_path, red_png, capsys):
    model = tiny_onnx(tmp_path / "m.onnx")
    common = ["predict", str(model), str(red_png), "--mean", "0", "--std", "255", "--top-k", "1", "--json"]
    assert cli.main(common + ["--labels", str(labels_file(tmp_path, 3, first="background"))]) == 0
    assert json.loads(capsys.readouterr().out)["top"][0]["label"] == "red"
    assert cli.main(common + ["--labels", str(labels_file(tmp_path, 3, first="unknown"))]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    one_error_line(captured.err, "has 4 labels but the model has 3 outputs")


# ------------------------------------------------------------------ inputs
def test_json_line_is_valid_utf8_for_undecodable_file_name_bytes(tmp_path, red_png):
    folder = tmp_path / "photos"
    folder.mkdir()
    name = os.fsdecode(b"caf\xe9.png")  # Latin-1 bytes: not UTF-8
    (folder / name).write_bytes(red_png.read_bytes())
    model = tiny_onnx(tmp_path / "m.onnx")
    env = {**os.environ, "LC_ALL": "C.UTF-8"}
    result = edgecnn("predict", model, folder, "--json", "--mean", "0", "--std", "255", env=env)
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout.decode("utf-8"))  # strict: raises on raw 0xE9
    assert record["input"] == str(folder) + "/caf\\xe9.png"
    human = edgecnn("predict", model, folder, "--mean", "0", "--std", "255", env=env)
    assert human.stdout.decode("utf-8").startswith(str(folder) + "/caf\\xe9.png: ")


def test_fifo_input_is_refused_instead_of_blocking(tmp_path, red_png):
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    model = tiny_onnx(tmp_path / "m.onnx")
    result = edgecnn("predict", model, fifo, red_png, "--mean", "0", "--std", "255", timeout=60)
    assert result.returncode == 1
    assert red_png.name.encode() in result.stdout
    assert f"error: {fifo} is a named pipe (FIFO), not an image file".encode() in result.stderr
    as_model = edgecnn("predict", fifo, red_png, timeout=60)
    assert as_model.returncode == 2
    one_error_line(as_model.stderr, "is a named pipe (FIFO), not a model file")


# ------------------------------------------------------------------ resource limits
def png_bomb(path, width: int, height: int):
    """A real gray PNG of zeros, compressed as it is written (a few hundred KB for 16000x16000)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    comp, row, parts = zlib.compressobj(9), b"\x00" * (width + 1), []
    for _ in range(height):
        parts.append(comp.compress(row))
    parts.append(comp.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    body = chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)
    return path


def test_image_over_the_pixel_budget_is_refused_before_decoding(tmp_path, red_png, capsys):
    bomb = png_bomb(tmp_path / "bomb.png", 16000, 16000)
    assert bomb.stat().st_size < 1_000_000
    model = tiny_onnx(tmp_path / "m.onnx")
    rc = cli.main(["predict", str(model), str(bomb), str(red_png), "--mean", "0", "--std", "255"])
    captured = capsys.readouterr()
    assert rc == 1 and "red.png" in captured.out
    assert (f"error: {bomb} is 16000x16000 pixels (256.0 MP), over the 50 MP limit; pass --max-megapixels 256"
            in captured.err)
    medium = png_bomb(tmp_path / "medium.png", 3000, 2000)  # 6 MP: under the default, over a lowered limit
    assert cli.main(["predict", str(model), str(medium), "--max-megapixels", "5"]) == 1
    assert "over the 5 MP limit" in capsys.readouterr().err
    assert cli.main(["predict", str(model), str(medium), "--max-megapixels", "6.5", "--mean", "0"]) == 0


def test_image_header_sizes_match_the_decoded_images(tmp_path):
    import cv2

    from edgecnn.runtime.imageinfo import image_size
    from edgecnn.runtime.inputs import is_image_file

    img = np.zeros((37, 53, 3), np.uint8)
    for ext in (".png", ".jpg", ".bmp", ".webp", ".tif", ".ppm"):
        path = tmp_path / f"x{ext}"
        assert cv2.imwrite(str(path), img)
        assert image_size(path.read_bytes()) == (53, 37), ext
    for ext in (".png", ".jpg", ".bmp", ".webp", ".tif", ".ppm", ".jp2", ".sr", ".hdr", ".pfm"):
        path = tmp_path / f"y{ext}"
        if cv2.imwrite(str(path), img if ext not in (".hdr", ".pfm") else img.astype(np.float32)):
            assert is_image_file(path) and cv2.imread(str(path)) is not None, ext
    PIL = pytest.importorskip("PIL.Image")
    for name, kwargs in (("x.gif", {}), ("ll.webp", {"lossless": True}), ("p.jpg", {"progressive": True}),
                         ("lzw.tif", {"compression": "tiff_lzw"}), ("icc.jpg", {"icc_profile": b"x" * 70000})):
        PIL.fromarray(img).save(tmp_path / name, **kwargs)
        assert image_size((tmp_path / name).read_bytes()) == (53, 37), name
    assert image_size(b"hello") is None


def huge_input_onnx(path):
    graph = helper.make_graph(
        [helper.make_node("GlobalAveragePool", ["image"], ["m"]), helper.make_node("Flatten", ["m"], ["f"]),
         helper.make_node("MatMul", ["f", "w"], ["y"])], "huge",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 100000, 100000])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
        initializer=[helper.make_tensor("w", TensorProto.FLOAT, [3, 3], np.eye(3).ravel().tolist())])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_model_with_a_huge_input_is_refused_at_load(tmp_path, red_png, capsys):
    model = huge_input_onnx(tmp_path / "huge.onnx")
    assert cli.main(["predict", str(model), str(red_png)]) == 2
    one_error_line(capsys.readouterr().err, "input is 100000x100000 pixels", "over edgecnn's limit")


def test_tflite_with_a_huge_input_is_refused_before_allocating_it(coral_dir, tmp_path):
    """LiteRT allocates every tensor in allocate_tensors(): a 30000x30000 input got the process OOM-killed."""
    flatbuffers = pytest.importorskip("flatbuffers")
    schema = pytest.importorskip("ai_edge_litert.schema_py_generated")
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel((coral_dir / CORAL_MODEL).read_bytes(), 0))
    graph = model.subgraphs[0]
    graph.tensors[graph.inputs[0]].shape = np.array([1, 30000, 30000, 3], np.int32)
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path = tmp_path / "huge.tflite"
    path.write_bytes(bytes(builder.Output()))
    result = edgecnn("predict", path, coral_dir / "cat.bmp", timeout=60)
    assert result.returncode == 2
    one_error_line(result.stderr, "input is 30000x30000 pixels")


def test_benchmark_reports_unusable_models_as_failed_rows_and_keeps_earlier_results(tmp_path):
    from edgecnn.bench.run import BenchConfig, benchmark

    good = tiny_onnx(tmp_path / "good.onnx")
    huge = huge_input_onnx(tmp_path / "huge.onnx")
    two = tmp_path / "two.onnx"
    graph = helper.make_graph(
        [helper.make_node("Identity", ["image"], ["a"]), helper.make_node("Identity", ["image"], ["b"])], "two",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 3, 16, 16]) for n in "ab"])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(two))
    config = BenchConfig(models=[str(huge), str(two), str(good)], threads=[1], runs=3, warmup=1,
                         out=str(tmp_path / "out"), plots=False, plain_progress=True)
    rows = benchmark(config).rows
    assert [r.status for r in rows] == ["failed", "failed", "ok"]
    assert "100000x100000" in rows[0].reason and "2 outputs" in rows[1].reason
    assert "usage" not in rows[1].reason
    with pytest.raises(UsageError, match="already holds the results of an earlier benchmark.*--force"):
        benchmark(config)
    config.force = True
    config.models = [str(good)]
    assert [r.status for r in benchmark(config).rows] == ["ok"]


# ------------------------------------------------------------------ export
def test_export_out_file_is_refused_before_tensorflow_loads(tmp_path):
    (tmp_path / "model.keras").write_bytes(b"PK\x03\x04")
    (tmp_path / "taken").write_text("a file, not a folder")
    code = ("import sys\nfrom edgecnn import cli\n"
            f"rc = cli.main(['export', {str(tmp_path / 'model.keras')!r}, '--out', {str(tmp_path / 'taken')!r}])\n"
            "print(rc, 'tensorflow' in sys.modules, 'keras' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.split() == ["2", "False", "False"], result.stderr
    one_error_line(result.stderr, f"--out {tmp_path / 'taken'} is a file")


def test_ctrl_c_swallowed_inside_a_conversion_still_stops_the_export(tmp_path, monkeypatch):
    """TensorFlow's converter can catch the KeyboardInterrupt of a SIGINT (or turn it into a conversion
    error); the export must stop anyway, leaving no artifact behind."""
    import signal
    from types import SimpleNamespace

    import edgecnn.export.writer as export_mod
    from edgecnn.card import ModelCard
    from edgecnn.errors import ExportError
    from edgecnn.formats import get_format

    def swallowing_converter(job, fmt, dest):
        try:
            signal.raise_signal(signal.SIGINT)
        except KeyboardInterrupt:
            pass  # what a converter that swallows it does
        dest.write_bytes(b"TFL3 half a model")
        return ModelCard(labels=["a", "b"], input_height=8, input_width=8)

    def failing_converter(job, fmt, dest):
        try:
            signal.raise_signal(signal.SIGINT)
        except KeyboardInterrupt:
            raise ExportError("tflite-fp32: conversion failed (KeyboardInterrupt)") from None

    fmt = get_format("tflite-fp32")
    job = SimpleNamespace(written={})
    # A shell starts background jobs with SIGINT ignored (`pytest &`, nohup): give this test Python's own
    # Ctrl-C handler, as an interactive run has, and put back what was there.
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        for converter in (swallowing_converter, failing_converter):
            monkeypatch.setattr(export_mod, "_exporter", lambda f, converter=converter: converter)
            with pytest.raises(KeyboardInterrupt):
                export_mod._export_one(job, fmt, tmp_path, None, None, [])
            assert not (tmp_path / fmt.filename).exists() and job.written == {}
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, inherited)


def test_folders_are_scanned_by_content_not_by_suffix(tmp_path, red_png, capsys):
    """predict and camera take a PNG named `snapshot` or `frame.dat`, skip `notes.jpg` (text) and never open a FIFO."""
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    (folder / "snapshot").write_bytes(red_png.read_bytes())
    (folder / "sub" / "frame.dat").write_bytes(red_png.read_bytes())
    (folder / "notes.jpg").write_text("shopping list\n")
    os.mkfifo(folder / "pipe.png")
    model = tiny_onnx(tmp_path / "m.onnx")
    labels = labels_file(tmp_path, 3)
    assert cli.main(["predict", str(model), str(folder), "--json", "--labels", str(labels), "--mean", "0",
                     "--std", "255"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(os.path.relpath(r["input"], folder), r["top"][0]["label"]) for r in records] == [
        ("snapshot", "red"), ("sub/frame.dat", "red")]
    rc = cli.main(["camera", str(model), "--source", str(folder), "--labels", str(labels), "--headless", "--json"])
    lines = capsys.readouterr().out.splitlines()
    assert rc == 0 and json.loads(lines[-1])["summary"]["frames"] == 1  # not recursive: `snapshot` only


def test_systemd_unit_restarts_on_exit_3_and_not_on_exit_2():
    import configparser

    unit = configparser.ConfigParser(strict=False, interpolation=None)
    from edgecnn.deploy.ansible import PLAYBOOKS  # the installed package's template (on the emulated Pi too)

    unit.read(PLAYBOOKS / "templates" / "edgecnn-camera.service.j2")
    service = unit["Service"]
    assert service["Restart"] in ("on-failure", "always")  # exit 3 (source lost or never up) is a failure
    assert service["RestartPreventExitStatus"].split() == ["2"]


def test_a_log_line_from_another_thread_waits_for_a_native_capture(capfd):
    """While one thread has fd 2 captured around a native call (an image decode), another thread's log line is
    neither swallowed by the capture nor reported as the decoder's message: it waits and then reaches stderr."""
    import logging
    import threading

    from edgecnn import native_logs

    cli.configure_logging()
    thread = threading.Thread(target=lambda: logging.getLogger("edgecnn.test").warning("from another thread"))
    with native_logs.captured_stderr() as captured:
        thread.start()
        thread.join(0.5)
        assert thread.is_alive()  # waiting for the capture to end
        os.write(2, b"Corrupt JPEG data: 2 extraneous bytes\n")
    thread.join(10)
    assert b"from another thread" not in captured.data and b"Corrupt JPEG" in captured.data
    assert "from another thread" in capfd.readouterr().err
