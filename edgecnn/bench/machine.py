"""Facts about this machine: CPU model and features, cores, OS, Python, package versions.

Read from /proc and package metadata only; nothing heavy is imported.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

from edgecnn import versions

# Distributions whose versions a benchmark or doctor report records.
PACKAGES = ("edgecnn", "numpy", "opencv-python-headless", "opencv-python", "ai-edge-litert", "tflite-runtime",
            "onnxruntime", "tensorflow", "tensorflow-cpu", "keras", "psutil", "rich", "matplotlib")

# CPU flags worth knowing for inference speed, by the name /proc/cpuinfo uses.
INTERESTING_FLAGS = ("neon", "asimd", "asimddp", "fphp", "asimdhp", "sse4_2", "avx", "avx2", "fma",
                     "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")


def cpuinfo(path: str | Path = "/proc/cpuinfo") -> dict[str, str]:
    """The first processor block of /proc/cpuinfo as a dict (empty when unreadable)."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return {}
    info: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() and key.strip() not in info:
            info[key.strip()] = value.strip()
    return info


def cpu_model(info: dict[str, str] | None = None) -> str:
    info = cpuinfo() if info is None else info
    for key in ("model name", "Model", "Hardware", "cpu model"):
        if info.get(key):
            return info[key]
    return platform.processor() or platform.machine() or "unknown"


def cpu_features(info: dict[str, str] | None = None) -> list[str]:
    """The inference-relevant CPU flags present (x86 ``flags``, ARM ``Features``)."""
    info = cpuinfo() if info is None else info
    flags = set((info.get("flags") or info.get("Features") or "").split())
    return [f for f in INTERESTING_FLAGS if f in flags]


def cores() -> dict[str, int | None]:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"logical": os.cpu_count(), "usable": usable}


def package_versions(names=PACKAGES) -> dict[str, str]:
    """Installed versions from package metadata (no imports); missing packages are left out."""
    return versions.package_versions(names)


def machine_info() -> dict:
    """Everything a results file needs to say where it was measured."""
    info = cpuinfo()
    uname = platform.uname()
    return {
        "cpu": cpu_model(info),
        "cpu_features": cpu_features(info),
        "cores": cores(),
        "architecture": uname.machine,
        "os": f"{uname.system} {uname.release}",
        "os_pretty": _os_release(),
        "python": platform.python_version(),
        "memory_total_mb": _mem_total_mb(),
        "versions": package_versions(),
    }


def _os_release() -> str | None:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return None


def _mem_total_mb() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    return None
