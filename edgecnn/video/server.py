"""Browser preview: annotated frames as MJPEG plus the current top-k, on the standard library's HTTP server.

Endpoints: ``/`` (an HTML page showing the stream and polling the JSON),
``/stream.mjpg`` (multipart/x-mixed-replace JPEG frames) and
``/predictions.json`` (the latest prediction). Frames are JPEG-encoded in the
clients' handler threads, once per frame however many clients watch, and not
at all when nobody does; a stalled loop's last frame is re-sent twice a second.
Binds 127.0.0.1 unless another host is given. A client that stays silent (or stops reading the stream) for
``idle_timeout_s`` is dropped, so idle connections cannot hold the handler threads.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional

import numpy as np

from edgecnn.errors import UsageError

DEFAULT_HOST = "127.0.0.1"
BOUNDARY = "edgecnnframe"
JPEG_QUALITY = 80
RESEND_S = 0.5  # re-send the latest frame this often when no new one arrives
IDLE_TIMEOUT_S = 10.0  # a connection that sends no request, or takes no data, for this long is dropped

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>edgecnn camera</title>
<style>
body { font-family: sans-serif; background: #111; color: #eee; margin: 1em; }
img { max-width: 100%; border: 1px solid #444; }
#top li { margin: .2em 0; }
.bar { display: inline-block; height: .8em; background: #4c4; margin-right: .5em; }
</style>
</head>
<body>
<h1>edgecnn camera</h1>
<img src="/stream.mjpg" alt="live stream">
<ol id="top"><li>waiting for the first prediction...</li></ol>
<p id="status"></p>
<script>
async function refresh() {
  try {
    const r = await fetch("/predictions.json", {cache: "no-store"});
    const p = await r.json();
    const list = document.getElementById("top");
    list.replaceChildren(...(p.top || []).map(e => {
      const li = document.createElement("li");
      const bar = document.createElement("span");
      bar.className = "bar";
      bar.style.width = (e.score * 200).toFixed(0) + "px";
      li.append(bar, `${e.label} ${(e.score * 100).toFixed(1)}%`);
      return li;
    }));
    const ms = p.latency_ms ? p.latency_ms.inference.toFixed(1) + " ms inference" : "";
    document.getElementById("status").textContent = `frame ${p.frame ?? "-"} ${ms}`;
  } catch (e) {
    document.getElementById("status").textContent = "disconnected";
  }
}
refresh();
setInterval(refresh, 500);
</script>
</body>
</html>
"""


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT``, ``:PORT`` or ``PORT`` -> (host, port); the host defaults to 127.0.0.1."""
    host, sep, port = str(text).rpartition(":")
    if not sep:
        host, port = "", text
    host = host.strip("[]") or DEFAULT_HOST
    try:
        number = int(port)
    except ValueError:
        number = -1
    if not 0 <= number <= 65535:
        raise UsageError(f"Received --serve {text!r}; expected HOST:PORT or PORT, e.g. --serve 8080 or --serve "
                         f"0.0.0.0:8080")
    return host, number


class PreviewState:
    """The latest annotated frame and prediction, shared between the loop and the handlers."""

    def __init__(self):
        self._cond = threading.Condition()
        self._seq = 0
        self._image: Optional[np.ndarray] = None
        self._jpeg: Optional[bytes] = None
        self._jpeg_seq = -1
        self._prediction: dict = {}
        self.closed = False
        self.viewers = 0  # open /stream.mjpg connections

    def publish(self, image: np.ndarray, prediction: Optional[dict]) -> None:
        """Offer a new frame (not copied: the caller must not modify it afterwards)."""
        with self._cond:
            self._seq += 1
            self._image = image
            if prediction is not None:
                self._prediction = prediction
            self._cond.notify_all()

    def count_viewer(self, delta: int) -> None:
        with self._cond:
            self.viewers += delta

    def prediction(self) -> dict:
        with self._cond:
            return self._prediction

    def next_jpeg(self, after: int, timeout: float = RESEND_S) -> tuple[int, Optional[bytes]]:
        """A frame newer than ``after`` as (seq, JPEG bytes), waiting up to ``timeout`` seconds.

        After the timeout the latest frame is returned again, so a stream keeps
        flowing (and browsers keep showing it) while the loop is slow or stalled;
        (after, None) before the first frame and once closed.
        """
        import cv2

        with self._cond:
            self._cond.wait_for(lambda: self.closed or (self._seq > after and self._image is not None), timeout)
            if self.closed or self._image is None:
                return after, None
            seq, image = self._seq, self._image
            if self._jpeg_seq == seq:
                return seq, self._jpeg
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        jpeg = buf.tobytes() if ok else None
        with self._cond:
            if seq >= self._jpeg_seq:
                self._jpeg, self._jpeg_seq = jpeg, seq
        return seq, jpeg

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()


class _Handler(BaseHTTPRequestHandler):
    server_version = "edgecnn"
    state: PreviewState  # set on the per-server subclass

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        path = self.path.split("?", 1)[0]
        if path in ("/", "/index.html"):
            self._send(200, "text/html; charset=utf-8", PAGE.encode("utf-8"))
        elif path == "/predictions.json":
            self._send(200, "application/json", json.dumps(self.state.prediction()).encode("utf-8"))
        elif path == "/stream.mjpg":
            self._stream()
        else:
            self._send(404, "text/plain", b"not found; try / or /stream.mjpg or /predictions.json\n")

    def _send(self, code: int, ctype: str, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        seq = 0
        self.state.count_viewer(+1)
        try:
            while not self.state.closed:
                seq, jpeg = self.state.next_jpeg(seq)
                if jpeg is None:
                    continue
                self.wfile.write(
                    f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n".encode("ascii")
                )
                self.wfile.write(jpeg)
                self.wfile.write(b"\r\n")
                self.wfile.flush()
        except OSError:  # the viewer left (broken pipe, reset) or stopped reading for the timeout
            pass
        finally:
            self.state.count_viewer(-1)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (http.server signature)
        pass  # keep stderr for edgecnn's own notices


class PreviewServer:
    """Serves a :class:`PreviewState` on ``host:port`` in a background thread."""

    def __init__(self, host: str = DEFAULT_HOST, port: int = 8080, idle_timeout_s: float = IDLE_TIMEOUT_S):
        self.state = PreviewState()
        # StreamRequestHandler.timeout: every read and write of a connection gives up after it (socket timeout)
        handler = type("Handler", (_Handler,), {"state": self.state, "timeout": idle_timeout_s})
        try:
            self._httpd = ThreadingHTTPServer((host, port), handler)
        except OSError as exc:
            raise UsageError(
                f"cannot serve on {host}:{port} ({exc.strerror or exc}); pick another --serve port") from None
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="edgecnn-preview", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/"

    def start(self) -> "PreviewServer":
        self._thread.start()
        return self

    def publish(self, image: np.ndarray, prediction: Optional[dict]) -> None:
        self.state.publish(image, prediction)

    def close(self) -> None:
        self.state.close()
        self._httpd.shutdown()
        self._httpd.server_close()
