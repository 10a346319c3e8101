#!/usr/bin/env python3
"""An emulated Raspberry Pi reachable over SSH on 127.0.0.1, for testing deployment end to end.

    sudo python3 tools/arm64/board.py --board raspberry-pi-4 --port 2222 --authorized-key ~/.ssh/id_ed25519.pub

Each board is a fresh overlay on the cached arm64 Debian Bookworm rootfs (rootfs.py) plus a cached layer with
openssh-server and dbus, a login user (``pi``, uid 1000, groups sudo and video, passwordless sudo as on Raspberry
Pi OS) and fresh host keys. Two modes:

* systemd (preferred): ``systemd-nspawn -b`` boots the rootfs with the host's network; sshd is started by systemd
  and listens on 127.0.0.1:PORT; ``sudo systemctl`` works. The board's /proc/cpuinfo is bind-mounted by a oneshot
  unit before sysinit.target; ``QEMU_CPU`` (cortex-a72 / cortex-a76) reaches services through systemd's
  DefaultEnvironment and ssh sessions (and sudo) through /etc/environment (pam_env).
* chroot (fallback, or ``systemd=False``): ``/usr/sbin/sshd -D`` in a chroot with /proc, /sys, /dev and the
  cpuinfo bind mounted; no systemd (``board.systemd`` says which ran).

``sudo`` under qemu-user needs the binfmt C flag (setuid honoured): qemu-aarch64 is re-registered with flags POCF
when it lacks it, and left so. Two boards run side by side on two ports (each its own overlay, cgroup, machine
name and systemd; about 10 s for both); ``key=`` and ``known_hosts=`` let them share one key and one known_hosts
file (each board adds its line, and takes it out on stop). ``long_bit=32`` makes a board whose ``getconf LONG_BIT``
says 32 (a 32-bit userland, to fail a preflight). Every process of a board runs in its own cgroup, killed on stop;
the overlay is unmounted and removed.

    with Board("raspberry-pi-4", 2222) as pi:          # Unavailable when emulation cannot run here
        pi.ssh("sudo -n systemctl is-active ssh")      # CompletedProcess; strict host key checking
        pi.host_spec, pi.key, pi.known_hosts, pi.systemd, pi.ansible_vars()

Exit status of the CLI: 0 after Ctrl-C, 75 emulation unavailable here (no root, qemu, binfmt, mirror).
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import rootfs  # noqa: E402

BOARDS = {"raspberry-pi-4": "cortex-a72", "raspberry-pi-5": "cortex-a76"}  # board -> QEMU_CPU, as harness.BOARDS
PACKAGES = ("openssh-server", "dbus")  # dbus: systemctl as a user other than root
LAYER_RECIPE = f"apt-get install --no-install-recommends {' '.join(PACKAGES)}; host keys removed; v1"
CREDENTIAL_UNITS = ("systemd-sysusers", "systemd-tmpfiles-setup-dev", "systemd-tmpfiles-setup",
                    "systemd-tmpfiles-clean", "systemd-sysctl", "procps", "systemd-firstboot")
MASKED = ("networking.service",)  # ifupdown: the board shares this machine's network, never touches it
SKIP = 75
CPUINFO_UNIT = """[Unit]
Description=Show the Raspberry Pi's /proc/cpuinfo (edgecnn tools/arm64/board.py)
DefaultDependencies=no
Before=sysinit.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/mount --bind /etc/edgecnn-cpuinfo /proc/cpuinfo

