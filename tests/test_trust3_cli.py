"""Issue 21, item 7 and the minors of item 17: `camera --save` on a full disk, animated GIF sources, the ranges of
--max-megapixels and --std, unambiguous one-line names in `predict` output, idle preview connections."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import urllib.request
import warnings

import cv2
import numpy as np
import pytest

from edgecnn import cli
from edgecnn.video import recorder as recorder_module
from edgecnn.video.frame_sources import open_source
from edgecnn.video.server import PreviewServer
from tests.test_contract import one_error_line, tiny_onnx

MODEL_ARGS = ("--mean", "0", "--std", "255")


@pytest.fixture
def model(tmp_path):
    return str(tiny_onnx(tmp_path / "m.onnx"))


@pytest.fixture
def red_png(tmp_path):
    path = tmp_path / "red.png"
    cv2.imwrite(str(path), np.full((20, 20, 3), (30, 30, 220), np.uint8))
    return path


def error_lines(text: str) -> list[str]:
    """The lines of stderr but the notes (the tiny model has no labels) and the `saved` line."""
    return [line for line in text.splitlines() if not line.startswith(("note: ", "saved "))]


# ------------------------------------------------------------------ item 7: camera --save on a full disk
@pytest.fixture
def small_disk(tmp_path):
    """``mount(size)``: a folder on a new tmpfs of ``size`` (root only; unmounted after the test)."""
    mounted = []

    def mount(size: str):
        if os.geteuid() != 0:
            pytest.skip("mounting a small tmpfs needs root")
        folder = tmp_path / f"disk{len(mounted)}"
        folder.mkdir()
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                                capture_output=True, text=True)
        if result.returncode:
            pytest.skip(f"cannot mount a tmpfs: {result.stderr.strip()}")
        mounted.append(folder)
        return folder

    try:
        yield mount
    finally:
        for folder in mounted:
            subprocess.run(["umount", str(folder)], check=False)


@pytest.fixture
def noise_video(tmp_path):
    """60 frames of 160x120 noise (mp4v makes about 10 KB of each)."""
    path = tmp_path / "noise.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (160, 120))
    rng = np.random.default_rng(0)
    for _ in range(60):
        writer.write(rng.integers(0, 256, (120, 160, 3), np.uint8))
    writer.release()
    return str(path)


def camera(model, source, save, *extra):
    return cli.main(["camera", model, "--source", source, "--save", str(save), "--headless", "--json", *extra])


def test_save_on_a_full_disk_is_an_error_and_keeps_the_old_file(model, noise_video, small_disk, monkeypatch,
                                                                 capsys):
    disk = small_disk("64k")
    out = disk / "out.mp4"
    out.write_bytes(b"an earlier recording")
    # No reserve: the writer itself runs into the full disk (cv2.VideoWriter says nothing) and the check at close
    # finds the file unplayable.
    monkeypatch.setattr(recorder_module, "MIN_FREE_BYTES", 0, raising=False)
    assert camera(model, noise_video, out, "--max-frames", "30") == 2
    err = capsys.readouterr().err
    assert not [line for line in err.splitlines() if line.startswith("saved ")]
    line = one_error_line("\n".join(error_lines(err)), str(out), "free")
    assert "Traceback" not in err and "nothing was saved" in line
    assert out.read_bytes() == b"an earlier recording", "the earlier file is kept"
    assert sorted(p.name for p in disk.iterdir()) == ["out.mp4"], "no temp file left on the full disk"
    monkeypatch.undo()
    assert camera(model, noise_video, out, "--max-frames", "30") == 2  # the default reserve: refused at once
    one_error_line("\n".join(error_lines(capsys.readouterr().err)), str(out), "free")
    assert out.read_bytes() == b"an earlier recording"


def test_disk_filling_up_while_recording_keeps_the_frames_so_far(model, noise_video, small_disk, monkeypatch,
                                                                  capsys):
    disk = small_disk("512k")
    out = disk / "out.mp4"
    monkeypatch.setattr(recorder_module, "MIN_FREE_BYTES", 256_000, raising=False)
    assert camera(model, noise_video, out) == 2
    captured = capsys.readouterr()
    saved = [line for line in captured.err.splitlines() if line.startswith("saved ")]
    assert len(saved) == 1, captured.err
    frames = int(saved[0].split()[1])
    assert 0 < frames < 60
    one_error_line("\n".join(error_lines(captured.err)), str(out), "free", f"after {frames} frames")
    assert json.loads(captured.out.splitlines()[-1])["summary"]["stop"] == "output failed"
    cap = cv2.VideoCapture(str(out))
    count = 0
    while cap.read()[0]:
        count += 1
    cap.release()
    assert count == frames, "the video holds every frame written before the disk filled"


# ------------------------------------------------------------------ item 17a: animated GIF sources
def test_animated_gif_plays_every_frame_even_where_opencv_reads_it_as_one_image(model, tmp_path, monkeypatch,
                                                                                capsys):
    Image = pytest.importorskip("PIL.Image")
    colors = [(200, 0, 0), (0, 200, 0), (0, 0, 200), (200, 200, 0)]
    frames = [Image.new("RGB", (16, 16), color) for color in colors]
    gif = tmp_path / "anim.gif"
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=100, loop=0)
    real = cv2.VideoCapture

    def images_backend_only(target, *args):  # an OpenCV without FFmpeg: its image backend reads one still
        return real(target, cv2.CAP_IMAGES) if isinstance(target, str) else real(target, *args)

    monkeypatch.setattr(cv2, "VideoCapture", images_backend_only)
    source = open_source(str(gif))
    source.open()
    seen = []
    while (image := source.read()) is not None:
        seen.append(tuple(int(v) for v in image[8, 8]))
    source.close()
    assert seen == [(b, g, r) for r, g, b in colors]  # BGR, every frame
    assert source.fps == pytest.approx(10.0)
    assert cli.main(["camera", model, "--source", str(gif), "--headless", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])["summary"]
    assert summary["frames"] == 4 and summary["stop"] == "end of stream"


# ------------------------------------------------------------------ item 17b: --max-megapixels range
@pytest.mark.parametrize("value", ["inf", "nan", "1e-9", "0", "-5", "1e300"])
def test_max_megapixels_outside_a_sane_range_is_one_error_line(model, red_png, value, capsys):
    for command in (["predict", model, str(red_png), *MODEL_ARGS], ["camera", model, "--source", str(red_png)]):
        with pytest.raises(SystemExit) as exc:
            cli.main([*command, "--max-megapixels", value])
        assert exc.value.code == 2
        one_error_line(capsys.readouterr().err, "argument --max-megapixels", f"Received {value!r}", "megapixels")


def test_max_megapixels_in_range_still_works(model, red_png, capsys):
    assert cli.main(["predict", model, str(red_png), "--max-megapixels", "0.0004", *MODEL_ARGS]) == 0  # 400 px
    assert cli.main(["predict", model, str(red_png), "--max-megapixels", "0.0003", *MODEL_ARGS]) == 1
    assert "over the 0.0003 MP limit" in capsys.readouterr().err


# ------------------------------------------------------------------ item 17c: --std whose inverse overflows float32
@pytest.mark.parametrize("value", ["1e-45", "1e-37", "1,1,-1e-40", "0"])
def test_std_too_small_for_float32_is_one_error_line_without_a_warning(model, red_png, value, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the overflow was a RuntimeWarning
        with pytest.raises(SystemExit) as exc:
            cli.main(["predict", model, str(red_png), "--mean", "0", "--std", value])
    assert exc.value.code == 2
    one_error_line(capsys.readouterr().err, "argument --std", f"Received {value!r}", "32-bit float")


def test_small_but_sane_std_still_works(model, red_png, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cli.main(["predict", model, str(red_png), "--mean", "0", "--std", "1e-30", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["top"][0]["score"] > 0


# ------------------------------------------------------------------ item 17d: names in predict output
def test_predict_names_are_unambiguous_and_one_line_each(model, red_png, tmp_path, capsys):
    folder = tmp_path / "names"
    folder.mkdir()
    names = [b"caf\xe9.png", b"caf\\xe9.png", b"two\nlines.png", b"tab\there.png"]
    for name in names:
        (folder / os.fsdecode(name)).write_bytes(red_png.read_bytes())
    (folder / os.fsdecode(b"broken\nname.png")).write_bytes(b"\x89PNG\r\n\x1a\n then not a PNG")
    assert cli.main(["predict", model, str(folder), "--json", "--top-k", "1", *MODEL_ARGS]) == 1
    captured = capsys.readouterr()
    shown = sorted(json.loads(line)["input"][len(str(folder)) + 1:] for line in captured.out.splitlines())
    assert shown == sorted(["caf\\xe9.png", "caf\\\\xe9.png", "two\\nlines.png", "tab\\there.png"])
    errors = error_lines(captured.err)
    assert len(errors) == 2 and "broken\\nname.png" in errors[0], errors  # the file's error, then the count
    assert cli.main(["predict", model, str(folder), "--top-k", "1", *MODEL_ARGS]) == 1
    text = capsys.readouterr().out.splitlines()
    assert len(text) == len(names), text
    assert sorted(line.split(": ")[0][len(str(folder)) + 1:] for line in text) == shown


# ------------------------------------------------------------------ item 17e: idle preview connections
def test_idle_preview_connection_is_dropped_after_the_timeout_and_others_are_served(capfd):
    server = PreviewServer("127.0.0.1", 0, idle_timeout_s=0.3).start()
    try:
        host, port = server._httpd.server_address[:2]
        # connects and sends nothing; 30 s (100 x the idle timeout) guards a server that never drops it, with room
        # for two busy cores: recv raises TimeoutError then
        idle = socket.create_connection((host, port), timeout=30)
        with urllib.request.urlopen(f"{server.url}predictions.json", timeout=30) as response:
            assert json.loads(response.read()) == {}
        assert idle.recv(1) == b"", "the server closes the idle connection"
        idle.close()
    finally:
        server.close()
    assert capfd.readouterr().err == "", "a timed-out connection is dropped quietly"
