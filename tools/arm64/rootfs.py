"""An arm64 Debian Bookworm rootfs run under qemu-user: build it once, start each run from a clean copy.

The pristine rootfs (debootstrap, about 12 minutes) lives in the cache
(``$EDGECNN_ARM64_CACHE``, default ``~/.cache/edgecnn/arm64``) and is never written
after it is built: each run mounts an overlay on it (or copies it when overlayfs
is unavailable), so every run starts from the same clean system, and a clean
clone of the repository (CI) reuses it. Needs root (debootstrap, chroot, mounts)
and qemu-user-static registered with binfmt_misc.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

SUITE = "bookworm"  # Raspberry Pi OS Bookworm is Debian 12: Python 3.11, glibc 2.36
INCLUDE = ("python3", "python3-venv", "python3-pip", "ca-certificates", "sudo")
MIRROR = os.environ.get("EDGECNN_ARM64_MIRROR", "http://deb.debian.org/debian")
RECIPE = f"debootstrap --arch=arm64 --include={','.join(INCLUDE)} {SUITE}"
BINFMT = Path("/proc/sys/fs/binfmt_misc")
HOST_PACKAGES = ("qemu-user-static", "debootstrap", "binfmt-support")
USER, UID = "pi", 1000  # Raspberry Pi OS's first user


class Unavailable(Exception):
    """Emulation cannot run on this machine (no root, no qemu/binfmt, no mirror): a skip, not a failure."""


def cache_dir() -> Path:
    return Path(os.environ.get("EDGECNN_ARM64_CACHE") or Path.home() / ".cache" / "edgecnn" / "arm64")


def _run(cmd, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def _last_line(proc: subprocess.CompletedProcess) -> str:
    lines = (proc.stderr or proc.stdout or "").strip().splitlines()
    return lines[-1] if lines else f"exit status {proc.returncode}"


def _install_host_packages(say) -> None:
    missing = [p for p, exe in zip(HOST_PACKAGES, ("qemu-aarch64-static", "debootstrap", "update-binfmts"))
               if not shutil.which(exe)]
    if not missing:
        return
    if not shutil.which("apt-get"):
        raise Unavailable(f"{', '.join(missing)} not installed and no apt-get to install them")
    say(f"installing {' '.join(missing)} (apt-get)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *missing]):
        proc = _run(cmd, env=env)
        if proc.returncode:
            raise Unavailable(f"{' '.join(cmd)} failed: {_last_line(proc)}")


def _binfmt_entry() -> Path:
    return BINFMT / "qemu-aarch64"


def _enable_binfmt() -> None:
    if not (BINFMT / "register").exists():
        _run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT)])
    if not _binfmt_entry().exists() or "enabled" not in _binfmt_entry().read_text():
        _run(["update-binfmts", "--enable", "qemu-aarch64"])
    if not _binfmt_entry().exists() or "enabled" not in _binfmt_entry().read_text():
        raise Unavailable("qemu-aarch64 is not registered with binfmt_misc "
                          "(update-binfmts --enable qemu-aarch64 failed)")
    flags = next((line.split()[1] for line in _binfmt_entry().read_text().splitlines()
                  if line.startswith("flags:") and len(line.split()) > 1), "")
    if "F" not in flags:
        raise Unavailable("the qemu-aarch64 binfmt entry lacks the F (fix binary) flag: chroots cannot find qemu")


def reachable(url: str, timeout: float = 20) -> str | None:
    """None when ``url`` answers, else why not (the harness skips rather than fails without a registry)."""
    import urllib.request

    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout):
            return None
    except Exception as exc:  # URLError, HTTPError, timeouts, TLS errors: all mean "cannot reach it"
        return f"{url} unreachable ({exc})"


def preflight(say) -> None:
    """Make sure this machine can run arm64 binaries in a chroot, or raise Unavailable saying why not."""
    if os.geteuid() != 0:
        raise Unavailable("needs root (debootstrap, chroot and mounts)")
    _install_host_packages(say)
    _enable_binfmt()


@contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def base_path() -> Path:
    """Where the pristine rootfs for RECIPE lives in the cache (built or not)."""
    return cache_dir() / f"{SUITE}-arm64-{hashlib.sha256(RECIPE.encode()).hexdigest()[:10]}"


def is_built() -> bool:
    return (base_path() / ".edgecnn-complete").is_file()


def base_rootfs(say) -> Path:
    """The pristine rootfs for RECIPE in the cache, built with debootstrap when absent."""
    cache = cache_dir()
    base = base_path()
    with _locked(cache / "build.lock"):
        if (base / ".edgecnn-complete").is_file():
            return base
        partial = base.with_name(base.name + ".partial")
        _remove_tree(partial)
        problem = reachable(f"{MIRROR}/dists/{SUITE}/Release")
        if problem:
            raise Unavailable(problem)
        say(f"building the arm64 rootfs in {base} ({RECIPE} {MIRROR}; 12-20 minutes, once)")
        start = time.monotonic()
        proc = _run(["debootstrap", "--arch=arm64", f"--include={','.join(INCLUDE)}", SUITE, str(partial), MIRROR])
        if proc.returncode:
            log = partial / "debootstrap" / "debootstrap.log"
            detail = log.read_text(errors="replace").strip().splitlines()[-1:] if log.is_file() else []
            raise Unavailable(f"debootstrap failed ({_last_line(proc)}{'; ' + detail[0] if detail else ''})")
        for deb in (partial / "var/cache/apt/archives").glob("*.deb"):
            deb.unlink()
        (partial / ".edgecnn-complete").write_text(f"{RECIPE} {MIRROR}\n")
        partial.rename(base)
        say(f"rootfs built in {time.monotonic() - start:.0f} s")
    return base


def _remove_tree(path: Path) -> None:
    if path.exists():
        shutil.rmtree(path, ignore_errors=True)


class Rootfs:
    """A throwaway copy of the base rootfs, mounted for chroot; ``run`` executes a command as ``pi`` inside.

    ``system=False``: no /proc, /sys, /dev mounts (a tree that systemd-nspawn boots); ``first_user=False``: no ``pi``.
    """

    def __init__(self, base: Path, say, env: dict | None = None, layers: tuple[Path, ...] = (), system: bool = True,
                 first_user: bool = True):
        self.base, self.say, self.env, self.layers = base, say, dict(env or {}), tuple(layers)
        self.system, self.first_user = system, first_user
        self.work = Path(tempfile.mkdtemp(prefix="run-", dir=cache_dir()))
        self.root = self.work / "root"
        self.mounts: list[Path] = []
        self.cpuinfo_mounted = False
        self.overlay = False

    # ----------------------------------------------------------------- mounts
    def __enter__(self) -> "Rootfs":
        try:
            self._mount_root()
            if self.system:
                for kind, target in (("proc", "proc"), ("sysfs", "sys")):
                    self._mount(["-t", kind, kind], self.root / target)
                self._mount(["--rbind", "/dev"], self.root / "dev")
                _run(["mount", "--make-rslave", str(self.root / "dev")])
            self._configure()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _mount_root(self) -> None:
        upper, scratch = self.work / "upper", self.work / "scratch"
        for d in (upper, scratch, self.root):
            d.mkdir()
        lower = ":".join(str(p) for p in (*self.layers, self.base))  # leftmost on top
        opts = f"lowerdir={lower},upperdir={upper},workdir={scratch}"
        if _run(["mount", "-t", "overlay", "overlay", "-o", opts, str(self.root)]).returncode == 0:
            self.mounts.append(self.root)
            self.overlay = True
            return
        self.say("overlayfs unavailable: copying the base rootfs (slower)")
        self.root.rmdir()
        for source in (self.base, *reversed(self.layers)):
            proc = _run(["cp", "-a", "--no-target-directory", str(source), str(self.root)])
            if proc.returncode:
                raise RuntimeError(f"copying the rootfs failed: {_last_line(proc)}")

    def save_layer(self, inside: str, dest: Path) -> None:
        """Keep the directory ``inside`` (absolute, in the rootfs) as a layer for later runs (``layers=``)."""
        partial = dest.with_name(dest.name + ".partial")
        _remove_tree(partial)
        partial.mkdir(parents=True)
        # --parents: the parent folders keep their owner and mode (/home/pi stays pi's)
        proc = _run(["cp", "-a", "--parents", inside.lstrip("/"), str(partial)], cwd=self.root)
        if proc.returncode:
            raise RuntimeError(f"saving {inside} failed: {_last_line(proc)}")
        _remove_tree(dest)
        partial.rename(dest)

    def save_changes(self, dest: Path) -> None:
        """Keep everything this run changed (the overlay's upper folder, whiteouts included) as a layer at ``dest``."""
        if not self.overlay:
            raise RuntimeError("saving a run's changes needs overlayfs")
        partial = dest.with_name(dest.name + ".partial")
        _remove_tree(partial)
        partial.parent.mkdir(parents=True, exist_ok=True)
        proc = _run(["cp", "-a", str(self.work / "upper"), str(partial)])
        if proc.returncode:
            raise RuntimeError(f"saving the changes failed: {_last_line(proc)}")
        _remove_tree(dest)
        partial.rename(dest)

    def _mount(self, args: list[str], target: Path) -> None:
        if not target.exists():
            target.mkdir(parents=True)
        proc = _run(["mount", *args, str(target)])
        if proc.returncode:
            raise RuntimeError(f"mount {' '.join(args)} {target} failed: {_last_line(proc)}")
        self.mounts.append(target)

    def bind(self, source: Path, target: str, readonly: bool = True) -> Path:
        """Bind ``source`` (host) at ``target`` (absolute path inside the rootfs)."""
        dest = self.root / target.lstrip("/")
        if source.is_dir():
            dest.mkdir(parents=True, exist_ok=True)
        else:
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.touch()
        self._mount(["--bind", str(source)], dest)
        if readonly:
            _run(["mount", "-o", "remount,bind,ro", str(dest)])
        return dest

    def set_cpuinfo(self, path: Path) -> None:
        """Show ``path`` as the device's /proc/cpuinfo (CPU-detection libraries read it)."""
        target = self.root / "proc" / "cpuinfo"
        if self.cpuinfo_mounted:
            _run(["umount", str(target)])
            self.mounts.remove(target)
        self._mount(["--bind", str(path)], target)
        self.cpuinfo_mounted = True

    def __exit__(self, *exc) -> None:
        for target in reversed(self.mounts):
            if _run(["umount", str(target)]).returncode:
                _run(["umount", "-l", str(target)])
        self.mounts.clear()
        if not any(True for line in Path("/proc/mounts").read_text().splitlines() if str(self.work) in line):
            _remove_tree(self.work)
        else:
            self.say(f"warning: mounts left under {self.work}; not removed")

    # ------------------------------------------------------------ the system
    def _configure(self) -> None:
        """What a freshly flashed Raspberry Pi OS has: network names, CAs, a user ``pi`` with sudo."""
        etc = self.root / "etc"
        (etc / "resolv.conf").unlink(missing_ok=True)
        shutil.copyfile("/etc/resolv.conf", etc / "resolv.conf")
        host_ca = Path("/etc/ssl/certs/ca-certificates.crt")
        if host_ca.is_file():  # the host's CA bundle: its network may inspect TLS
            shutil.copyfile(host_ca, etc / "ssl/certs/ca-certificates.crt")
        if not self.first_user:
            return
        self.run(f"useradd -m -s /bin/bash -u {UID} -G sudo {USER}", user="root")
        (etc / "sudoers.d" / "010_pi-nopasswd").write_text(f"{USER} ALL=(ALL) NOPASSWD: ALL\n")
        (etc / "sudoers.d" / "010_pi-nopasswd").chmod(0o440)

    def home(self, *parts: str) -> Path:
        return self.root / "home" / USER / Path(*parts) if parts else self.root / "home" / USER

    def chown(self, path: Path) -> None:
        _run(["chown", "-R", f"{UID}:{UID}", str(path)])

    def run(self, command: str, user: str = USER, env: dict | None = None, timeout: float = 3600,
            cwd: str | None = None) -> subprocess.CompletedProcess:
        """``bash -c command`` inside the rootfs as ``user``, with a clean environment, output captured."""
        home = "/root" if user == "root" else f"/home/{user}"
        clean = {"HOME": home, "USER": user, "LOGNAME": user, "LANG": "C.UTF-8", "TERM": "dumb",
                 "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", **self.env, **(env or {})}
        script = f"cd {cwd or home} && {command}"
        userspec = [] if user == "root" else [f"--userspec={UID}:{UID}"]
        argv = ["env", "-i", *[f"{k}={v}" for k, v in clean.items()], "chroot", *userspec, str(self.root),
                "/bin/bash", "-c", script]
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            return subprocess.CompletedProcess(argv, 124, out, f"timed out after {timeout:.0f} s: {command}")