[Install]
WantedBy=sysinit.target
"""
GETCONF_32 = """#!/bin/sh
# edgecnn tools/arm64/board.py (long_bit=32): this board reports a 32-bit userland
if [ "$#" -eq 1 ] && [ "$1" = LONG_BIT ]; then echo 32; exit 0; fi
exec /usr/bin/getconf "$@"
"""


class BootFailed(RuntimeError):
    """The board did not come up (nspawn exited, or ssh never answered)."""


def _say(message: str) -> None:
    print(f"board: {message}", flush=True)


# ------------------------------------------------------------------- binfmt
def _binfmt_fields(entry: Path) -> dict:
    fields = {}
    for line in entry.read_text().splitlines():
        key, _, value = line.partition(" ")
        fields[key.rstrip(":")] = value.strip()
    return fields


def enable_setuid(say=_say) -> None:
    """Re-register qemu-aarch64 with binfmt flags POCF (C: setuid binaries such as sudo get root) unless it has C."""
    entry = rootfs.BINFMT / "qemu-aarch64"
    with rootfs._locked(rootfs.cache_dir() / "binfmt.lock"):
        fields = _binfmt_fields(entry)
        if "C" in fields.get("flags", ""):
            return
        hexes = [fields[k] for k in ("magic", "mask")]
        escaped = ["".join(f"\\x{h[i:i + 2]}" for i in range(0, len(h), 2)) for h in hexes]
        spec = f":qemu-aarch64:M:{fields.get('offset', '0')}:{escaped[0]}:{escaped[1]}:{fields['interpreter']}:"
        entry.write_text("-1")
        try:
            (rootfs.BINFMT / "register").write_text(spec + "POCF")
        except OSError as exc:
            (rootfs.BINFMT / "register").write_text(spec + fields.get("flags", "PF"))
            raise rootfs.Unavailable(f"re-registering qemu-aarch64 with binfmt flags POCF failed: {exc}") from exc
    say(f"binfmt: qemu-aarch64 re-registered with flags POCF (was {fields.get('flags')}): sudo is setuid under "
        "emulation; it stays registered so")


# -------------------------------------------------------------------- layer
def ssh_layer(base: Path, say=_say) -> Path:
    """The cached layer with PACKAGES installed on ``base`` (built once, about 30 s under qemu)."""
    key = hashlib.sha256(f"{base.name} {LAYER_RECIPE}".encode()).hexdigest()[:10]
    layer = rootfs.cache_dir() / "layers" / f"ssh-{key}"
    with rootfs._locked(rootfs.cache_dir() / "layers.lock"):
        if (layer / ".edgecnn-layer").is_file():
            return layer
        say(f"installing {' '.join(PACKAGES)} into a layer over {base.name} (once)")
        start = time.monotonic()
        with rootfs.Rootfs(base, say, first_user=False) as fs:
            if not fs.overlay:
                raise rootfs.Unavailable("the board needs overlayfs (its openssh layer is an overlay layer)")
            policy = fs.root / "usr/sbin/policy-rc.d"
            policy.write_text("#!/bin/sh\nexit 101\n")  # no daemon started in the chroot
            policy.chmod(0o755)
            proc = fs.run("apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "
                          f"--no-install-recommends {' '.join(PACKAGES)} && apt-get clean", user="root", timeout=1800)
            if proc.returncode:
                raise rootfs.Unavailable(f"apt-get install {' '.join(PACKAGES)} failed: {rootfs._last_line(proc)}")
            policy.unlink()
            fs.save_changes(layer)
        for made in [*(layer / "etc/ssh").glob("ssh_host_*"), layer / "etc/resolv.conf",
                     layer / "etc/ssl/certs/ca-certificates.crt"]:
            made.unlink(missing_ok=True)  # fresh host keys for each board; the host's network settings each run
        (layer / ".edgecnn-layer").write_text(f"{base.name} {LAYER_RECIPE}\n")
        say(f"layer built in {time.monotonic() - start:.0f} s: {layer}")
    return layer


# ------------------------------------------------------------------- cgroups
class Cgroup:
    """A folder of our own in each cgroup hierarchy nspawn uses (cgroup2, name=systemd): every process of a board."""

    def __init__(self, name: str):
        self.dirs = [Path(mnt) / name for mnt in self._hierarchies()]

    @staticmethod
    def _hierarchies() -> list[str]:
        found = []
        for line in Path("/proc/mounts").read_text().splitlines():
            _, mnt, kind, opts = line.split()[:4]
            if kind == "cgroup2" or (kind == "cgroup" and "name=systemd" in opts.split(",")):
                found.append(mnt)
        return found

    def create(self) -> None:
        """Make the folders; a hierarchy where that fails (read-only here) is left out."""
        for d in list(self.dirs):
            try:
                d.mkdir(exist_ok=True)
            except OSError:
                self.dirs.remove(d)

    def enter(self) -> None:
        """Move the calling process in (a ``preexec_fn``: the child joins before it execs)."""
        for d in self.dirs:
            (d / "cgroup.procs").write_text(str(os.getpid()))

    def pids(self) -> set[int]:
        found = set()
        for d in self.dirs:
            for procs in d.rglob("cgroup.procs") if d.is_dir() else ():
                found |= {int(p) for p in _read(procs).split()}
        return found

    def kill(self, timeout: float = 10) -> set[int]:
        """SIGKILL every process in it until none is left; those still there after ``timeout``."""
        deadline = time.monotonic() + timeout
        while (pids := self.pids()) and time.monotonic() < deadline:
            for pid in pids:
                _signal(pid, signal.SIGKILL)
            time.sleep(0.2)
        return self.pids()

    def remove(self) -> None:
        for d in self.dirs:
            for sub in sorted((p for p in d.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
                _rmdir(sub)
            _rmdir(d)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _rmdir(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:
        pass


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _chrooted(root: Path) -> list[int]:
    """Processes whose root folder is ``root`` or below (a chroot's; nspawn's show "/")."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and Path(os.readlink(entry / "root")).is_relative_to(root):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


