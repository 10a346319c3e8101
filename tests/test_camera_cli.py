"""`edgecnn camera` end to end on generated videos: JSON lines, recording, SIGTERM, reconnect, real model."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import cv2
import numpy as np
import pytest
from conftest import CORAL_MODEL

from edgecnn import cli
from edgecnn.errors import SourceError
from edgecnn.video import frame_sources
from edgecnn.video.frame_sources import SourceReadError
from edgecnn.video.server import PreviewServer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RED_BGR = (30, 40, 220)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A 16x16 ONNX classifier: mean colour per channel -> softmax over red/green/blue, plus its labels."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    folder = tmp_path_factory.mktemp("model")
    weights = helper.make_tensor("w", TensorProto.FLOAT, [3, 3], (np.eye(3) * 10).flatten().tolist())
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["image"], ["mean"], axes=[2, 3], keepdims=0),
            helper.make_node("MatMul", ["mean", "w"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probs"], axis=1),
        ],
        "tiny",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [1, 3])],
        initializer=[weights],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path = folder / "tiny.onnx"
    onnx.save(model, str(path))
    labels = folder / "labels.txt"
    labels.write_text("red\ngreen\nblue\n")
    return str(path), str(labels)


def write_video(path, frames: int, color=RED_BGR, image=None, size=(64, 48)) -> str:
    """An MJPG video of ``frames`` frames (a solid colour or ``image``), each stamped with its number."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, size)
    for i in range(frames):
        frame = cv2.resize(image, size) if image is not None else np.full((size[1], size[0], 3), color, np.uint8)
        cv2.putText(frame, str(i), (2, 40), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1)
        writer.write(frame)
    writer.release()
    return str(path)


@pytest.fixture(scope="module")
def video300(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("video") / "clip.avi", 300)


