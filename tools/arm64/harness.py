#!/usr/bin/env python3
"""Emulated Raspberry Pi 4 / Pi 5: install edgecnn as the device README says, then doctor, tests, predict, exports.

    sudo python3 tools/arm64/harness.py                           # both boards, results in devices/*/results/
    sudo python3 tools/arm64/harness.py --export EXPORT_DIR --data VAL_DIR   # + every exported format vs x86
    sudo python3 tools/arm64/harness.py --smoke --boards raspberry-pi-4     # CI: install, doctor, tests, predict

Each board runs in a fresh arm64 Debian Bookworm rootfs (Python 3.11, as Raspberry Pi
OS Bookworm) under qemu-user, with ``QEMU_CPU`` set to the board's core and the board's
/proc/cpuinfo shown to the programs (LiteRT's and ONNX Runtime's CPU detection read it).
Emulation checks correctness and installability only: its timings mean nothing, and
none are recorded. See devices/README.md.

Exit status: 0 all checks passed, 1 a check failed (on the emulated board, or building
the wheel or the x86 reference here), 2 bad arguments, 75 emulation unavailable here (no
root, qemu, binfmt, Debian mirror or PyPI).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path[:0] = [str(HERE), str(REPO)]  # the harness's modules; edgecnn's light tables (formats, machine) from here

import compare  # noqa: E402
import readme  # noqa: E402
import rootfs  # noqa: E402

from edgecnn.formats import FORMATS, format_for_path  # noqa: E402
from edgecnn.machine import cpu_model  # noqa: E402

BOARDS = {"raspberry-pi-4": "cortex-a72", "raspberry-pi-5": "cortex-a76"}  # board -> QEMU_CPU
ALIASES = {"pi4": "raspberry-pi-4", "pi5": "raspberry-pi-5"}
SKIP = 75
PYPI = "https://pypi.org/simple/pip/"
TEST_DEPS = ("pytest", "pillow", "onnx")  # what the test suite needs beyond the device extra
CORAL = "data/coral"
CORAL_MODEL = "mobilenet_v2_1.0_224_quant.tflite"
CAT = ("cat.bmp", "Egyptian cat")
DEVICE_BACKENDS = ("litert", "onnx")
VENV = readme.VENV
VENV_IN_ROOTFS = VENV.replace("~", f"/home/{rootfs.USER}")
EMULATED_NOTE = ("EMULATED: qemu-user on an x86-64 host, not a Raspberry Pi. Correctness and installability only; "
                 "no timings (emulated speed means nothing).")


def say(message: str) -> None:
    print(f"arm64: {message}", flush=True)


def banner(message: str) -> None:
    print(f"!!!!!!!!!! {message}", flush=True)


def shared_dir() -> Path:
    return Path(os.environ.get("EDGECNN_SHARED", REPO.parent / "shared")).resolve()


# --------------------------------------------------------------------- x86 side
def repo_files() -> list[str]:
    """Tracked and untracked-but-not-ignored files: what a clean clone plus the working changes hold."""
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True,
                         check=True).stdout.decode()
    return [f for f in out.split("\0") if f and (REPO / f).is_file()]


def copy_tree(files: list[str], dest: Path) -> None:
    for name in files:
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, target)


def build_wheel(command: str, tmp: Path) -> Path:
    """Run the README's `pip wheel` line in a clean copy of the checkout; the wheel it wrote."""
    src = tmp / "checkout"
    copy_tree(repo_files(), src)
    env = dict(os.environ)
    venv_bin = REPO / ".venv" / "bin"
    # `python3` in the README: a Python with pip. The one on PATH when it has pip: CI recreates .venv beside --prepare.
    has_pip = subprocess.run(["python3", "-m", "pip", "--version"], capture_output=True).returncode == 0
    if not has_pip and (venv_bin / "python3").exists():
        env["PATH"] = f"{venv_bin}{os.pathsep}{env.get('PATH', '')}"
    say(f"building the wheel: {command}")
    proc = subprocess.run(["bash", "-ec", command], cwd=src, env=env, capture_output=True, text=True)
    wheels = sorted((src / "dist").glob("edgecnn-*.whl"))
    if proc.returncode or len(wheels) != 1:
        sys.exit(f"error: `{command}` did not build one edgecnn wheel:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    say(f"wheel: {wheels[0].name}")
    return wheels[0]


def host_python(args) -> str:
    if args.x86_python:
        return args.x86_python
    venv = REPO / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def device_models(export: Path) -> list[Path]:
    """The files in an export folder that the device extra runs (LiteRT and ONNX Runtime formats)."""
    names = [f.filename for f in FORMATS.values() if f.backend in DEVICE_BACKENDS]
    return [export / n for n in names if (export / n).is_file()]


def x86_reference(args, models: list[Path], tmp: Path) -> Path:
    out = tmp / "x86"
    cmd = [host_python(args), str(HERE / "classify.py"), "--data", str(args.data), "--out", str(out),
           "--per-class", str(args.per_class), *map(str, models)]
    say(f"x86 reference: {len(models)} models on {args.data}")
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    if proc.returncode:
        sys.exit(f"error: the x86 reference run failed:\n{proc.stderr[-3000:]}")
    return out


def x86_coral(args) -> dict:
    """This machine's top-1 for each Coral photo (same predict command as on the board)."""
    coral = shared_dir() / CORAL
    proc = subprocess.run([host_python(args), "-m", "edgecnn", "predict", str(coral / CORAL_MODEL), str(coral),
                           "--json", "--top-k", "1"], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    if proc.returncode:
        sys.exit(f"error: edgecnn predict on x86 (the reference) failed:\n{proc.stderr[-3000:]}")
    return {Path(r["input"]).name: r["top"][0] for r in _json_lines(proc.stdout)}


def host_facts() -> dict:
    """Where the emulation (and the x86 reference) ran."""
    qemu = subprocess.run(["qemu-aarch64-static", "--version"], capture_output=True, text=True).stdout
    return {"rootfs": f"{rootfs.RECIPE} (Debian 12, Python 3.11)", "qemu": (qemu.splitlines() or ["?"])[0],
            "host_cpu": cpu_model()}


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


# ------------------------------------------------------------------ the board
class Board:
    """One emulated board: a fresh rootfs, edgecnn installed per its README, the checks, their record."""

    def __init__(self, name: str, args, base: Path, wheel: Path, work: Path):
        self.name, self.args, self.base, self.wheel, self.work = name, args, base, wheel, work
        self.qemu_cpu = BOARDS[name]
        self.profile = json.loads((REPO / "edgecnn" / "bench" / "profiles" / f"{name}.json").read_text())
        self.steps: list[dict] = []
        self.record: dict = {"board": name, "emulated": True, "note": EMULATED_NOTE, "qemu_cpu": self.qemu_cpu,
                             "cpuinfo": f"tools/arm64/cpuinfo/{name}", **host_facts()}
        self.logs: dict[str, str] = {}

    def step(self, name: str, ok: bool, detail: str = "") -> bool:
        self.steps.append({"step": name, "ok": bool(ok), "detail": detail})
        say(f"[{self.name}] {'ok  ' if ok else 'FAIL'} {name}{': ' + detail if detail else ''}")
        return ok

    def run(self, fs: rootfs.Rootfs, command: str, log: str, timeout: float = 3600,
            user: str = rootfs.USER) -> subprocess.CompletedProcess:
        proc = fs.run(command, timeout=timeout, user="root" if user == "root" else rootfs.USER)
        self.logs[log] = self.logs.get(log, "") + f"$ {command}\n{proc.stdout}{proc.stderr}\n[exit {proc.returncode}]\n"
        return proc

    def env(self) -> dict:
        return {"QEMU_CPU": self.qemu_cpu, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}

    def prepare(self) -> bool:
        """Run the README's install steps once and cache the venv (CI: beside the test suite, off the critical path);
        True when today's venv is cached."""
        layer = venv_layer(self.wheel, self.name)
        if layer.is_dir():
            say(f"[{self.name}] venv cached: {layer}")
            return True
        problem = rootfs.reachable(PYPI)
        if problem:
            raise rootfs.Unavailable(f"cannot install on the board: {problem}")
        with rootfs.Rootfs(self.base, say, self.env()) as fs:
            fs.set_cpuinfo(HERE / "cpuinfo" / self.name)
            self.stage(fs)
            if not self.install(fs):
                return False
            self.save_venv(fs, layer)
        return True

    def check(self, x86_models: Path | None, coral_x86: dict) -> bool:
        layer = venv_layer(self.wheel, self.name)
        reuse = (self.args.smoke or self.args.reuse_venv) and layer.is_dir()
        problem = None if reuse else rootfs.reachable(PYPI)
        if problem:
            raise rootfs.Unavailable(f"cannot install on the board: {problem}")
        with rootfs.Rootfs(self.base, say, self.env(), layers=(layer,) if reuse else ()) as fs:
            fs.set_cpuinfo(HERE / "cpuinfo" / self.name)
            self.stage(fs)
            if not (self.install_wheel(fs) if reuse else self.install(fs)):
                return False
            if not reuse:
                self.save_venv(fs, layer)
            self.stage_tests(fs)
            self.doctor(fs)
            self.predict(fs, coral_x86)
            self.tests(fs)
            if x86_models is not None:
                self.exports(fs, x86_models)
        return all(s["ok"] for s in self.steps)

    def save_venv(self, fs: rootfs.Rootfs, layer: Path) -> None:
        """Cache the installed venv, with the record of the README steps that made it (a reuse reports them)."""
        made = {"board": self.name, "qemu_cpu": self.qemu_cpu, "steps": self.steps,
                "log": self.logs.get("install.txt", "")}
        fs.save_layer(VENV_IN_ROOTFS, layer)
        layer.with_name(layer.name + ".install.json").write_text(json.dumps(made, indent=1))
        for old in layer.parent.glob("*"):
            if old.name[:10] < layer.name[:10]:  # an earlier day's venv and its record
                shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink(missing_ok=True)

    # ------------------------------------------------------------- staging
    def stage(self, fs: rootfs.Rootfs) -> None:
        """What the user copied to the board: the wheel, a model and a photo."""
        coral = shared_dir() / CORAL
        for src in (self.wheel, coral / CORAL_MODEL, coral / CAT[0]):
            if src.is_file():
                shutil.copy2(src, fs.home(src.name))
        fs.chown(fs.home())

    def stage_tests(self, fs: rootfs.Rootfs) -> None:
        """The repository without the package (tests import the installed edgecnn), shared data, the exports."""
        copy_tree([f for f in repo_files() if not f.startswith("edgecnn/")], fs.home("edgecnn"))
        fs.chown(fs.home("edgecnn"))
        if shared_dir().is_dir():
            fs.bind(shared_dir(), "/home/pi/shared")
        if self.args.export:
            fs.bind(self.args.export.resolve(), "/home/pi/export")
            fs.bind(self.args.data.resolve(), "/home/pi/data")

    # --------------------------------------------------------------- checks
    def install(self, fs: rootfs.Rootfs) -> bool:
        """The README's board block as a new user runs it, then what the test suite needs."""
        steps = readme.install_steps(REPO / "devices" / self.name / "README.md")
        for user, command in readme.board_commands(steps.board):
            proc = self.run(fs, f"set -e; {command}", "install.txt", user=user)
            detail = _tail(proc) if proc.returncode else ""
            if not self.step(f"README: {_short(command)}", proc.returncode == 0, detail):
                return False
        proc = self.run(fs, f"{VENV}/bin/pip install -q {' '.join(TEST_DEPS)}", "install.txt")
        if not self.step(f"pip install {' '.join(TEST_DEPS)} (for the test suite)", proc.returncode == 0, _tail(proc)):
            return False
        return self.installed(fs)

    def install_wheel(self, fs: rootfs.Rootfs) -> bool:
        """Smoke run on today's cached venv (same README steps, same day): install this wheel over it. The README
        steps that made the venv are reported as they went then."""
        made = venv_layer(self.wheel, self.name)
        made = made.with_name(made.name + ".install.json")
        if made.is_file():
            record = json.loads(made.read_text())
            for s in record["steps"]:
                self.step(s["step"], s["ok"], f"{s['detail'] + '; ' if s['detail'] else ''}when the venv was cached, "
                                              f"emulated {record['board']} ({record['qemu_cpu']})")
            self.logs["install.txt"] = record["log"]
        proc = self.run(fs, f"{VENV}/bin/pip install -q --no-deps --force-reinstall {self.wheel.name}", "install.txt")
        detail = (f"onto the venv cached today by this README's steps ({venv_layer(self.wheel, self.name).name})"
                  if proc.returncode == 0 else _tail(proc))
        return self.step(f"pip install {self.wheel.name}", proc.returncode == 0, detail) and self.installed(fs)

    def installed(self, fs: rootfs.Rootfs) -> bool:
        probe = ("import importlib.metadata as m, json, edgecnn; "
                 "print(json.dumps({'edgecnn': edgecnn.__file__, 'packages': "
                 "{d.metadata['Name'].lower(): d.version for d in m.distributions()}}))")
        proc = self.run(fs, f"{VENV}/bin/python -c \"{probe}\"", "install.txt")
        facts = _json_lines(proc.stdout)
        packages = facts[0]["packages"] if facts else {}
        self.record["versions"] = {k: packages[k] for k in sorted(packages) if k in _REPORTED}
        from_wheel = bool(facts) and "/edgecnn-venv/" in facts[0]["edgecnn"]
        no_tf = not any(k.startswith("tensorflow") or k == "keras" for k in packages)
        return self.step("edgecnn imported from the venv, no TensorFlow", from_wheel and no_tf,
                         "" if from_wheel and no_tf else proc.stdout[-500:] + proc.stderr[-500:])

    def doctor(self, fs: rootfs.Rootfs) -> None:
        text = self.run(fs, f"{VENV}/bin/edgecnn doctor", "doctor.txt")
        proc = fs.run(f"{VENV}/bin/edgecnn doctor --json")
        try:
            report = json.loads(proc.stdout)
        except ValueError:
            self.step("edgecnn doctor", False, _tail(proc))
            return
        expected = set(self.profile.get("cpu_features_expected", []))
        found = set(report.get("cpu_features", []))
        problems = [f"missing {sorted(expected - found)}"] if expected - found else []
        if "asimddp" in found and "asimddp" not in expected:
            problems.append("reports asimddp, which this board's core lacks")
        if report.get("architecture") != "aarch64":
            problems.append(f"architecture {report.get('architecture')}")
        working = {b["backend"] for b in report.get("backends", []) if b["available"]}
        if not set(DEVICE_BACKENDS) <= working:
            problems.append(f"backends working: {sorted(working)}")
        self.record["doctor"] = {k: report.get(k) for k in ("cpu", "cpu_features", "architecture", "ok", "advice")}
        self.step("edgecnn doctor", text.returncode == 0 and not problems,
                  "; ".join(problems) or f"features {' '.join(report.get('cpu_features', []))}")

    def predict(self, fs: rootfs.Rootfs, coral_x86: dict) -> None:
        if not (fs.home(CORAL_MODEL).is_file() and fs.home(CAT[0]).is_file()):
            self.step("predict", False, f"{shared_dir() / CORAL} not found: no model to run")
            return
        proc = self.run(fs, f"{VENV}/bin/edgecnn predict {CORAL_MODEL} {CAT[0]} --top-k 3", "predict.txt")
        first = re.sub(r"\s*\([\d.]+ ms\)", "", proc.stdout.splitlines()[0]) if proc.stdout else ""  # no timings
        self.step(f"edgecnn predict names the cat ({CAT[1]})", proc.returncode == 0 and CAT[1] in first,
                  first or _tail(proc))
        proc = self.run(fs, f"{VENV}/bin/edgecnn predict {CORAL_MODEL} shared/{CORAL} --json --top-k 1", "predict.txt")
        rows = []
        for r in _json_lines(proc.stdout):
            name = Path(r["input"]).name
            x86 = coral_x86.get(name, {})
            rows.append({"image": f"shared/{CORAL}/{name}", "label": r["top"][0]["label"],
                         "score": r["top"][0]["score"], "x86_label": x86.get("label"), "x86_score": x86.get("score")})
        self.record["coral"] = {"model": f"shared/{CORAL}/{CORAL_MODEL}", "predictions": rows}
        same = all(r["label"] == r["x86_label"] for r in rows)
        self.step("Coral photos: same top-1 as x86", proc.returncode == 0 and bool(rows) and same,
                  f"{sum(r['label'] == r['x86_label'] for r in rows)}/{len(rows)} photos")

    def tests(self, fs: rootfs.Rootfs) -> None:
        select = f" {self.args.tests}" if self.args.tests else ""
        proc = self.run(fs, f"cd edgecnn && {VENV}/bin/python -m pytest -q -rs -p no:cacheprovider{select}",
                        "tests.txt", timeout=self.args.test_timeout)
        summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else _tail(proc)
        self.record["tests"] = {"command": f"python -m pytest -q -rs{select}", "summary": summary.strip("= ")}
        self.step("test suite without TensorFlow", proc.returncode == 0, summary.strip("= "))

    def exports(self, fs: rootfs.Rootfs, x86_dir: Path) -> None:
        models = device_models(self.args.export)
        out = f"out/{self.name}"
        cmd = (f"{VENV}/bin/python edgecnn/tools/arm64/classify.py --data data --out {out} --no-exact "
               f"--jobs {os.cpu_count() or 1} --per-class {self.args.per_class} "
               + " ".join(f"export/{m.name}" for m in models))
        proc = self.run(fs, cmd, "exports.txt", timeout=self.args.export_timeout)
        if not self.step(f"classify {self.args.data.name} with {len(models)} exported models", proc.returncode == 0,
                         _tail(proc) if proc.returncode else ""):
            return
        keep = rootfs.cache_dir() / "last-run" / self.name  # the per-image figures, for a closer look
        shutil.rmtree(keep, ignore_errors=True)
        shutil.copytree(fs.home(out), keep)
        shutil.copytree(x86_dir, keep / "x86")
        self.record["exports"] = export_figures(fs.home(out), x86_dir, models, self.args)
        for row in self.record["exports"]["formats"]:
            if row["format"] in self.args.must_agree:
                self.step(f"{row['format']}: same top-1 as x86 on >= 99% of images",
                          row["vs_x86"]["agreement"] >= 0.99, f"{row['vs_x86']['agreement']:.2%}")

    # ------------------------------------------------------------- results
    def write(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.record["steps"] = self.steps
        self.record["ok"] = all(s["ok"] for s in self.steps)
        (folder / "results.json").write_text(json.dumps(self.record, indent=2) + "\n")
        (folder / "README.md").write_text(render_markdown(self.record))
        for name, text in self.logs.items():
            (folder / name).write_text(_portable(text))
        say(f"[{self.name}] results in {folder}")


_REPORTED = ("edgecnn", "numpy", "opencv-python-headless", "ai-edge-litert", "onnxruntime", "pytest", "pillow", "onnx")


def _short(command: str, width: int = 70) -> str:
    command = readme.strip_comment(command)
    return command if len(command) <= width else command[:width - 3] + "..."


def venv_layer(wheel: Path, board: str) -> Path:
    """Where today's installed venv is cached: keyed by the README steps, the wheel's requirements and the date,
    so a new release of a dependency on PyPI reaches the smoke run within a day."""
    import hashlib
    import zipfile

    with zipfile.ZipFile(wheel) as zf:
        meta = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        requires = sorted(line for line in zf.read(meta).decode().splitlines() if line.startswith("Requires-Dist:"))
    board_block = readme.install_steps(REPO / "devices" / board / "README.md").board
    today = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    key = hashlib.sha256("\n".join([board_block, *TEST_DEPS, *requires, today]).encode()).hexdigest()[:12]
    return rootfs.cache_dir() / "venvs" / f"{today}-{key}"


def _tail(proc: subprocess.CompletedProcess, lines: int = 8) -> str:
    text = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
    return " | ".join(text[-lines:])


def _portable(text: str) -> str:
    """Logs without this machine's paths, and without latencies (emulated speed means nothing)."""
    text = re.sub(r"\s*\([\d.]+ ms\)", "", text)
    text = re.sub(r', "latency_ms": [\d.]+', "", text)
    return text.replace(str(REPO.parent), "<work>").replace(str(rootfs.cache_dir()), "<cache>")


def export_figures(arm_dir: Path, x86_dir: Path, models: list[Path], args) -> dict:
    rows = []
    for model in models:
        arm = compare.load(arm_dir / f"{model.name}.json")
        x86 = compare.load(x86_dir / f"{model.name}.json")
        row = {"format": format_for_path(model).name, "file": model.name,
               "accuracy_board": compare.accuracy(arm), "accuracy_x86": compare.accuracy(x86),
               "vs_x86": compare.compare(arm, x86)}
        exact = x86_dir / f"{model.name}.exact.json"
        if exact.is_file():
            row["exact_int8"] = exact_int8_figures(arm, x86, compare.load(exact))
        rows.append(row)
    report = args.export / "export_report.json"
    source = json.loads(report.read_text()).get("model") if report.is_file() else None
    return {"export": args.export.name, "export_model": source if isinstance(source, str) else None,
            "data": _data_name(args.data), "per_class": args.per_class or None, "formats": rows}


def exact_int8_figures(arm: dict, x86: dict, x86_exact: dict) -> dict:
    """Does the board's ONNX Runtime compute the int8 arithmetic as unfused QDQ does (no saturation)?"""
    return {
        "note": "reference (x86_exact) = ONNX Runtime on x86 with graph fusions off (QDQ unfused: DequantizeLinear "
                "-> float op -> QuantizeLinear), the QDQ graph's int8 arithmetic without fused int8 kernels, so "
                "without saturation; fused kernels round differently, so even non-saturating ones differ slightly",
        "accuracy_x86_exact": compare.accuracy(x86_exact),
        "board_vs_x86_exact": compare.compare(arm, x86_exact),
        "x86_vs_x86_exact": compare.compare(x86, x86_exact),
    }


def _data_name(data: Path) -> str:
    data = data.resolve()
    try:
        return f"shared/{data.relative_to(shared_dir()).as_posix()}"
    except ValueError:
        return data.name


def render_markdown(record: dict) -> str:
    lines = [f"# {record['board']}: emulated ({record['qemu_cpu']})", "", f"**{record['note']}**", "",
             f"Where: {record.get('qemu', 'qemu')} with `QEMU_CPU={record['qemu_cpu']}` and the board's "
             f"/proc/cpuinfo (`{record['cpuinfo']}`) on an {record.get('host_cpu', 'x86-64')} host; rootfs "
             f"`{record.get('rootfs', '')}`. Repeat from the repository root: "
             f"`{record.get('command', 'sudo python3 tools/arm64/harness.py')}` (devices/README.md).", "",
             "| check | result | detail |", "|---|---|---|"]
    lines += [f"| {s['step'].replace('|', chr(92) + '|')} | {'ok' if s['ok'] else 'FAILED'} | "
              f"{s['detail'].replace('|', '/')} |"
              for s in record.get("steps", [])]
    if record.get("doctor"):
        d = record["doctor"]
        lines += ["", f"`edgecnn doctor`: {d['cpu']} ({d['architecture']}), features: {' '.join(d['cpu_features'])}"]
    if record.get("versions"):
        lines += ["", "Installed: " + ", ".join(f"{k} {v}" for k, v in record["versions"].items())]
    lines += _export_table(record.get("exports"))
    return "\n".join(lines) + "\n"


def _export_table(exports: dict | None) -> list[str]:
    if not exports:
        return []
    sample = (f"the first {exports['per_class']} images of each class by name (`--per-class "
              f"{exports['per_class']}`), not the whole folder" if exports.get("per_class") else "every image")
    lines = ["", f"## {exports['export']} on {exports['data']}", "", f"Images: {sample}.", "",
             "| format | accuracy (board) | 95% CI | accuracy (x86) | top-1 agreement with x86 | max abs diff |",
             "|---|---|---|---|---|---|"]
    for r in exports["formats"]:
        a, x, v = r["accuracy_board"], r["accuracy_x86"], r["vs_x86"]
        lines.append(f"| {r['format']} | {a['accuracy']:.2%} ({a['correct']}/{a['images']}) | "
                     f"{a['ci95'][0]:.1%}-{a['ci95'][1]:.1%} | {x['accuracy']:.2%} | "
                     f"{v['agreement']:.2%} ({v['agree']}/{v['images']}) | {v['max_abs_diff']:.4f} |")
    for r in exports["formats"]:
        if "exact_int8" in r:
            e = r["exact_int8"]
            lines += ["", f"{r['format']} vs the int8 arithmetic without saturation (x86, QDQ unfused, "
                      f"accuracy {e['accuracy_x86_exact']['accuracy']:.2%}): board agrees on "
                      f"{e['board_vs_x86_exact']['agreement']:.2%} (max abs diff "
                      f"{e['board_vs_x86_exact']['max_abs_diff']:.4f}); x86's fused kernels agree on "
                      f"{e['x86_vs_x86_exact']['agreement']:.2%} "
                      f"(max abs diff {e['x86_vs_x86_exact']['max_abs_diff']:.4f})."]
    return lines


# ------------------------------------------------------------------------ main
def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--boards", default=",".join(BOARDS), help=f"comma-separated: {', '.join(BOARDS)} (or pi4, pi5)")
    p.add_argument("--smoke", action="store_true", help="CI: no results folders written (unless --out)")
    p.add_argument("--prepare", action="store_true",
                   help="only build (or find) the cached rootfs and today's venv (the README's install steps)")
    p.add_argument("--reuse-venv", action="store_true",
                   help="install the wheel onto today's venv cached by the same README steps, when there is one "
                        "(--smoke does)")
    p.add_argument("--export", type=Path, help="an export folder made on x86 (edgecnn export ... --out DIR)")
    p.add_argument("--data", type=Path, help="labelled folder (one sub-folder per class) for --export")
    p.add_argument("--per-class", type=int, default=0,
                   help="--export: only the first N images of each class (default: all; emulated float models take "
                        "about 1-2 s an image)")
    p.add_argument("--export-timeout", type=float, default=6 * 3600, help="seconds for --export per board")
    p.add_argument("--tests", default="",
                   help="pytest arguments selecting tests (default: a bare pytest, the fast set; the slow tests all "
                        "need the train or deploy extra, which a board does not install)")
    p.add_argument("--test-timeout", type=float, default=3600, help="seconds for the test suite (default 3600)")
    p.add_argument("--out", type=Path, help="results root (default: devices/<board>/results/emulated-<date>)")
    p.add_argument("--x86-python", help="Python with edgecnn's device runtimes for the x86 reference "
                                        "(default: .venv/bin/python)")
    p.add_argument("--must-agree", default="tflite-fp32,tflite-fp16,tflite-int8,onnx",
                   help="formats that must give x86's top-1 on >= 99%% of images")
    args = p.parse_args(argv)
    boards = [ALIASES.get(b.strip(), b.strip()) for b in args.boards.split(",") if b.strip()]
    unknown = [b for b in boards if b not in BOARDS]
    if unknown or not boards:
        p.error(f"unknown board {', '.join(unknown) or '(none)'}; known: {', '.join(BOARDS)}")
    if bool(args.export) != bool(args.data):
        p.error("--export and --data go together")
    if args.export and not (args.export / "export_report.json").is_file() and not device_models(args.export):
        p.error(f"{args.export} holds no exported .tflite/.onnx models")
    args.boards, args.must_agree = boards, [f for f in args.must_agree.split(",") if f]
    return args


def results_folder(args, board: str) -> Path | None:
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    if args.out:
        return args.out / board
    return None if args.smoke else REPO / "devices" / board / "results" / f"emulated-{date}"


def main(argv=None) -> int:
    args = parse_args(argv)
    start = time.monotonic()
    try:
        rootfs.preflight(say)
        base = rootfs.base_rootfs(say)
        if args.prepare:
            say(f"rootfs ready ({time.monotonic() - start:.0f} s)")
            failed = prepare_venvs(args, base)
            if failed:
                banner(f"FAILED: the README's install steps on the emulated {', '.join(failed)}")
                return 1
            say(f"venv ready ({time.monotonic() - start:.0f} s)")
            return 0
        failed = run_boards(args, argv, base)
    except rootfs.Unavailable as exc:
        banner(f"SKIPPED: the emulated Raspberry Pi checks did not run: {exc}")
        return SKIP
    took = time.monotonic() - start
    if failed:
        banner(f"FAILED on the emulated {', '.join(failed)} ({took:.0f} s); see the lines marked FAIL above")
        return 1
    say(f"all checks passed on {', '.join(args.boards)} (emulated; {took:.0f} s)")
    return 0


def prepare_venvs(args, base: Path) -> list[str]:
    """Today's venv for each board, installed by its README's steps when not cached; the boards where that failed."""
    with tempfile.TemporaryDirectory(prefix="edgecnn-arm64-") as tmp:
        tmp = Path(tmp)
        wheel = build_wheel(readme.install_steps(REPO / "devices" / args.boards[0] / "README.md").build, tmp)
        return [name for name in args.boards if not Board(name, args, base, wheel, tmp).prepare()]


def run_boards(args, argv, base: Path) -> list[str]:
    """Each board in turn; the names of those where a check failed."""
    with tempfile.TemporaryDirectory(prefix="edgecnn-arm64-") as tmp:
        tmp = Path(tmp)
        wheel = build_wheel(readme.install_steps(REPO / "devices" / args.boards[0] / "README.md").build, tmp)
        models = device_models(args.export) if args.export else []
        x86_dir = x86_reference(args, models, tmp) if models else None
        coral_x86 = x86_coral(args)
        failed = []
        for name in args.boards:
            board = Board(name, args, base, wheel, tmp)
            board.record["command"] = "sudo python3 tools/arm64/harness.py " + " ".join(
                _portable_arg(a) for a in (argv if argv is not None else sys.argv[1:]))
            if not board.check(x86_dir, coral_x86):
                failed.append(name)
            folder = results_folder(args, name)
            if folder:
                board.write(folder)
    return failed


def _portable_arg(arg: str) -> str:
    """A path argument as the results file shows it: relative inside the checkout or ../shared, else its name."""
    path = Path(arg)
    if not path.is_absolute():
        return arg
    for root, shown in ((REPO, ""), (shared_dir(), "../shared/")):
        if path.resolve().is_relative_to(root):
            return shown + (path.resolve().relative_to(root).as_posix() or ".")
    return path.name


if __name__ == "__main__":
    sys.exit(main())
