"""Keep native libraries' log lines (LiteRT, TensorFlow, the TFLite converter, FFmpeg) off the terminal.

Those libraries write from C++ straight to file descriptor 2, past Python's ``sys.stderr`` and
``logging``: LiteRT's ``INFO: Created TensorFlow Lite XNNPACK delegate for CPU.`` (no setting turns
it off), the converter's ``fully_quantize: 0, inference_type: 6, ...``, absl ``I0000``/``W0000``
lines, FFmpeg's ``[tcp @ 0x...] Connection refused``. Two tools, both off when native logs are
shown (``--debug``/``-v`` on the command line, ``show_native_logs(True)``, or
``EDGECNN_NATIVE_LOGS=1``):

- :func:`quiet_environment` sets the variables the libraries read at start-up
  (``TF_CPP_MIN_LOG_LEVEL=2``, ``OPENCV_FFMPEG_LOGLEVEL=0``, ``OPENCV_LOG_LEVEL=ERROR``), without
  overriding the user's, and
  has the first ``import tensorflow`` (from any module, through Keras too) run inside
  :func:`native_stderr`: TensorFlow logs through absl before ``absl::InitializeLog()`` at import,
  past ``TF_CPP_MIN_LOG_LEVEL`` (``I0000 ... port.cc] oneDNN custom operations are on``, twice, on
  CPUs where oneDNN is on by default: AVX-512 VNNI/BF16, AMX);
- :func:`native_stderr` redirects fd 2 into a temporary file around one native call, then writes
  back every captured line that is not known noise (so a real native warning still shows), or,
  when the call raised, nothing: the exception carries the message and becomes one ``error:`` line.
  While redirected, other threads' stderr output is held back and written after the call, not lost;
- :func:`captured_stderr` captures the same way and hands the caller what was written, for lines a library
  prints about its input (libjpeg's ``Corrupt JPEG data: ...``) that edgecnn turns into its own message;
  :func:`echo_native` writes back the rest.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import io
import os
import re
import signal
import sys
import tempfile
import threading
from typing import Iterator

# Lines that are progress chatter, never a problem the user must see.
NOISE = re.compile(
    rb"^(INFO: "                                              # TFLite/LiteRT minimal logger, INFO level
    rb"|[IW]\d{4} [\d:.]+\s+\d+ \S+:\d+\] "                  # absl/glog INFO and WARNING lines
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    rb"|fully_quantize: \d+, inference_type: "                 # the TFLite calibration wrapper
    rb"|Estimated count of arithmetic ops: "                   # the converter's op count
    rb")"
)

_show = os.environ.get("EDGECNN_NATIVE_LOGS", "") not in ("", "0")
_lock = threading.RLock()
_depth = 0


def show_native_logs(on: bool = True) -> None:
    """Let native log lines through (``--debug``/``-v``), or filter them again."""
    global _show
    _show = bool(on)


def showing() -> bool:
    return _show


def quiet_environment() -> None:
    """Set the log-level variables native libraries read when they start (the user's values win)."""
    if _show:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow: warnings and errors only
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "0")  # FFmpeg inside OpenCV: panics only
    if "OPENCV_LOG_LEVEL" not in os.environ:  # OpenCV's "[ WARN:0@...]": edgecnn says what failed itself
        os.environ["OPENCV_LOG_LEVEL"] = "ERROR"
        cv2 = sys.modules.get("cv2")  # OpenCV reads the variable when it is imported
        if cv2 is not None:
            cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    if "tensorflow" not in sys.modules and not any(isinstance(f, _QuietImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietImport("tensorflow"))


class _QuietImport(importlib.abc.MetaPathFinder):
    """Finds one top-level package the normal way, then executes it inside :func:`native_stderr` (once)."""

    def __init__(self, name: str):
        self.name = name

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)  # one import; find the real spec without this finder
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _QuietLoader(spec.loader)
        return spec


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        module.__loader__ = self.loader
        if module.__spec__ is not None:
            module.__spec__.loader = self.loader
        with native_stderr():
            self.loader.exec_module(module)


