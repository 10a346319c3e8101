"""Browser preview: annotated frames as MJPEG plus the current top-k, on the standard library's HTTP server.

Endpoints: ``/`` (an HTML page showing the stream and polling the JSON),
``/stream.mjpg`` (multipart/x-mixed-replace JPEG frames),
``/predictions.json`` (the latest prediction) and ``/drift.json`` (the drift report and the collection counts, drawn
on the page as two small SVG plots: class shares recent vs baseline, top-1 score histogram recent vs run).
Frames are JPEG-encoded in the clients' handler threads, once per frame however many clients watch, and not
at all when nobody does; a stalled loop's last frame is re-sent twice a second.
Binds 127.0.0.1 unless another host is given. A client that stays silent (or stops reading the stream) for
``idle_timeout_s`` is dropped, so idle connections cannot hold the handler threads.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Optional

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
#drift svg { background: #1b1b1b; margin: 0 .5em .5em 0; }
.recent { fill: #4c4; color: #4c4; } .base { fill: #58f; color: #58f; } .warn { color: #fa4; }
</style>
</head>
<body>
<h1>edgecnn camera</h1>
<img src="/stream.mjpg" alt="live stream">
<ol id="top"><li>waiting for the first prediction...</li></ol>
<p id="status"></p>
<div id="drift" hidden>
<h2>drift <small><span class="recent">&#9632;</span> recent window <span class="base">&#9632;</span>
<span id="base-name">first hour</span></small></h2>
<svg id="classes" width="320" height="150" role="img" aria-label="class shares"></svg>
<svg id="scores" width="320" height="150" role="img" aria-label="top-1 score histogram"></svg>
<p id="drift-text"></p>
</div>
<script>
const NS = "http://www.w3.org/2000/svg";
function el(name, attrs, text) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}
function shares(counts) {
  const n = counts.reduce((a, b) => a + b, 0);
  return counts.map(c => n ? c / n : 0);
}
function bars(svg, names, a, b, title) {
  const w = +svg.getAttribute("width"), h = +svg.getAttribute("height"), top = 18, bottom = 30;
  const slot = (w - 10) / names.length, bw = Math.max(2, slot / 2 - 2), max = Math.max(0.01, ...a, ...b);
  const parts = [el("text", {x: 5, y: 13, fill: "#ccc", "font-size": 12}, title)];
  names.forEach((name, i) => {
    [[a[i], "recent", 0], [b[i], "base", bw + 1]].forEach(([v, cls, dx]) => {
      const bh = (h - top - bottom) * v / max;
      parts.push(el("rect", {x: 5 + i * slot + dx, y: h - bottom - bh, width: bw, height: bh, class: cls}));
    });
    parts.push(el("text", {x: 5 + i * slot, y: h - bottom + 12, fill: "#aaa", "font-size": 10},
                  String(name).slice(0, 9)));
  });
  svg.replaceChildren(...parts);
}
async function refreshDrift() {
  try {
    const r = await fetch("/drift.json", {cache: "no-store"});
    const s = await r.json();
    const d = s.drift;
    if (!d || !d.run.frames) return;
    document.getElementById("drift").hidden = false;
    const recent = shares(d.recent.classes), base = shares(d.baseline.classes);
    const shown = d.labels.map((_, i) => i).sort((i, j) => Math.max(recent[j], base[j]) - Math.max(recent[i], base[i]))
      .slice(0, 10).sort((i, j) => i - j);  // many classes: the ten most frequent
    bars(document.getElementById("classes"), shown.map(i => d.labels[i]), shown.map(i => recent[i]),
         shown.map(i => base[i]), "class shares");
    const edges = d.score_bin_edges.slice(0, -1).map(e => e.toFixed(1));
    bars(document.getElementById("scores"), edges, shares(d.recent.score_bins), shares(d.run.score_bins),
         "top-1 score histogram (blue: whole run)");
    const tv = d.distances.class_tv_vs_baseline;
    const c = s.collect ? `; frames kept: ${Object.values(s.collect.kept).reduce((a, b) => a + b, 0)}` : "";
    const text = document.getElementById("drift-text");
    text.className = d.test.departed ? "warn" : "";
    text.textContent = `class share distance ${tv === null ? "-" : tv.toFixed(2)} (threshold ${d.test.threshold}` +
      `${d.test.departed ? ", departed" : ""}); under score ${d.min_score}: recent ` +
      `${d.recent.under_threshold === null ? "-" : (d.recent.under_threshold * 100).toFixed(0) + "%"}, run ` +
      `${(d.run.under_threshold * 100).toFixed(0)}%${c}`;
  } catch (e) {}
}
refreshDrift();
setInterval(refreshDrift, 2000);
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
    stats: Callable[[], dict]  # the drift report and collection counts, set on the per-server subclass

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        path = self.path.split("?", 1)[0]
        if path in ("/", "/index.html"):
            self._send(200, "text/html; charset=utf-8", PAGE.encode("utf-8"))
        elif path == "/predictions.json":
            self._send(200, "application/json", json.dumps(self.state.prediction()).encode("utf-8"))
        elif path == "/drift.json":
            self._send(200, "application/json", json.dumps(self.stats()).encode("utf-8"))
        elif path == "/stream.mjpg":
            self._stream()
        else:
            self._send(404, "text/plain", b"not found; try / or /stream.mjpg or /predictions.json or /drift.json\n")

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

    def __init__(self, host: str = DEFAULT_HOST, port: int = 8080, idle_timeout_s: float = IDLE_TIMEOUT_S,
                 stats: Optional[Callable[[], dict]] = None):
        self.state = PreviewState()
        # StreamRequestHandler.timeout: every read and write of a connection gives up after it (socket timeout)
        handler = type("Handler", (_Handler,), {"state": self.state, "timeout": idle_timeout_s,
                                                "stats": staticmethod(stats or dict)})
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
