"""edgecnn doctor: backends, machine facts, and a non-zero exit without any interpreter."""

from __future__ import annotations

import json
import subprocess
import sys

from edgecnn.doctor import INSTALL_DEVICE, Report, advice, render
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


def _report(arch, features, ok=True):
    backend = {"backend": "litert", "module": "ai_edge_litert", "available": ok, "version": "2.3.0", "detail": ""}
    display = {"available": True, "x11": ":0", "wayland": None}
    return Report([backend], {}, "board", features, {"logical": 4, "usable": 4}, arch, [], display)


def test_pi_cpuinfo_names_the_core_and_the_int8_features():
    pi4 = {"Features": "fp asimd evtstrm crc32 cpuid", "CPU implementer": "0x41", "CPU part": "0xd08",
           "Model": "Raspberry Pi 4 Model B Rev 1.4"}
    pi5 = {"Features": "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop "
                       "asimddp", "CPU implementer": "0x41", "CPU part": "0xd0b",
           "Model": "Raspberry Pi 5 Model B Rev 1.0"}
    assert cpu_model(pi4) == "Raspberry Pi 4 Model B Rev 1.4 (Cortex-A72)" and cpu_features(pi4) == ["asimd"]
    assert cpu_model(pi5) == "Raspberry Pi 5 Model B Rev 1.0 (Cortex-A76)"
    assert cpu_features(pi5) == ["asimd", "asimddp", "fphp", "asimdhp", "atomics"]
    pi4_advice = " ".join(advice(_report("aarch64", cpu_features(pi4))))
    assert "no int8 dot-product instructions (asimddp)" in pi4_advice
    assert "asimddp" not in " ".join(advice(_report("aarch64", cpu_features(pi5))))


def test_32bit_arm_says_there_are_no_wheels_instead_of_pip_install():
    report = _report("armv7l", ["neon"], ok=False)
    report.advice = advice(report)
    text = render(report)
    assert "32-bit ARM Python (armv7l)" in text and "no numpy 2, LiteRT (ai-edge-litert) or ONNX Runtime wheels" in text
    assert "NOT OK: no inference backend; install the 64-bit OS" in text and INSTALL_DEVICE not in text