@contextlib.contextmanager
def native_stderr() -> Iterator[None]:
    """Capture fd 2 around a native call; write back what is not noise (nothing when the call raised)."""
    if _show:
        yield
        return
    with _lock:
        if _depth:  # already redirected by an outer call, which writes back what is kept
            yield
            return
        with captured_stderr() as captured:
            yield  # raising skips the write-back: the exception carries the message
        echo_native(captured.data)


class GuardedStderr(io.TextIOBase):
    """``sys.stderr`` as it is at each write, written only while no thread has fd 2 captured: another thread's log
    line or progress bar waits for the capture to end instead of landing in it (and being read as the decoder's).
    ``beneath_rich``: the stream under rich's redirect of ``sys.stderr`` while a bar is live (a bar's console
    writing to the redirect would write to itself); log lines go through the redirect, printed above the bar."""

    def __init__(self, beneath_rich: bool = False):
        super().__init__()
        self.beneath_rich = beneath_rich

    def _stream(self):
        return getattr(sys.stderr, "rich_proxied_file", sys.stderr) if self.beneath_rich else sys.stderr

    def write(self, text: str) -> int:
        with _lock:
            return self._stream().write(text)

    def flush(self) -> None:
        with _lock:
            self._stream().flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()

    def fileno(self) -> int:
        return sys.stderr.fileno()

    @property
    def encoding(self) -> str:
        return getattr(sys.stderr, "encoding", None) or "utf-8"


guarded_stderr = GuardedStderr()  # edgecnn's log handler
bar_stderr = GuardedStderr(beneath_rich=True)  # rich's progress console


class Captured:
    """What fd 2 received inside :func:`captured_stderr` (``data``: set when the block is left)."""

    data = b""


@contextlib.contextmanager
def captured_stderr() -> Iterator[Captured]:
    """Capture fd 2 around a native call (with ``-v`` too) and hand it to the caller, who writes back what it does
    not turn into its own message (:func:`echo_native`). Nests: an inner block takes its own lines."""
    global _depth
    captured = Captured()
    with _lock:
        try:
            saved = os.dup(2)
        except OSError:  # no fd 2 (a daemon with stderr closed): nothing to capture
            yield captured
            return
        _flush()
        with tempfile.TemporaryFile() as capture:
            os.dup2(capture.fileno(), 2)
            _depth += 1
            try:
                yield captured
            finally:
                _flush()
                os.dup2(saved, 2)
                os.close(saved)
                _depth -= 1
                capture.seek(0)
                captured.data = capture.read()


def echo_native(data: bytes) -> None:
    """Write captured native output back to fd 2: every line with ``-v``, else the lines that are not noise."""
    kept = data if _show else b"".join(line for line in data.splitlines(keepends=True) if not NOISE.match(line))
    if kept:
        _flush()
        _write_all(2, kept)


def _flush() -> None:
    for stream in (sys.stderr, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass


def _write_all(fd: int, data: bytes) -> None:
    try:
        while data:
            data = data[os.write(fd, data):]
    except OSError:
        pass


class _Interrupts:
    seen = False


@contextlib.contextmanager
def kept_interrupts() -> Iterator[_Interrupts]:
    """Re-raise a Ctrl-C that native code swallowed.

    A SIGINT during a long native call (the TFLite converter) raises KeyboardInterrupt inside
    TensorFlow's Python layers, which can catch it or turn it into a conversion error; the
    export then runs on and exits 0. Here the signal is also remembered, and leaving the block
    after one raises KeyboardInterrupt whatever happened to the first. Main thread only.
    """
    state = _Interrupts()
    if threading.current_thread() is not threading.main_thread():
        yield state
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous is signal.SIG_IGN or previous is None:
        yield state
        return

    def handler(signum, frame):
        state.seen = True
        if callable(previous):
            previous(signum, frame)  # default_int_handler: raises KeyboardInterrupt
        else:
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, handler)
    try:
        yield state
    except KeyboardInterrupt:
        raise
    except BaseException:
        if state.seen:
            raise KeyboardInterrupt from None
        raise
    finally:
        signal.signal(signal.SIGINT, previous)
    if state.seen:
        raise KeyboardInterrupt
