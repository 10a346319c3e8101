"""Regenerate the pictures under docs/img/ from real runs of the tool.

    python tools/docs_pictures.py --run RUN_DIR --export EXPORT_DIR --val VAL_DIR [--out docs/img] [--text DIR]

RUN_DIR is a flowers MobileNetV2 training run (`edgecnn train`), EXPORT_DIR its `edgecnn export` folder and VAL_DIR
the labelled validation photos. Pictures (each made by edgecnn itself):

    quickstart.svg          `edgecnn quickstart` on the built-in digits: its step lines and table, rendered by rich
    flowers-history.png     RUN_DIR's history.png, drawn when it trained
    flowers-confusion.png   `edgecnn evaluate RUN_DIR --data VAL_DIR`'s confusion matrix
    benchmark.png           `edgecnn benchmark EXPORT_DIR --data VAL_DIR`
    preview.png             headless Chromium's screenshot of `edgecnn camera MODEL --serve` on a flower photo

The committed preview.png shows a 512 x 340 sunflower photo from Open Images V5 (CC BY 2.0; ``--photo``), larger
than flowers5's 128 px photos. ``--only`` picks some of them; ``--text DIR`` also keeps each command's output
there as plain text.
:func:`preview_screenshot` takes the camera options as a parameter, so other previews (drift plots) reuse it.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PICTURES = ("quickstart", "history", "confusion", "benchmark", "preview")
MAX_PNG_BYTES = 200_000
WINDOW = (820, 600)  # browser window for the preview screenshot: a 512 px wide frame and the top-5 list
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars")
QUICKSTART_STEP = re.compile(r"architecture: |\[\d/4\] | +validation accuracy|done in ")  # lines the picture keeps
PREVIEW_FPS = 2  # frames a second from the photo folder: the preview stays up while the browser loads it


@dataclass
class PreviewShot:
    """A screenshot of the camera preview, with what the page showed and the camera's own output."""

    png: Path
    page: str  # the page's DOM as Chromium rendered it (--dump-dom)
    prediction: dict  # /predictions.json when the screenshot was taken
    camera_log: str  # the camera command's output (stdout and stderr)


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def edgecnn(*args: str, cwd: Path | None = None, timeout: float = 1800) -> subprocess.CompletedProcess:
    """Run ``edgecnn ARGS`` as a user would; fails loudly with its output."""
    proc = subprocess.run([sys.executable, "-m", "edgecnn", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"edgecnn {' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    return proc


def output(proc: subprocess.CompletedProcess) -> str:
    """What a terminal shows: stderr (progress), then stdout (tables)."""
    return proc.stderr + proc.stdout


def save_text(folder: Path | None, name: str, command: str, body: str) -> None:
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(f"$ {command}\n{body}")


def copy_png(source: Path, dest: Path) -> Path:
    """Copy a PNG the tool drew into ``dest`` (:func:`shrink_png`)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, dest)
    return shrink_png(dest)


def shrink_png(path: Path) -> Path:
    """A PNG over :data:`MAX_PNG_BYTES` is stored again with a 256-colour palette."""
    from PIL import Image

    if path.stat().st_size > MAX_PNG_BYTES:
        with Image.open(path) as image:
            small = image.convert("RGB").quantize(256)
        small.save(path, optimize=True)
    return path


# --- quickstart.svg ---------------------------------------------------------------------------------------------

def quickstart_picture(dest: Path, work: Path, text: Path | None = None) -> Path:
    """Run ``edgecnn quickstart`` on the built-in digits in ``work`` and render its steps and table with rich."""
    from rich.console import Console
    from rich.text import Text

    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    proc = edgecnn("quickstart", cwd=Path(tempfile.mkdtemp(dir=work)))  # as a new user types it
    seconds = time.perf_counter() - started
    save_text(text, "quickstart.txt", "edgecnn quickstart", output(proc) + f"# {seconds:.0f} s wall clock\n")
    console = Console(record=True, width=100, file=io.StringIO(), force_terminal=True)
    console.print(Text("$ edgecnn quickstart", style="bold green"))
    for line in proc.stderr.splitlines():
        if QUICKSTART_STEP.match(line):
            console.print(Text(line, style="dim" if line.startswith(" ") else ""))
    console.print(Text(proc.stdout.rstrip("\n"), style="bold"))
    dest.parent.mkdir(parents=True, exist_ok=True)
    console.save_svg(str(dest), title="edgecnn quickstart")
    return dest


# --- flowers-history.png, flowers-confusion.png, benchmark.png -------------------------------------------------

def history_picture(run: Path, dest: Path) -> Path:
    return copy_png(run / "history.png", dest)


def confusion_picture(run: Path, val: Path, dest: Path, work: Path, text: Path | None = None) -> Path:
    out = work / "evaluate"
    proc = edgecnn("evaluate", str(run), "--data", str(val), "--out", str(out))
    save_text(text, "evaluate.txt", f"edgecnn evaluate {run} --data {val}", output(proc))
    return copy_png(out / "confusion_matrix.png", dest)


def benchmark_picture(export: Path, val: Path, dest: Path, work: Path, text: Path | None = None) -> Path:
    out = work / "benchmark"
    started = time.perf_counter()
    proc = edgecnn("benchmark", str(export), "--data", str(val), "--out", str(out), "--force", "--plain")
    seconds = time.perf_counter() - started
    save_text(text, "benchmark.txt", f"edgecnn benchmark {export} --data {val}",
              output(proc) + f"# {seconds:.0f} s wall clock\n")
    return copy_png(out / "benchmark.png", dest)


# --- preview.png ------------------------------------------------------------------------------------------------

def photo_folder(photo: Path, folder: Path, copies: int = 120) -> Path:
    """A new camera --source folder showing one photo ``copies`` times (a steady label for the screenshot)."""
    folder.mkdir(parents=True)
    for i in range(copies):
        shutil.copyfile(photo, folder / f"{i:04d}{photo.suffix}")
    return folder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def preview_screenshot(model: Path, source: Path, dest: Path, camera_options: tuple[str, ...] = (),
                       window: tuple[int, int] = WINDOW, timeout: float = 120) -> PreviewShot:
    """Start ``edgecnn camera MODEL --source SOURCE --headless --serve`` with ``camera_options``, wait for its
    first prediction, and take headless Chromium's screenshot of the preview page into ``dest``."""
    browser = chromium()
    if browser is None:
        raise RuntimeError("chromium is not installed (Debian: apt-get install -y chromium)")
    url = f"http://127.0.0.1:{free_port()}/"
    command = [sys.executable, "-m", "edgecnn", "camera", str(model), "--source", str(source), "--headless",
               "--serve", url[len("http://"):-1], *camera_options]
    with tempfile.TemporaryFile("w+") as log:
        camera = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, text=True)
        try:
            _wait_for_prediction(url, camera, timeout)
            dest.parent.mkdir(parents=True, exist_ok=True)
            _chromium(browser, url, [f"--screenshot={dest}", f"--window-size={window[0]},{window[1]}"])
            page = _chromium(browser, url, ["--dump-dom"])
            prediction = _json(url + "predictions.json")
        finally:
            _stop(camera)
        log.seek(0)
        return PreviewShot(dest, page, prediction, log.read())


def _json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.load(r)


def _wait_for_prediction(url: str, camera: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if camera.poll() is not None:
            raise RuntimeError(f"edgecnn camera exited {camera.returncode} before its first prediction")
        try:
            if _json(url + "predictions.json").get("top"):
                return
        except OSError:
            pass  # not listening yet
        time.sleep(0.5)
    raise RuntimeError(f"no prediction from {url} within {timeout:.0f} s")


def _chromium(browser: str, url: str, flags: list[str]) -> str:
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                               "--virtual-time-budget=3000", *flags, url],
                              capture_output=True, text=True, timeout=90)
    if proc.returncode != 0:
        raise RuntimeError(f"chromium exited {proc.returncode}: {proc.stderr[-2000:]}")
    return proc.stdout


