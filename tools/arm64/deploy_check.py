#!/usr/bin/env python3
"""`edgecnn deploy` end to end against emulated Raspberry Pi 4s (board.py): a fleet of two, one failing preflight.

    sudo .venv/bin/python tools/arm64/deploy_check.py --export EXPORT_DIR --data VAL_DIR   # results in devices/
    sudo .venv/bin/python tools/arm64/deploy_check.py --quick                              # CI: a tiny export

Runs with the checkout's venv (edgecnn with the deploy and train extras). Two boards on 127.0.0.1: a Pi 4 booted
with a real systemd (systemd-nspawn; the chroot fallback where it cannot boot, said in the results) and one whose
userland reports 32 bits. The camera source on the board is a video file made from the validation photos (the
emulated board has no camera), played in real time. Steps, each an `edgecnn deploy` command as a user types it:

1. deploy to both boards (--format auto, or tflite-int8 with --quick; --serve; --benchmark unless --quick): the
   good board deploys, its service's first classification is logged and the preview answers; the 32-bit board
   fails its preflight and is left untouched; exit status 1.
2. the same deploy again to the good board: "no changes".
3. a second release (--format tflite-fp32), then `--rollback` by hand: back to the first, health-checked.
4. a broken model on top: the health check fails and the first release runs again.

Emulation checks correctness only: any latency it prints is qemu's, not a Pi's (the results say so).
Exit status: 0 all steps as expected, 1 a step was not, 75 emulation unavailable here.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path[:0] = [str(HERE), str(REPO)]

import board as boards  # noqa: E402
import rootfs  # noqa: E402

NOTE = ("EMULATED: qemu-user Raspberry Pi 4 (Cortex-A72) on an x86-64 host. Deployment correctness only; "
        "latencies are qemu's, not a Pi's.")
VIDEO = "/home/pi/clip.avi"


def say(message: str) -> None:
    print(f"deploy-check: {message}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tiny_export(tmp: Path) -> Path:
    """A real export of a tiny colour classifier (tflite-fp32, tflite-int8), for CI."""
    import keras

    from edgecnn.export import export
    from edgecnn.labels import write_labels

    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))
    run = tmp / "run"
    run.mkdir()
    model.save(run / "model.keras")
    write_labels(run / "labels.txt", ["blue", "green", "red"])
    export(run, ["tflite-fp32", "tflite-int8"], tmp / "export", validate=False)
    return tmp / "export"


def write_video(path: Path, data: Path | None, seconds: int = 600, fps: int = 5) -> None:
    """An MJPG clip: each validation photo (or a solid colour) shown for a second, ``seconds`` long."""
    import cv2
    import numpy as np

    photos = sorted(p for p in data.rglob("*.jpg"))[::37] if data else []
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (160, 120))
    for second in range(seconds):
        if photos:
            frame = cv2.resize(cv2.imread(str(photos[second % len(photos)])), (160, 120))
        else:
            frame = np.full((120, 160, 3), [(200, 30, 30), (30, 200, 30), (30, 30, 200)][second % 3], np.uint8)
        for _ in range(fps):
            writer.write(frame)
    writer.release()


def broken_export(export: Path, tmp: Path) -> Path:
    broken = tmp / "broken"
    shutil.copytree(export, broken)
    (broken / "model_fp32.tflite").write_bytes(b"not a model\n" * 1000)
    return broken


def inventory(path: Path, *hosts: boards.Board) -> Path:
    """An Ansible inventory of the boards, each marked emulated (the --benchmark results say so)."""
    entries = {b.host_spec: {**b.ansible_vars(), "edgecnn_emulated": True} for b in hosts}
    path.write_text(json.dumps({"all": {"hosts": entries}}, indent=1))
    return path


class Check:
    """The deploy commands, their output and whether each did what it should."""

    def __init__(self, args, tmp: Path):
        self.args, self.tmp = args, tmp
        self.steps: list[dict] = []
        self.log: list[str] = []

    def deploy(self, *argv: str, timeout: float = 3600) -> subprocess.CompletedProcess:
        return self.run_edgecnn("deploy", *argv, timeout=timeout)

    def run_edgecnn(self, *argv: str, timeout: float = 3600) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "edgecnn", *argv]
        shown = " ".join(_portable(a, self.tmp) for a in ["edgecnn", *argv])
        say(f"$ {shown}")
        start = time.monotonic()
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        took = time.monotonic() - start
        self.log.append(f"$ {shown}\n{proc.stdout}{proc.stderr}[exit {proc.returncode}, {took:.0f} s]\n")
        print(proc.stdout + proc.stderr, flush=True)
        return proc

    def step(self, name: str, ok: bool, detail: str = "") -> bool:
        self.steps.append({"step": name, "ok": bool(ok), "detail": detail})
        say(f"{'ok  ' if ok else 'FAIL'} {name}{': ' + detail if detail else ''}")
        return ok


def _portable(arg: str, tmp: Path) -> str:
    return arg.replace(str(tmp), "$TMP").replace(str(REPO) + "/", "")


def _row(proc: subprocess.CompletedProcess, host: str) -> str:
    return next((line for line in proc.stdout.splitlines() if line.startswith(host)), "")


def _errors(proc: subprocess.CompletedProcess) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.startswith("error:")]


def _current(pi: boards.Board) -> str:
    return pi.ssh("readlink ~/edgecnn/current").stdout.strip()


def run_steps(check: Check, pi: boards.Board, bad: boards.Board, export: Path) -> None:
    """The four steps of the module docstring."""
    args, tmp = check.args, check.tmp
    both, one = inventory(tmp / "both.json", pi, bad), inventory(tmp / "pi.json", pi)
    serve = f"127.0.0.1:{free_port()}"
    common = ["--source", VIDEO, "--serve", serve, "--camera-args=--realtime", "--health-timeout", "600",
              "--wheel", str(args.wheel)]
    first_format = ["--format", "tflite-int8"] if args.quick else ["--format", "auto", "--benchmark-runs", "20"]
    proc = check.deploy(str(export), "--inventory", str(both), *first_format, *common)
    good_row, bad_row = _row(proc, pi.host_spec), _row(proc, bad.host_spec)
    check.step("fleet: the good board deployed, health check passed", " deployed " in good_row
               and "(EMULATED)" in good_row
               and f"{pi.host_spec}: health check ok: " in proc.stderr and "preview answers" in proc.stderr,
               good_row)
    errors = _errors(proc)
    check.step("fleet: the 32-bit board failed preflight, untouched, exit 1", proc.returncode == 1
               and " failed " in bad_row and len(errors) == 1 and "32-bit userland" in errors[0]
               and bad.ssh("test -e ~/edgecnn").returncode == 1, errors[0] if errors else bad_row)
    first = _current(pi)
    # active, or ended cleanly when the clip ran out (the --benchmark step can outlast it)
    show = pi.ssh("systemctl show -p ActiveState -p Result -p User edgecnn-camera").stdout.split()
    unit = dict(line.partition("=")[::2] for line in show)  # systemctl prints them in its own order
    ran = unit.get("User") == pi.user and (unit.get("ActiveState") == "active"
                                           or (unit.get("ActiveState"), unit.get("Result")) == ("inactive", "success"))
    check.step("the service runs under systemd as the login user" if pi.systemd else
               "no systemd here: the unit verified and its command run once",
               ran if pi.systemd else "no systemd" in proc.stderr, " ".join(show))

    again = check.deploy(str(export), "--inventory", str(one), *first_format, *common)
    row = _row(again, pi.host_spec)
    check.step("the same deploy again: no changes", again.returncode == 0 and " no changes " in row, row)

    second = check.deploy(str(export), "--inventory", str(one), "--format", "tflite-fp32", *common)
    check.step("a second release", second.returncode == 0 and _current(pi) != first, _current(pi))
    back = check.deploy("--rollback", "--inventory", str(one), "--serve", serve, "--health-timeout", "600")
    check.step("--rollback by hand: the first release again, health-checked", back.returncode == 0
               and _current(pi) == first and "health check ok" in back.stderr, _current(pi))

    bad_model = check.deploy(str(broken_export(export, tmp)), "--inventory", str(one), "--format", "tflite-fp32",
                             *common)
    errors = _errors(bad_model)
    check.step("a broken model: health check failed, rolled back automatically", bad_model.returncode == 1
               and len(errors) == 1 and "health check failed" in errors[0] and "rolled back to" in errors[0]
               and _current(pi) == first, errors[0] if errors else bad_model.stderr[-300:])
    if not args.quick:
        remote_benchmark(check, pi, one)


def remote_benchmark(check: Check, pi: boards.Board, one: Path) -> None:
    """`edgecnn benchmark --remote`: the running release measured on the board, results pulled, marked emulated."""
    proc = check.run_edgecnn("benchmark", "--remote", pi.host_spec, "--key", str(pi.key), "--known-hosts",
                             str(pi.known_hosts), "--runs", "20", "--threads", "4", "--out", str(check.args.results))
    device = check.args.results / pi.host_spec / "device.json"
    marked = device.is_file() and json.loads(device.read_text()).get("emulated") is True
    check.step("benchmark --remote pulled the board's results", proc.returncode == 0 and device.is_file(),
               str(device))
    check.step("... marked emulated", marked, json.loads(device.read_text()).get("measured_on", "") if marked else "")


def write_results(check: Check, pi: boards.Board, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    record = {"note": NOTE, "board": "raspberry-pi-4", "qemu_cpu": pi.qemu_cpu,
              "systemd": pi.systemd, "system_state": pi.system_state,
              "command": "sudo .venv/bin/python tools/arm64/deploy_check.py " + " ".join(
                  _portable(a, check.tmp) for a in sys.argv[1:]),
              "date": datetime.date.today().isoformat(), "steps": check.steps}
    (out / "deploy.json").write_text(json.dumps(record, indent=1) + "\n")
    (out / "deploy.txt").write_text(NOTE + "\n\n" + "\n".join(check.log))
    say(f"results in {out}")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--export", type=Path, help="an export folder (edgecnn export ... --out DIR); default: a tiny one")
    p.add_argument("--data", type=Path, help="validation photos for the board's video (class folders)")
    p.add_argument("--quick", action="store_true", help="CI: a tiny export, an explicit format, no --benchmark")
    p.add_argument("--out", type=Path, help="results folder (default: devices/raspberry-pi-4/results/"
                                            "emulated-deploy-DATE unless --quick)")
    p.add_argument("--systemd", choices=("auto", "yes", "no"), default="auto",
                   help="boot the good board with systemd (auto: fall back to a chroot where nspawn cannot)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # the boards are stopped on the way out
    from edgecnn.native_logs import quiet_environment

    quiet_environment()  # the tiny export imports TensorFlow here: its native log lines stay off the terminal
    if args.out is None and not args.quick:
        args.out = REPO / "devices" / "raspberry-pi-4" / "results" / f"emulated-deploy-{datetime.date.today()}"
    with tempfile.TemporaryDirectory(prefix="edgecnn-deploy-check-") as tmp:
        tmp = Path(tmp)
        args.results = (args.out or tmp) / "benchmark"
        from edgecnn.deploy.wheel import find_wheel

        args.wheel = find_wheel(None)
        export = args.export or tiny_export(tmp)
        write_video(tmp / "clip.avi", args.data)

        def prepare(root: Path) -> None:
            shutil.copyfile(tmp / "clip.avi", root / VIDEO.lstrip("/"))
            os.chown(root / VIDEO.lstrip("/"), rootfs.UID, rootfs.UID)

        systemd = {"auto": None, "yes": True, "no": False}[args.systemd]
        check = Check(args, tmp)
        try:
            with boards.Board("raspberry-pi-4", free_port(), key=tmp / "id", known_hosts=tmp / "known_hosts",
                              prepare=prepare, systemd=systemd, say=say) as pi, \
                    boards.Board("raspberry-pi-4", free_port(), key=tmp / "id", known_hosts=tmp / "known_hosts",
                                 systemd=False, long_bit=32, hostname="pi32", say=say) as bad:
                say(f"boards up: {pi.host_spec} ({'systemd' if pi.systemd else 'chroot, no systemd'}), "
                    f"{bad.host_spec} (32-bit userland)")
                run_steps(check, pi, bad, export)
                if args.out:
                    write_results(check, pi, args.out)
        except rootfs.Unavailable as exc:
            print(f"!!!!!!!!!! SKIPPED: the emulated deploy check did not run: {exc}", flush=True)
            return boards.SKIP
    failed = [s["step"] for s in check.steps if not s["ok"]]
    if failed:
        print(f"!!!!!!!!!! FAILED on the emulated Pi 4: {'; '.join(failed)}", flush=True)
        return 1
    say(f"all {len(check.steps)} deploy steps as expected (emulated)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
