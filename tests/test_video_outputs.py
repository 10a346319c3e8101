"""Sources, overlay, recorder, summary, JSON lines and the browser preview (incl. headless Chromium)."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import tempfile
import types
import urllib.request

import cv2
import numpy as np
import pytest

from edgecnn.errors import SourceError, UsageError
from edgecnn.runtime import ClassScore
from edgecnn.video.classify import FrameResult
from edgecnn.video.frame_sources import FolderSource, OpenCVSource, Picamera2Source, open_source
from edgecnn.video.overlay import draw_overlay
from edgecnn.video.recorder import VideoRecorder
from edgecnn.video.server import PreviewServer, parse_address
from edgecnn.video.sinks import FrameEvent, JsonLines
from edgecnn.video.summary import RunStats, format_summary

TOP = [ClassScore("sunflower", 3, 0.93), ClassScore("daisy", 0, 0.05)]
RESULT = FrameResult(TOP, {"preprocess": 1.0, "inference": 20.0, "total": 21.5})


# --- sources --------------------------------------------------------------------------------


def test_open_source_recognizes_every_kind(tmp_path):
    video = tmp_path / "clip.avi"
    video.write_bytes(b"x")
    assert isinstance(open_source("0"), OpenCVSource) and open_source("0").live
    assert open_source("/dev/video2").live
    assert open_source("rtsp://cam.local/stream").live and open_source("http://cam/x.mjpg").live
    assert not open_source(str(video)).live
    assert isinstance(open_source(str(tmp_path)), FolderSource)
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(sys.modules, "picamera2", types.SimpleNamespace(Picamera2=object))
        assert isinstance(open_source("picamera2"), Picamera2Source)
    with pytest.raises(SourceError, match="source not found: 'nope.mp4'; pass a camera index"):
        open_source("nope.mp4")


def test_unopenable_video_file_is_a_source_error(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(SourceError, match="cannot open video source"):
        open_source(str(bad)).open()


def test_picamera2_missing_names_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "picamera2", None)  # makes `import picamera2` fail
    with pytest.raises(SourceError, match="needs the picamera2 package.*python3-picamera2"):
        Picamera2Source().open()
    with pytest.raises(SourceError, match="needs the picamera2 package"):  # at once, not after reconnect attempts
        open_source("picamera2")


def test_folder_source_reads_images_in_name_order_and_skips_broken(tmp_path, caplog):
    for i, value in enumerate((10, 20, 30)):
        cv2.imwrite(str(tmp_path / f"{i:02d}.png"), np.full((6, 8, 3), value, np.uint8))
    (tmp_path / "01b.jpg").write_bytes(b"\xff\xd8\xff\xe0 a JPEG by its first bytes, then broken")
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "02.jpg").write_text("not an image either, whatever its name says")
    source = open_source(str(tmp_path))
    source.open()
    values = []
    with caplog.at_level("WARNING", logger="edgecnn.video"):
        while (image := source.read()) is not None:
            values.append(int(image[0, 0, 0]))
    assert values == [10, 20, 30]
    assert caplog.messages == [f"notice: skipping {tmp_path / '01b.jpg'}: cannot decode {tmp_path / '01b.jpg'}: "
                               f"not an image format OpenCV can read (or the file is corrupt)"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SourceError, match="no images in folder"):
        FolderSource(empty).open()


# --- overlay, recorder, summary, JSON ---------------------------------------------------------


def test_overlay_draws_bars_and_text_in_place():
    image = np.full((240, 320, 3), 200, np.uint8)
    out = draw_overlay(image, TOP, inference_ms=20.0, fps=15.0)
    assert out is image
    assert (image != 200).any(axis=2).sum() > 1000
    assert (image[100:, 200:] == 200).all(), "the overlay stays in the top-left panel"


def test_recorder_is_atomic_and_playable(tmp_path):
    path = tmp_path / "out.mp4"
    recorder = VideoRecorder(path, fps=30)
    for i in range(12):
        recorder.write(np.full((48, 64, 3), i * 20, np.uint8))
    assert not path.exists(), "the video appears only when finalized"
    assert recorder.close() == path
    assert list(tmp_path.iterdir()) == [path], "no temp file left behind"
    cap = cv2.VideoCapture(str(path))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 12
    with pytest.raises(UsageError, match="expected a file ending in .mp4"):
        VideoRecorder(tmp_path / "out.gif", fps=30)


def test_summary_has_counts_percentiles_and_fps():
    stats = RunStats()
    stats.frame_started()
    for i in range(20):
        stats.add_latency({"preprocess": 1.0, "inference": float(i), "total": float(i) + 1})
        stats.frame_done(dropped=i // 4)
    summary = stats.summary()
    assert summary["frames"] == 20 and summary["classified"] == 20 and summary["dropped"] == 4
    assert summary["latency_ms"]["total"]["p50"] == pytest.approx(10.5)
    assert summary["latency_ms"]["inference"]["p95"] == pytest.approx(18.05)
    text = format_summary(summary)
    assert "20 frames (20 classified, 4 dropped)" in text and "p95 19.1 ms" in text


def test_json_lines_only_for_classified_frames():
    stream = io.StringIO()
    sink = JsonLines(stream)
    image = np.zeros((4, 4, 3), np.uint8)
    sink.handle(FrameEvent(7, 1700000000.123, image, RESULT, True, 2, 10.0))
    sink.handle(FrameEvent(8, 1700000000.2, image, RESULT, False, 2, 10.0))
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    line = json.loads(lines[0])
    assert line == {
        "frame": 7, "t": 1700000000.123,
        "top": [{"label": "sunflower", "index": 3, "score": 0.93}, {"label": "daisy", "index": 0, "score": 0.05}],
        "latency_ms": {"preprocess": 1.0, "inference": 20.0, "total": 21.5}, "dropped": 2,
    }


# --- preview server ---------------------------------------------------------------------------


def test_parse_address_defaults_to_localhost():
    assert parse_address("8080") == ("127.0.0.1", 8080)
    assert parse_address(":8081") == ("127.0.0.1", 8081)
    assert parse_address("0.0.0.0:9000") == ("0.0.0.0", 9000)
    with pytest.raises(UsageError, match="expected HOST:PORT"):
        parse_address("localhost:http")


@pytest.fixture
def preview():
    server = PreviewServer("127.0.0.1", 0).start()
    frame = np.full((48, 64, 3), 120, np.uint8)
    server.publish(frame, {"frame": 5, **RESULT.to_dict()})
    yield server
    server.close()


def test_preview_serves_predictions_and_mjpeg(preview):
    with urllib.request.urlopen(preview.url + "predictions.json", timeout=30) as r:
        assert json.load(r)["top"][0]["label"] == "sunflower"
    with urllib.request.urlopen(preview.url + "stream.mjpg", timeout=30) as r:
        assert r.headers["Content-Type"].startswith("multipart/x-mixed-replace")
        head = r.read(200)
    assert b"Content-Type: image/jpeg" in head and b"\xff\xd8" in head
    with urllib.request.urlopen(preview.url, timeout=30) as r:
        page = r.read().decode()
    assert '<img src="/stream.mjpg"' in page and "/predictions.json" in page


def test_preview_page_shows_the_label_in_headless_chromium(preview):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (Debian: apt-get install -y chromium)")
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--virtual-time-budget=3000", "--dump-dom", preview.url],
            capture_output=True, text=True, timeout=30,
        )
    assert "sunflower 93.0%" in proc.stdout, proc.stderr[-2000:]


def test_video_package_never_imports_tensorflow():
    code = (
        "import sys, importlib, pkgutil, edgecnn.video as v\n"
        "for m in pkgutil.iter_modules(v.__path__): importlib.import_module('edgecnn.video.' + m.name)\n"
        "import edgecnn.commands.camera\n"
        "bad = [m for m in ('tensorflow', 'keras') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_latency_series_memory_is_bounded_and_percentiles_stay_close():
    from edgecnn.video.summary import LatencySeries

    series = LatencySeries(size=1000)
    values = np.random.default_rng(1).uniform(10, 20, 50_000)
    for v in values:
        series.add(float(v))
    stats = series.stats()
    assert series._sample.size == 1000
    assert stats["mean"] == pytest.approx(values.mean(), abs=1e-3)
    assert stats["p50"] == pytest.approx(15, abs=0.5) and stats["p95"] == pytest.approx(19.5, abs=0.3)


# --- window -----------------------------------------------------------------------------------


def test_window_falls_back_to_headless_when_opencv_has_no_gui(monkeypatch, caplog):
    from edgecnn.video.display import open_window

    def no_gui(*args, **kwargs):
        raise cv2.error("The function is not implemented")

    monkeypatch.setenv("DISPLAY", ":99")
    monkeypatch.setattr(cv2, "namedWindow", no_gui)
    with caplog.at_level("WARNING", logger="edgecnn.video"):
        assert open_window("edgecnn") is None
    assert caplog.messages == ["notice: this OpenCV build has no GUI (opencv-python-headless); running headless"]


def test_window_stops_on_q_or_escape(monkeypatch):
    from edgecnn.video.display import Window

    keys = iter([-1, ord("q"), 27])
    monkeypatch.setattr(cv2, "imshow", lambda *args: None)
    monkeypatch.setattr(cv2, "waitKey", lambda *args: next(keys))
    monkeypatch.setattr(cv2, "getWindowProperty", lambda *args: 1.0)
    window, image = Window("edgecnn"), np.zeros((4, 4, 3), np.uint8)
    assert [window.show(image) for _ in range(3)] == [False, True, True]