def _stop(camera: subprocess.Popen) -> None:
    """Ctrl-C the camera (it finishes cleanly and prints its summary); kill it if it does not end."""
    if camera.poll() is None:
        camera.send_signal(signal.SIGINT)
        try:
            camera.wait(timeout=30)
        except subprocess.TimeoutExpired:
            camera.kill()
            camera.wait()


def preview_picture(model: Path, photo: Path, dest: Path, work: Path, text: Path | None = None) -> PreviewShot:
    work.mkdir(parents=True, exist_ok=True)
    source = photo_folder(photo, Path(tempfile.mkdtemp(dir=work, prefix="camera-source-")) / "photos")
    shot = preview_screenshot(model, source, dest, ("--fps", str(PREVIEW_FPS)))
    shrink_png(dest)
    save_text(text, "camera.txt", f"edgecnn camera {model} --source {source} --headless --serve 127.0.0.1:PORT "
                                  f"--fps {PREVIEW_FPS}", shot.camera_log)
    return shot


# --- main -------------------------------------------------------------------------------------------------------

def _photo(val: Path) -> Path:
    """A sunflower from the validation photos (the first, by name), else the first photo."""
    photos = sorted((val / "sunflower").glob("*.jpg")) or sorted(val.glob("*/*.jpg"))
    if not photos:
        raise SystemExit(f"no .jpg photos in {val}")
    return photos[0]


def make(names: list[str], args: argparse.Namespace, work: Path) -> list[Path]:
    out, text = args.out, args.text
    makers = {
        "quickstart": lambda: quickstart_picture(out / "quickstart.svg", work / "quickstart", text),
        "history": lambda: history_picture(args.run, out / "flowers-history.png"),
        "confusion": lambda: confusion_picture(args.run, args.val, out / "flowers-confusion.png", work, text),
        "benchmark": lambda: benchmark_picture(args.export, args.val, out / "benchmark.png", work, text),
        "preview": lambda: preview_picture(args.export / "model_int8.tflite", args.photo or _photo(args.val),
                                           out / "preview.png", work, text).png,
    }
    made = []
    for name in names:
        print(f"{name} ...", file=sys.stderr, flush=True)
        made.append(makers[name]())
        print(f"  {made[-1]} ({made[-1].stat().st_size / 1000:.0f} KB)", file=sys.stderr, flush=True)
    return made


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="a flowers MobileNetV2 training run")
    parser.add_argument("--export", type=Path, help="its export folder (default: RUN/export)")
    parser.add_argument("--val", type=Path, help="labelled validation photos, one sub-folder per class")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "img", help="default: docs/img")
    parser.add_argument("--only", default=",".join(PICTURES), help=f"some of {','.join(PICTURES)} (default: all)")
    parser.add_argument("--photo", type=Path,
                        help="the photo the camera preview shows (default: the first sunflower in --val)")
    parser.add_argument("--text", type=Path, help="also keep each command's output here as plain text")
    parser.add_argument("--work", type=Path, help="scratch folder (default: a temporary one)")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = sorted(set(names) - set(PICTURES))
    if unknown:
        parser.error(f"--only: unknown {', '.join(unknown)}; choose from {','.join(PICTURES)}")
    if set(names) - {"quickstart"} and not (args.run and args.val):
        parser.error("--run and --val are needed for all but the quickstart picture")
    args.export = args.export or (args.run / "export" if args.run else None)
    with tempfile.TemporaryDirectory(prefix="docs-pictures-") as tmp:
        make(names, args, args.work or Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
