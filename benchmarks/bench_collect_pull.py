"""How long `edgecnn collect pull` takes: N flowers5 photos as 640x480 camera frames (written by the camera's
CollectionStore) in a board's collection, a throwaway SSH user on an sshd at 127.0.0.1 (as tests/test_deploy.py
makes one; needs root and openssh-server), one pull timed, then a re-run with nothing new. Repeated --runs times.

    python benchmarks/bench_collect_pull.py --frames 300 --runs 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
SHARED = Path(os.environ.get("EDGECNN_SHARED", HERE.parent / ".." / "shared")).resolve()
USER = "edgecnn-collect-m"


def sshd(tmp: Path) -> tuple[subprocess.Popen, int, Path]:
    from test_deploy import _free_port, _make_user

    for name in ("key", "hostkey"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp / name)], check=True)
    home = _make_user(USER, (tmp / "key.pub").read_text())
    port = _free_port()
    (tmp / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {tmp / 'hostkey'}\nPidFile {tmp / 'pid'}\n"
        f"PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nAllowUsers {USER}\n")
    proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-f", str(tmp / "sshd_config"), "-E", str(tmp / "log")])
    (tmp / "known_hosts").write_text(f"[127.0.0.1]:{port} {' '.join((tmp / 'hostkey.pub').read_text().split()[:2])}\n")
    time.sleep(1)
    return proc, port, home


def fill(collection: Path, count: int) -> float:
    """``count`` frames in the board's collection; their size in MB."""
    import cv2

    from edgecnn.collect import store

    photos = sorted((SHARED / "data" / "flowers5" / "val").glob("*/*.jpg"))
    photos = photos[:: max(1, len(photos) // count)][:count]
    writer = store.CollectionStore(collection, 10**10)
    t0 = time.time()
    for i, path in enumerate(photos):
        frame = cv2.resize(cv2.imread(str(path)), (640, 480))
        writer.save(frame, {store.PREDICTED: path.parent.name, store.SCORE: 0.5, store.RULE: store.RULE_LOW_SCORE,
                            store.TIME: store.iso_time(t0 + i)}, t0 + i)
    subprocess.run(["chown", "-R", f"{USER}:{USER}", str(collection.parent.parent)], check=True)
    return sum(f.stat().st_size for f in collection.iterdir()) / 1e6


def one_run(tmp: Path, port: int, home: Path, frames: int) -> str:
    from edgecnn.deploy import COLLECT_DIR

    mb = fill(home / COLLECT_DIR, frames)
    out, times = tmp / "field", []
    for _ in range(2):
        started = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "edgecnn", "-q", "collect", "pull", f"{USER}@127.0.0.1:{port}",
                                 "--out", str(out), "--key", str(tmp / "key"), "--known-hosts",
                                 str(tmp / "known_hosts")], capture_output=True, text=True)
        times.append(time.perf_counter() - started)
        assert result.returncode == 0, result.stderr[-2000:]
    stored = len(list(out.glob("*/*.jpg")))
    shutil.rmtree(out)
    return (f"{frames} frames ({mb:.1f} MB): pull {times[0]:.1f} s, {stored} stored; re-run with nothing new "
            f"{times[1]:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    proc, port, home = sshd(tmp)
    try:
        for _ in range(args.runs):
            print(one_run(tmp, port, home, args.frames), flush=True)
    finally:
        proc.terminate()
        proc.wait()
        subprocess.run(["pkill", "-u", USER], capture_output=True)
        subprocess.run(["userdel", "-r", USER], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
