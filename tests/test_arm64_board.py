"""tools/arm64/board.py: an emulated Raspberry Pi 4 reachable over real ssh on 127.0.0.1, then stopped without a trace.

Needs root and qemu-user registered with binfmt_misc; skips with the reason otherwise. Warm boots take seconds; the
first run builds the rootfs (12-20 minutes, once, as tools/arm64/harness.py) and the openssh layer (about 1 minute).
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools" / "arm64"))

import board  # noqa: E402
import rootfs  # noqa: E402

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(**kwargs) -> board.Board:
    """A started board, or skip saying why emulation cannot run here."""
    if os.geteuid() != 0:
        pytest.skip("the emulated board needs root (chroot, mounts, systemd-nspawn)")
    if not rootfs.is_built():  # a cold cache: CI builds it beside the suite, then runs tools/arm64/deploy_check.py
        pytest.skip("the arm64 rootfs is not built yet (sudo python3 tools/arm64/harness.py --prepare builds it)")
    b = board.Board("raspberry-pi-4", _free_port(), **kwargs)
    try:
        b.__enter__()
    except rootfs.Unavailable as exc:
        pytest.skip(f"emulation unavailable here: {exc}")
    return b


def _ok(b: board.Board, command: str, user: str | None = None) -> str:
    proc = b.ssh(command, user=user, timeout=120)
    assert proc.returncode == 0, f"{command}: {proc.stdout}{proc.stderr}"
    return proc.stdout.strip()


def _stop_leaves_nothing(b: board.Board) -> None:
    work, cgroups, client = b.fs.work, list(b.cgroup.dirs), b.client
    b.stop()
    assert not [line for line in Path("/proc/mounts").read_text().splitlines() if str(work) in line]
    assert not work.exists() and not client.exists()
    assert not [d for d in cgroups if d.exists()]
    assert board.port_free(b.port)


def test_pi4_board_over_ssh():
    b = _start()
    try:
        assert b.known_hosts.read_text().startswith(f"[127.0.0.1]:{b.port} ssh-ed25519 ")
        assert _ok(b, "uname -m") == "aarch64"
        assert "CPU part\t: 0xd08" in _ok(b, "cat /proc/cpuinfo")
        assert _ok(b, "echo $QEMU_CPU") == "cortex-a72"
        _ok(b, "sudo -n true")
        assert "video" in _ok(b, "id -nG").split()
        if b.systemd:
            assert _ok(b, "systemctl is-active ssh") == "active"
            assert _ok(b, "sudo -n systemd-run --wait --pipe -q sh -c 'echo $QEMU_CPU'") == "cortex-a72"
            _ok(b, "sudo -n systemd-run -q --unit=edgecnn-board-test sleep 600")
            assert _ok(b, "systemctl is-active edgecnn-board-test") == "active"
    finally:
        _stop_leaves_nothing(b)


def test_chroot_board_reports_a_32_bit_userland():
    b = _start(systemd=False, long_bit=32)
    try:
        assert not b.systemd
        assert _ok(b, "uname -m; getconf LONG_BIT; getconf PAGESIZE").split()[:2] == ["aarch64", "32"]
        assert _ok(b, "sudo -n whoami") == "root"
        assert "CPU part\t: 0xd08" in _ok(b, "cat /proc/cpuinfo")
    finally:
        _stop_leaves_nothing(b)


def test_two_boards_share_one_key_and_known_hosts_file(tmp_path):
    known_hosts = tmp_path / "known_hosts"
    first = _start(key=tmp_path / "id_ed25519", known_hosts=known_hosts)
    try:
        second = _start(key=tmp_path / "id_ed25519", known_hosts=known_hosts, hostname="pi-two")
        try:
            assert known_hosts.read_text().count("[127.0.0.1]:") == 2
            assert (_ok(first, "hostname"), _ok(second, "hostname")) == ("raspberrypi", "pi-two")
        finally:
            _stop_leaves_nothing(second)
        assert known_hosts.read_text().count("[127.0.0.1]:") == 1 and (tmp_path / "id_ed25519").exists()
    finally:
        _stop_leaves_nothing(first)
