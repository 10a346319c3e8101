"""``edgecnn doctor``: can this machine run edgecnn models, and how fast could it?

Reports which inference backends import (and why not), package versions, CPU
model/features/cores, cameras and whether a display is available. Backends come
from :func:`edgecnn.runtime.probe_backends`; machine facts from
:mod:`edgecnn.machine`. Nothing heavy is imported unless asked.
"""

from __future__ import annotations

import glob
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from edgecnn.machine import cores, cpu_features, cpu_model, cpuinfo, package_versions
from edgecnn.table import text_table

INSTALL_DEVICE = "pip install 'edgecnn[device]'"
ARM32 = ("armv7l", "armv6l", "armv8l")
NO_ARM32_WHEELS = ("32-bit ARM Python ({arch}): PyPI has no numpy 2, LiteRT (ai-edge-litert) or ONNX Runtime wheels "
                   "for it, so the device runtimes cannot be installed; install the 64-bit OS (Raspberry Pi OS 64-bit, "
                   "aarch64)")


@dataclass
class Report:
    backends: list[dict]
    versions: dict[str, str]
    cpu: str
    cpu_features: list[str]
    cores: dict
    architecture: str
    cameras: list[dict]
    display: dict
    advice: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return any(b["available"] for b in self.backends)

    def to_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}


def cameras() -> list[dict]:
    """V4L2 devices (/dev/video*) with their driver names when sysfs has them."""
    found = []
    for dev in sorted(glob.glob("/dev/video*"), key=lambda p: (len(p), p)):
        name_file = Path("/sys/class/video4linux") / Path(dev).name / "name"
        try:
            name = name_file.read_text().strip()
        except OSError:
            name = None
        found.append({"device": dev, "name": name})
    return found


def display() -> dict:
    x11, wayland = os.environ.get("DISPLAY"), os.environ.get("WAYLAND_DISPLAY")
    return {"x11": x11, "wayland": wayland, "available": bool(x11 or wayland)}


def architecture() -> str:
    """The architecture this Python runs as: armv7l for a 32-bit userland on a 64-bit ARM kernel, where
    ``uname -m`` says aarch64 (32-bit Raspberry Pi OS on a Pi 4/5)."""
    import platform
    import struct

    machine = platform.machine()
    if machine.lower() in ("aarch64", "arm64") and struct.calcsize("P") == 4:
        return "armv7l"
    return machine


def diagnose(import_tensorflow: bool = False) -> Report:
    from edgecnn.runtime.load import probe_backends

    backends = [asdict(b) for b in probe_backends(import_tensorflow=import_tensorflow)]
    info = cpuinfo()
    report = Report(backends, package_versions(), cpu_model(info), cpu_features(info), cores(),
                    architecture(), cameras(), display())
    report.advice = advice(report)
    return report


def advice(report: Report) -> list[str]:
    out = []
    if report.architecture in ARM32:
        out.append(NO_ARM32_WHEELS.format(arch=report.architecture))
    elif report.architecture == "aarch64" and report.cpu_features and "asimddp" not in report.cpu_features:
        out.append("no int8 dot-product instructions (asimddp) on this CPU (e.g. the Pi 4's Cortex-A72): int8 "
                   "models gain less over float32 here; compare them with edgecnn benchmark")
    if not report.ok and report.architecture not in ARM32:
        out.append(f"no inference backend works: install one with {INSTALL_DEVICE} "
                   f"(LiteRT for .tflite and ONNX Runtime for .onnx)")
    for b in report.backends:
        if not b["available"] and b["detail"] and "numpy" in b["detail"]:
            out.append(f"{b['module']}: {b['detail']}")
    if report.ok and not any(b["available"] and b["backend"] == "litert" for b in report.backends):
        out.append("no TFLite interpreter: .tflite models will not run; pip install ai-edge-litert")
    if not report.cameras:
        out.append("no camera found (/dev/video*): live classification needs a USB camera, the Pi camera "
                   "(picamera2) or a video file/stream")
    if not report.display["available"]:
        out.append("no display (DISPLAY/WAYLAND_DISPLAY unset): use the camera command's headless output "
                   "(JSON lines, recording or HTTP preview)")
    return out


def render(report: Report) -> str:
    rows = [[b["backend"], b["module"], "ok" if b["available"] else "missing", b["version"] or "", b["detail"]]
            for b in report.backends]
    lines = ["Inference backends", text_table(["backend", "module", "status", "version", "detail"], rows), ""]
    lines.append("Versions: " + ", ".join(f"{k} {v}" for k, v in report.versions.items()))
    feats = " ".join(report.cpu_features) or "none of the tracked ones"
    lines.append(f"CPU: {report.cpu} ({report.architecture}); {report.cores['usable']} usable of "
                 f"{report.cores['logical']} logical cores; features: {feats}")
    cams = ", ".join(f"{c['device']}" + (f" ({c['name']})" if c["name"] else "") for c in report.cameras)
    lines.append(f"Cameras: {cams or 'none found'}")
    d = report.display
    shown = [f"DISPLAY={d['x11']}" if d["x11"] else "", f"WAYLAND_DISPLAY={d['wayland']}" if d["wayland"] else ""]
    lines.append(f"Display: {' '.join(s for s in shown if s) or 'none (headless)'}")
    if report.advice:
        lines += [""] + [f"- {a}" for a in report.advice]
    working = [b["module"] for b in report.backends if b["available"]]
    fix = "install the 64-bit OS" if report.architecture in ARM32 else f"run: {INSTALL_DEVICE}"
    lines += ["", f"OK: inference works with {', '.join(working)}" if report.ok else
              f"NOT OK: no inference backend; {fix}"]
    return "\n".join(lines)