# --------------------------------------------------------------------- board
class Board:
    """One emulated board with sshd on 127.0.0.1:``port``; a context manager (``start``/``stop``)."""

    def __init__(self, board: str = "raspberry-pi-4", port: int = 2222, *, user: str = rootfs.USER,
                 uid: int = rootfs.UID, authorized_keys: tuple[str, ...] = (), systemd: bool | None = None,
                 long_bit: int | None = None, hostname: str = "raspberrypi", key: Path | None = None,
                 known_hosts: Path | None = None, prepare=None, boot_timeout: float = 180, stop_timeout: float = 15,
                 say=_say):
        if board not in BOARDS:
            raise ValueError(f"unknown board {board}; known: {', '.join(BOARDS)}")
        self.board, self.port, self.user, self.uid, self.hostname = board, port, user, uid, hostname
        self.qemu_cpu = BOARDS[board]
        self.authorized_keys, self.want_systemd, self.long_bit = tuple(authorized_keys), systemd, long_bit
        self.prepare, self.boot_timeout, self.stop_timeout, self.say = prepare, boot_timeout, stop_timeout, say
        self.systemd = False
        self.system_state = ""  # `systemctl is-system-running` once booted (systemd mode)
        self.failed_units: list[str] = []
        self.boot_seconds = 0.0
        self.fs: rootfs.Rootfs | None = None
        self.proc: subprocess.Popen | None = None
        self.cgroup: Cgroup | None = None
        self.client: Path | None = None  # a folder of ours for the key and known_hosts (unless given), made by start()
        self.key = Path(key) if key else Path("/nonexistent")  # the private key; made when absent
        self.known_hosts = Path(known_hosts) if known_hosts else Path("/nonexistent")  # the host line appended
        self.shared = (key is not None, known_hosts is not None)  # given files: kept on stop (our line removed)
        self.known_hosts_line = ""

    # ---------------------------------------------------------------- the API
    @property
    def host_spec(self) -> str:
        return f"{self.user}@127.0.0.1:{self.port}"

    @property
    def root(self) -> Path:
        """The board's filesystem, seen from this machine (writes show inside at once)."""
        return self.fs.root

    def ssh_options(self) -> list[str]:
        """ssh's options for this board: its key, strict host key checking against its known_hosts file."""
        return ["-F", "/dev/null", "-i", str(self.key), "-p", str(self.port), "-o", "IdentitiesOnly=yes",
                "-o", f"UserKnownHostsFile={self.known_hosts}", "-o", "GlobalKnownHostsFile=/dev/null",
                "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
                "-o", "LogLevel=ERROR"]

    def ansible_vars(self) -> dict:
        """Inventory variables for this host (ansible's ssh connection with the same strict checking)."""
        return {"ansible_host": "127.0.0.1", "ansible_port": self.port, "ansible_user": self.user,
                "ansible_ssh_private_key_file": str(self.key),
                "ansible_ssh_common_args": f"-o UserKnownHostsFile={self.known_hosts} -o StrictHostKeyChecking=yes "
                                           "-o GlobalKnownHostsFile=/dev/null -o IdentitiesOnly=yes"}

    def ssh(self, command: str, user: str | None = None, timeout: float = 300, input: str | None = None
            ) -> subprocess.CompletedProcess:
        """Run ``command`` on the board over ssh as ``user`` (default the board's user); output captured."""
        argv = ["ssh", *self.ssh_options(), f"{user or self.user}@127.0.0.1", command]
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, input=input)
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            return subprocess.CompletedProcess(argv, 124, out, f"timed out after {timeout:.0f} s: {command}")

    def __enter__(self) -> "Board":
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------- starting
    def start(self) -> None:
        """Boot the board (systemd if it can, else the chroot unless ``systemd=True``), wait for ssh."""
        rootfs.preflight(self.say)
        missing = [exe for exe in ("ssh", "ssh-keygen") if not shutil.which(exe)]
        if missing:
            raise rootfs.Unavailable(f"{' and '.join(missing)} not found (apt-get install openssh-client)")
        if not port_free(self.port):
            raise RuntimeError(f"port {self.port} on 127.0.0.1 is in use")
        enable_setuid(self.say)
        base = rootfs.base_rootfs(self.say)
        layer = ssh_layer(base, self.say)
        self._client_keys()
        start = time.monotonic()
        if self.want_systemd is not False:
            try:
                return self._start(base, layer, True, start)
            except BootFailed as exc:
                if self.want_systemd:
                    raise rootfs.Unavailable(f"systemd-nspawn cannot boot the board here: {exc}") from exc
                self.say(f"systemd-nspawn did not boot the board ({exc}); falling back to sshd in a chroot "
                         "(no systemd)")
                self._teardown()
        self._start(base, layer, False, start)

    def _start(self, base: Path, layer: Path, systemd: bool, start: float) -> None:
        self.systemd = systemd
        self.fs = rootfs.Rootfs(base, self.say, {"QEMU_CPU": self.qemu_cpu}, layers=(layer,), system=not systemd,
                                first_user=False)
        self.fs.__enter__()
        self._configure()
        self.cgroup = Cgroup(f"edgecnn-board-{self.fs.work.name}")
        self.cgroup.create()
        if systemd:
            self._boot_nspawn()
        else:
            self.fs.set_cpuinfo(HERE / "cpuinfo" / self.board)
            self._start_sshd()
        self._wait_for_ssh()
        self.boot_seconds = time.monotonic() - start
        if systemd:
            self._check_systemd()
        self.say(f"{self.board} up on {self.host_spec} in {self.boot_seconds:.0f} s "
                 f"({'systemd: ' + self.system_state if systemd else 'chroot sshd, no systemd'})")

    def _client_keys(self) -> None:
        if self.client is None:
            self.client = Path(tempfile.mkdtemp(prefix="edgecnn-board-"))
            self.client.chmod(0o755)  # known_hosts readable by a user's ssh; the key stays root's (0600)
        if not self.shared[0]:
            self.key = self.client / "id_ed25519"
        if not self.shared[1]:
            self.known_hosts = self.client / "known_hosts"
        if not self.key.exists():
            rootfs._run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "edgecnn-board", "-f", str(self.key)])

    def _configure(self) -> None:
        """Users, keys, sshd, QEMU_CPU and the cpuinfo shim, written into the tree before it runs."""
        etc = self.fs.root / "etc"
        (etc / "hostname").write_text(f"{self.hostname}\n")
        hosts = (etc / "hosts").read_text() if (etc / "hosts").is_file() else "127.0.0.1\tlocalhost\n"
        (etc / "hosts").write_text(f"{hosts.rstrip()}\n127.0.1.1\t{self.hostname}\n")
        (etc / "machine-id").write_text(uuid.uuid4().hex + "\n")
        (etc / "environment").write_text(f"QEMU_CPU={self.qemu_cpu}\n")  # pam_env: ssh sessions, sudo
        _write(etc / "sudoers.d/edgecnn-qemu", 'Defaults env_keep += "QEMU_CPU"\n', 0o440)
        shutil.copyfile(HERE / "cpuinfo" / self.board, etc / "edgecnn-cpuinfo")
        self._host_keys(etc / "ssh")
        self._add_user(self.user, self.uid)
        if self.long_bit == 32:
            _write(self.fs.root / "usr/local/bin/getconf", GETCONF_32, 0o755)
        self._systemd_units(etc / "systemd")
        if self.prepare:
            self.prepare(self.fs.root)

    def _host_keys(self, ssh: Path) -> None:
        key = ssh / "ssh_host_ed25519_key"
        rootfs._run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"root@{self.hostname}", "-f", str(key)])
        _write(ssh / "sshd_config.d/edgecnn-board.conf",
               f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey /etc/ssh/ssh_host_ed25519_key\n"
               "PasswordAuthentication no\nKbdInteractiveAuthentication no\n")
        algorithm, blob = key.with_suffix(".pub").read_text().split()[:2]
        self.known_hosts_line = f"[127.0.0.1]:{self.port} {algorithm} {blob}"
        self._known_hosts_edit(add=True)

    def _known_hosts_edit(self, add: bool) -> None:
        """Add this board's line to the known_hosts file (other boards' lines kept), or take it out."""
        self.known_hosts.touch()
        with open(self.known_hosts, "r+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)  # boards sharing one file
            kept = [line for line in handle.read().splitlines() if not line.startswith(f"[127.0.0.1]:{self.port} ")]
            handle.seek(0)
            handle.truncate()
            handle.write("".join(f"{line}\n" for line in kept + [self.known_hosts_line] * add))
        self.known_hosts.chmod(0o644)

    def _add_user(self, user: str, uid: int) -> None:
        proc = self.fs.run(f"useradd -m -s /bin/bash -u {uid} -G sudo,video {user}", user="root")
        if proc.returncode:
            raise RuntimeError(f"useradd {user} failed: {rootfs._last_line(proc)}")
        _write(self.fs.root / "etc/sudoers.d" / f"010_{user}-nopasswd", f"{user} ALL=(ALL) NOPASSWD: ALL\n", 0o440)
        public = rootfs._run(["ssh-keygen", "-y", "-f", str(self.key)]).stdout.strip()
        keys = [public, *self.authorized_keys]
        home = self.fs.root / "home" / user
        _write(home / ".ssh/authorized_keys", "\n".join(keys) + "\n", 0o600)
        (home / ".ssh").chmod(0o700)
        rootfs._run(["chown", "-R", f"{uid}:{uid}", str(home)])

    def _systemd_units(self, systemd: Path) -> None:
        """QEMU_CPU for every service; the cpuinfo shim; no credentials (their setup fails under qemu-user)."""
        _write(systemd / "system.conf.d/edgecnn-qemu.conf", f"[Manager]\nDefaultEnvironment=QEMU_CPU={self.qemu_cpu}\n")
        _write(systemd / "system/edgecnn-cpuinfo.service", CPUINFO_UNIT)
        wants = systemd / "system/sysinit.target.wants"
        wants.mkdir(parents=True, exist_ok=True)
        (wants / "edgecnn-cpuinfo.service").symlink_to("/etc/systemd/system/edgecnn-cpuinfo.service")
        for unit in CREDENTIAL_UNITS:
            _write(systemd / f"system/{unit}.service.d/edgecnn-no-credentials.conf", "[Service]\nLoadCredential=\n")
        for unit in MASKED:
            (systemd / "system" / unit).unlink(missing_ok=True)
            (systemd / "system" / unit).symlink_to("/dev/null")

    def _popen(self, argv: list[str], log: str) -> None:
        with open(self.fs.work / log, "w") as out:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                         preexec_fn=self.cgroup.enter, start_new_session=True)

    def _boot_nspawn(self) -> None:
        if not shutil.which("systemd-nspawn"):
            raise BootFailed("systemd-nspawn not installed (apt-get install systemd-container)")
        self._popen(["systemd-nspawn", "--quiet", "-D", str(self.fs.root), "--register=no", "--keep-unit", "-b",
                     "--capability=CAP_SYS_ADMIN", f"--machine=edgecnn-{self.port}", "--link-journal=no",
                     "--console=pipe", "--kill-signal=SIGKILL", f"--setenv=QEMU_CPU={self.qemu_cpu}"], "nspawn.log")

    def _start_sshd(self) -> None:
        (self.fs.root / "run/sshd").mkdir(mode=0o755, parents=True, exist_ok=True)
        env = ["LANG=C.UTF-8", f"QEMU_CPU={self.qemu_cpu}", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"]
        uts = ["unshare", "--uts", "--", "sh", "-c", 'hostname "$0" && exec "$@"', self.hostname]  # its own hostname
        self._popen([*uts, "env", "-i", *env, "chroot", str(self.fs.root), "/usr/sbin/sshd", "-D", "-e"],
                    "sshd.log")  # Port and ListenAddress 127.0.0.1: sshd_config.d/edgecnn-board.conf

    def _log_tail(self) -> str:
        log = self.fs.work / ("nspawn.log" if self.systemd else "sshd.log")
        lines = _read(log).strip().splitlines()
        return " / ".join(lines[-3:]) if lines else "no output"

    def _wait_for_ssh(self) -> None:
        deadline = time.monotonic() + self.boot_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BootFailed(f"{self.proc.args[0]} exited with status {self.proc.returncode}: {self._log_tail()}")
            if self.ssh("true", timeout=30).returncode == 0:
                return
            time.sleep(1)
        raise BootFailed(f"no ssh login on port {self.port} after {self.boot_timeout:.0f} s: {self._log_tail()}")

    def _check_systemd(self) -> None:
        proc = self.ssh("systemctl is-system-running --wait", timeout=self.boot_timeout)
        self.system_state = proc.stdout.strip() or f"unknown ({rootfs._last_line(proc)})"
        if self.system_state != "running":
            failed = self.ssh("systemctl --failed --no-legend --plain | cut -d' ' -f1", timeout=60).stdout
            self.failed_units = failed.split()
            self.say(f"systemd says {self.system_state}; failed units: {' '.join(self.failed_units) or 'none'}")

    # ------------------------------------------------------------- stopping
    def stop(self) -> None:
        """Power the board off (killed after ``stop_timeout``), kill what is left, unmount, remove everything."""
        self._teardown()
        if self.shared[1] and self.known_hosts_line and self.known_hosts.exists():
            self._known_hosts_edit(add=False)
        if self.client is not None:
            shutil.rmtree(self.client, ignore_errors=True)
            self.client = None

    def _teardown(self) -> None:
        if self.proc is not None:
            self._stop_process()
            self.proc = None
        if self.cgroup is not None:
            left = self.cgroup.kill()
            if left:
                self.say(f"warning: processes {sorted(left)} of the board survived SIGKILL")
            self.cgroup.remove()
            self.cgroup = None
        if self.fs is not None:
            for pid in _chrooted(self.fs.root):  # chroot mode without a writable cgroup hierarchy
                _signal(pid, signal.SIGKILL)
            self.fs.__exit__(None, None, None)
            self.fs = None

    def _stop_process(self) -> None:
        """systemd: ``systemctl poweroff`` over ssh (nspawn exits about 2 s later), then SIGTERM, which nspawn turns
        into SIGKILL for the container (--kill-signal). nspawn's own poweroff signal (SIGRTMIN+4) cannot be used:
        qemu-user renumbers real-time signals and the container's systemd went to rescue.target instead."""
        if self.systemd and self.proc.poll() is None:
            self.ssh("sudo -n systemctl poweroff --no-block", timeout=30)
        for wait in (self.stop_timeout if self.systemd else 0, 10):
            try:
                self.proc.wait(wait)
                return
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGTERM)
        self.proc.kill()
        self.proc.wait()


