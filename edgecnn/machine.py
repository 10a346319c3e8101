"""Facts about this machine: CPU model and features, cores, OS, Python, installed package versions.

The one source of them for ``edgecnn doctor``, benchmark results and export
reports. Read from /proc and package metadata only; nothing heavy is imported.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Iterable, Optional

# Distributions whose versions doctor, benchmark results and export reports record (the installed ones).
PACKAGES = ("edgecnn", "numpy", "opencv-python-headless", "opencv-python", "ai-edge-litert", "tflite-runtime",
            "onnxruntime", "tensorflow", "tensorflow-cpu", "keras", "tf2onnx", "onnx", "picamera2", "psutil", "rich",
            "matplotlib")

# CPU flags worth knowing for inference speed, by the name /proc/cpuinfo uses. ARM: asimddp (int8 dot product:
# Cortex-A55/A76 and later, not the Pi 4's A72), i8mm (int8 matrix multiply), fphp/asimdhp (float16), atomics (LSE).
INTERESTING_FLAGS = ("neon", "asimd", "asimddp", "i8mm", "fphp", "asimdhp", "atomics", "sve", "sse4_2", "avx", "avx2",
                     "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")

# ARM Ltd. cores by /proc/cpuinfo's "CPU part" (implementer 0x41), for the boards edgecnn targets.
ARM_CORES = {"0xd03": "Cortex-A53", "0xd05": "Cortex-A55", "0xd07": "Cortex-A57", "0xd08": "Cortex-A72",
             "0xd09": "Cortex-A73", "0xd0b": "Cortex-A76", "0xd0c": "Neoverse-N1", "0xd41": "Cortex-A78"}


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
    """The CPU (x86 ``model name``) or board (ARM ``Model``), with the ARM core when cpuinfo names it."""
    info = cpuinfo() if info is None else info
    core = ARM_CORES.get(info.get("CPU part", "").lower()) if info.get("CPU implementer") == "0x41" else None
    for key in ("model name", "Model", "Hardware", "cpu model"):
        if info.get(key):
            return f"{info[key]} ({core})" if core and core not in info[key] else info[key]
    return core or platform.processor() or platform.machine() or "unknown"


def cpu_flags(info: dict[str, str] | None = None) -> set[str]:
    """Every CPU flag /proc/cpuinfo lists (x86 ``flags``, ARM ``Features``)."""
    info = cpuinfo() if info is None else info
    return set((info.get("flags") or info.get("Features") or "").split())


def cpu_features(info: dict[str, str] | None = None) -> list[str]:
    """The inference-relevant CPU flags present."""
    flags = cpu_flags(info)
    return [f for f in INTERESTING_FLAGS if f in flags]


def x86_without_vnni(info: dict[str, str] | None = None) -> bool:
    """True on an x86 CPU without VNNI (any ``*vnni*`` flag), where ONNX Runtime's int8 kernels can saturate."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    flags = cpu_flags(info)
    return bool(flags) and not any("vnni" in f for f in flags)


def cores() -> dict[str, int | None]:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"logical": os.cpu_count(), "usable": usable}


def dist_version(*names: str) -> Optional[str]:
    """Version of the first installed distribution among ``names`` (e.g. tensorflow, tensorflow-cpu), else None."""
    from importlib import metadata

    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def package_versions(names: Iterable[str] = PACKAGES) -> dict[str, str]:
    """``{name: version}`` of the installed ones among ``names``, from package metadata (no imports)."""
    found = {}
    for name in names:
        version = dist_version(name)
        if version is not None:
            found[name] = version
    return found


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
