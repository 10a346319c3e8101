"""edgecnn doctor: backends, machine facts, and a non-zero exit without any interpreter."""

from __future__ import annotations

import json
import subprocess
import sys

from edgecnn.doctor import INSTALL_DEVICE
from edgecnn.machine import cpu_features, cpu_model

BLOCKED = ("ai_edge_litert", "tflite_runtime", "tensorflow", "onnxruntime", "keras")

# sys.modules[name] = None makes `import name` fail and importlib.util.find_spec(name) return None,
# as if the package were not installed.
RUN_BLOCKED = ("import sys\n"
               f"for name in {BLOCKED!r}: sys.modules[name] = None\n"
               "from edgecnn.cli import main\n"
               "sys.exit(main(sys.argv[1:]))\n")


def _doctor(*args, blocked=False):
    cmd = [sys.executable, "-c", RUN_BLOCKED] if blocked else [sys.executable, "-m", "edgecnn"]
    return subprocess.run(cmd + ["doctor", *args], capture_output=True, text=True, timeout=120)


def test_doctor_passes_with_the_device_runtimes():
    proc = _doctor("--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    working = {b["module"] for b in report["backends"] if b["available"]}
    assert {"ai_edge_litert", "onnxruntime"} <= working
    assert report["ok"] and report["cores"]["logical"] >= 1 and "numpy" in report["versions"]


def test_doctor_fails_naming_what_to_install_without_any_interpreter():
    proc = _doctor(blocked=True)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert INSTALL_DEVICE in proc.stdout and "NOT OK" in proc.stdout
    assert "ai_edge_litert" in proc.stdout and "not installed" in proc.stdout


def test_cpu_model_and_features_from_cpuinfo_blocks():
    x86 = {"model name": "Intel Xeon", "flags": "fpu sse4_2 avx avx2 fma avx512f avx512_vnni"}
    arm = {"Features": "fp asimd evtstrm crc32 asimddp", "Hardware": "BCM2835", "Model": "Raspberry Pi 5 Model B"}
    assert cpu_model(x86) == "Intel Xeon" and cpu_features(x86) == ["sse4_2", "avx", "avx2", "fma", "avx512f",
                                                                     "avx512_vnni"]
    assert cpu_model(arm) == "Raspberry Pi 5 Model B" and cpu_features(arm) == ["asimd", "asimddp"]