def frame_count(path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


def json_lines(text: str) -> tuple[list[dict], dict]:
    lines = [json.loads(line) for line in text.splitlines()]
    assert "summary" in lines[-1], "the last stdout line is the summary"
    return lines[:-1], lines[-1]["summary"]


def test_json_line_per_frame_and_saved_video_has_every_frame(tiny_model, video300, tmp_path, capsys):
    model, labels = tiny_model
    out = tmp_path / "annotated.mp4"
    rc = cli.main(["camera", model, "--labels", labels, "--source", video300, "--headless", "--json",
                   "--save", str(out), "--top-k", "2"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    frames, summary = json_lines(captured.out)
    assert [f["frame"] for f in frames] == list(range(300))
    assert all(f["top"][0]["label"] == "red" and len(f["top"]) == 2 for f in frames)
    assert set(frames[0]) == {"frame", "t", "top", "latency_ms", "dropped"}
    assert set(frames[0]["latency_ms"]) == {"preprocess", "inference", "total"}
    assert summary["frames"] == 300 and summary["dropped"] == 0 and summary["stop"] == "end of stream"
    assert summary["fps"] > 0 and summary["latency_ms"]["total"]["p95"] is not None
    assert frame_count(out) == 300
    assert "saved 300 frames" in captured.err


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_cleanly_with_summary_and_playable_video(signum, tiny_model, video300, tmp_path):
    model, labels = tiny_model
    out = tmp_path / "stopped.mp4"
    proc = subprocess.Popen(
        # 10 fps: the 300 frames last 30 s, room for two busy cores to deliver the signal before the clip ends
        [sys.executable, "-m", "edgecnn", "camera", model, "--labels", labels, "--source", video300,
         "--fps", "10", "--headless", "--json", "--save", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
    )
    first = [proc.stdout.readline() for _ in range(10)]
    proc.send_signal(signum)
    rest, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    frames, summary = json_lines("".join(first) + rest)
    assert summary["stop"] == "stopped" and 10 <= summary["frames"] < 300
    assert len(frames) == summary["frames"]
    assert frame_count(out) == summary["frames"]


def test_truncated_video_ends_cleanly_at_the_cut(tiny_model, video300, tmp_path, capsys):
    model, labels = tiny_model
    data = open(video300, "rb").read()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])
    rc = cli.main(["camera", model, "--labels", labels, "--source", str(cut), "--headless", "--json"])
    captured = capsys.readouterr()
    frames, summary = json_lines(captured.out)
    assert rc == 0 and "Traceback" not in captured.err
    assert 100 < summary["frames"] == len(frames) < 300 and summary["stop"] == "end of stream"


class FailingCamera:
    """A live source that fails after 5 frames and cannot be reopened."""

    name = "fake-cam"
    live = True
    fps = 30.0

    def __init__(self):
        self.frames = self.opens = 0

    def open(self):
        self.opens += 1
        if self.opens > 1:
            raise SourceError("fake-cam is unplugged")

    def read(self):
        if self.frames >= 5:
            raise SourceReadError("no frame from fake-cam")
        self.frames += 1
        time.sleep(0.01)
        return np.full((48, 64, 3), RED_BGR, np.uint8)

    def close(self):
        pass


def test_failing_source_reconnects_then_exits_with_summary(tiny_model, monkeypatch, capsys):
    model, labels = tiny_model
    monkeypatch.setattr(frame_sources, "open_source", lambda *a, **k: FailingCamera())
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    rc = cli.main(["camera", model, "--labels", labels, "--source", "0", "--reconnect", "3",
                   "--reconnect-delay", "0.01"])
    captured = capsys.readouterr()
    assert rc == 3
    assert "no display found" in captured.err, "falls back to headless with a notice"
    for attempt in ("1/3", "2/3", "3/3"):
        assert f"reconnect attempt {attempt} in" in captured.err
        assert f"reconnect attempt {attempt} failed: fake-cam is unplugged" in captured.err
    assert "error: lost fake-cam (no frame from fake-cam) and 3 reconnect attempts failed" in captured.err
    assert "Traceback" not in captured.err
    processed, dropped = map(int, re.search(r"summary: (\d+) frames \(\d+ classified, (\d+) dropped\)",
                                             captured.out).groups())
    assert processed >= 1 and processed + dropped == 5
    assert "stopped: source lost" in captured.out and ": red 100.0%" in captured.out


def test_http_stream_that_dies_is_retried_then_reported(tiny_model, capsys):
    model, labels = tiny_model
    server = PreviewServer("127.0.0.1", 0).start()
    url = server.url + "stream.mjpg"

    def feed():
        sent_to_viewer = 0
        deadline = time.monotonic() + 20
        while sent_to_viewer < 20 and time.monotonic() < deadline:
            server.publish(np.full((48, 64, 3), RED_BGR, np.uint8), None)
            sent_to_viewer += server.state.viewers > 0
            time.sleep(0.02)
        server.close()  # the stream dies mid-run

    threading.Thread(target=feed, daemon=True).start()
    rc = cli.main(["camera", model, "--labels", labels, "--source", url, "--headless", "--json",
                   "--reconnect", "2", "--reconnect-delay", "0.01"])
    captured = capsys.readouterr()
    assert rc == 3, captured.err
    assert "reconnect attempt 2/2" in captured.err and "Traceback" not in captured.err
    frames, summary = json_lines(captured.out)
    assert summary["stop"] == "source lost" and summary["frames"] == len(frames) >= 1


def test_bad_arguments_are_one_line_errors(tiny_model, video300, capsys):
    model, labels = tiny_model
    assert cli.main(["camera", model, "--source", "missing.mp4"]) == 2
    assert cli.main(["camera", model, "--source", video300, "--save", "out.gif"]) == 2
    assert cli.main(["camera", model, "--source", video300, "--serve", "host:port"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("error: source not found: 'missing.mp4'")
    assert err[1].startswith("error: Received --save out.gif; expected a file ending in .mp4")
    assert err[2].startswith("error: Received --serve 'host:port'")


def test_real_pretrained_model_classifies_a_video_and_a_folder_of_a_cat(coral_dir, tmp_path, capsys):
    model = coral_dir / CORAL_MODEL
    labels = coral_dir / "imagenet_labels.txt"
    cat = cv2.imread(str(coral_dir / "cat.bmp"))
    folder = tmp_path / "frames"
    folder.mkdir()
    cv2.imwrite(str(folder / "cat.png"), cat)
    video = write_video(tmp_path / "cat.avi", 4, image=cat, size=(320, 240))
    for source, count in ((str(folder), 1), (video, 4)):
        rc = cli.main(["camera", str(model), "--labels", str(labels), "--source", source, "--headless", "--json"])
        frames, summary = json_lines(capsys.readouterr().out)
        assert rc == 0 and summary["frames"] == len(frames) == count
        assert all("cat" in f["top"][0]["label"] and len(f["top"]) == 5 for f in frames), frames[0]["top"]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_stream_that_comes_up_5s_after_start_is_waited_for(tiny_model, capsys):
    """A camera or NVR that boots slower than the device: the first open fails, a later attempt connects."""
    model, labels = tiny_model
    port = free_port()
    started = threading.Event()
    servers = []

    def late_server():
        time.sleep(5)
        server = PreviewServer("127.0.0.1", port).start()
        servers.append(server)
        started.set()
        deadline = time.monotonic() + 30
        while not server.state.closed and time.monotonic() < deadline:
            server.publish(np.full((48, 64, 3), RED_BGR, np.uint8), None)
            time.sleep(0.02)

    threading.Thread(target=late_server, daemon=True).start()
    t0 = time.monotonic()
    try:
        rc = cli.main(["camera", model, "--labels", labels, "--source", f"http://127.0.0.1:{port}/stream.mjpg",
                       "--headless", "--json", "--max-frames", "5"])
    finally:
        for server in servers:
            server.close()
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert started.is_set() and time.monotonic() - t0 >= 5
    assert "reconnect attempt 1/5" in captured.err and "connected to http://127.0.0.1" in captured.err
    frames, summary = json_lines(captured.out)
    assert summary["frames"] == len(frames) == 5 and summary["stop"] == "max frames"
    assert all(f["top"][0]["label"] == "red" for f in frames)


def test_stream_that_never_comes_up_exits_3_after_the_attempts(tiny_model, capsys):
    model, labels = tiny_model
    url = f"http://127.0.0.1:{free_port()}/stream.mjpg"
    rc = cli.main(["camera", model, "--labels", labels, "--source", url, "--headless", "--json",
                   "--reconnect", "2", "--reconnect-delay", "0.01"])
    captured = capsys.readouterr()
    assert rc == 3, captured.err
    assert "reconnect attempt 2/2 failed" in captured.err and "Traceback" not in captured.err
    assert captured.err.splitlines()[-1].startswith(f"error: could not open {url}")
    assert json_lines(captured.out)[1]["frames"] == 0


def test_a_file_that_is_not_a_video_is_one_error_line_and_exit_2(tiny_model, tmp_path, capsys):
    model, labels = tiny_model
    notes = tmp_path / "notes.jpg"
    notes.write_text("shopping list\n")
    rc = cli.main(["camera", model, "--labels", labels, "--source", str(notes), "--headless", "--json"])
    captured = capsys.readouterr()
    assert rc == 2 and captured.out == ""
    assert [line for line in captured.err.splitlines() if not line.startswith("note: ")] == [
        f"error: {notes} is not a video or image OpenCV can read (no frame could be decoded); pass a video file, "
        f"a folder of images, a camera or a stream"]


def test_folder_skips_a_truncated_jpeg_as_predict_rejects_it(tiny_model, tmp_path, capsys):
    model, labels = tiny_model
    folder = tmp_path / "frames"
    folder.mkdir()
    ok, data = cv2.imencode(".jpg", np.full((48, 64, 3), RED_BGR, np.uint8))
    (folder / "a_good.jpg").write_bytes(data.tobytes())
    noisy = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    ok, data = cv2.imencode(".jpg", noisy)
    (folder / "b_cut.jpg").write_bytes(data.tobytes()[: len(data) // 3])
    assert cli.main(["predict", model, "--labels", labels, str(folder / "b_cut.jpg")]) == 1
    capsys.readouterr()
    rc = cli.main(["camera", model, "--labels", labels, "--source", str(folder), "--headless", "--json"])
    captured = capsys.readouterr()
    frames, summary = json_lines(captured.out)
    assert rc == 0 and summary["frames"] == len(frames) == 1
    assert f"notice: skipping {folder / 'b_cut.jpg'}: cannot decode" in captured.err