def _write(path: Path, text: str, mode: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if mode is not None:
        path.chmod(mode)


# ---------------------------------------------------------------------- CLI
def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--board", default="raspberry-pi-4", choices=sorted(BOARDS))
    p.add_argument("--port", type=int, default=2222, help="sshd's port on 127.0.0.1 (default 2222)")
    p.add_argument("--user", default=rootfs.USER, help=f"login user (default {rootfs.USER}, uid {rootfs.UID})")
    p.add_argument("--authorized-key", action="append", type=Path, default=[],
                   help="a public key file allowed to log in (repeatable; a generated key always is)")
    p.add_argument("--no-systemd", action="store_true", help="sshd in a chroot, no systemd")
    p.add_argument("--long-bit", type=int, choices=(32,), help="32: `getconf LONG_BIT` says 32 (fails a preflight)")
    p.add_argument("--boot-timeout", type=float, default=180)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    keys = tuple(path.read_text().strip() for path in args.authorized_key)
    for sig in (signal.SIGINT, signal.SIGTERM):  # either stops the board (SIGINT too when started in the background)
        signal.signal(sig, signal.default_int_handler)
    try:
        with Board(args.board, args.port, user=args.user, authorized_keys=keys, long_bit=args.long_bit,
                   systemd=False if args.no_systemd else None, boot_timeout=args.boot_timeout) as board:
            print(f"ssh {' '.join(board.ssh_options())} {board.user}@127.0.0.1")
            print(f"known_hosts: {board.known_hosts_line}")
            print(f"systemd: {'yes (' + board.system_state + ')' if board.systemd else 'no (sshd in a chroot)'}")
            print("Ctrl-C stops the board", flush=True)
            while True:
                time.sleep(3600)
    except rootfs.Unavailable as exc:
        print(f"board: SKIPPED: the emulated board cannot run here: {exc}", flush=True)
        return SKIP
    except KeyboardInterrupt:
        print("board stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
