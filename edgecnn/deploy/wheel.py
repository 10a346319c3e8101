"""The edgecnn wheel a deploy installs on the boards: a given file, or built from this checkout (cached)."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from edgecnn.errors import UsageError

log = logging.getLogger("edgecnn.deploy")

CHECKOUT = Path(__file__).resolve().parents[2]


def cache_root() -> Path:
    return Path(os.environ.get("EDGECNN_CACHE_DIR") or Path.home() / ".cache" / "edgecnn") / "wheels"


def content_sha(wheel: Path) -> str:
    """sha256 of a wheel's member names and contents (zip timestamps left out): the same code, the same hash."""
    digest = hashlib.sha256()
    try:
        with zipfile.ZipFile(wheel) as zf:
            for name in sorted(zf.namelist()):
                digest.update(name.encode() + b"\0" + hashlib.sha256(zf.read(name)).digest())
    except (OSError, zipfile.BadZipFile) as exc:
        raise UsageError(f"{wheel} is not a readable wheel ({exc}); pass the .whl file `pip wheel` wrote") from None
    return digest.hexdigest()


def _source_sha(root: Path) -> str:
    digest = hashlib.sha256()
    files = [root / "pyproject.toml", root / "README.md",
             *sorted(p for p in (root / "edgecnn").rglob("*") if p.is_file() and "__pycache__" not in p.parts)]
    for path in files:
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def find_wheel(wheel: str | None) -> Path:
    """``--wheel`` when given, else a wheel of this checkout (built once per source state)."""
    if wheel:
        path = Path(wheel)
        if not (path.is_file() and path.name.startswith("edgecnn-") and path.suffix == ".whl"):
            raise UsageError(f"--wheel {wheel} is not an edgecnn wheel file (edgecnn-<version>-py3-none-any.whl)")
        return path
    if not (CHECKOUT / "pyproject.toml").is_file():
        raise UsageError("this edgecnn is installed from a wheel, not a checkout: pass --wheel PATH, the wheel "
                         "to install on the boards")
    folder = cache_root() / _source_sha(CHECKOUT)
    built = sorted(folder.glob("edgecnn-*.whl"))
    if built:
        return built[-1]
    log.info(f"building the edgecnn wheel from {CHECKOUT}")
    with tempfile.TemporaryDirectory(prefix="edgecnn-wheel-") as tmp:
        proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", tmp, str(CHECKOUT)],
                              capture_output=True, text=True)
        made = sorted(Path(tmp).glob("edgecnn-*.whl"))
        if proc.returncode or not made:
            lines = (proc.stderr or proc.stdout).strip().splitlines() or [f"exit status {proc.returncode}"]
            raise UsageError(f"building the wheel failed ({lines[-1]}); "
                             f"build one with `pip wheel --no-deps -w dist .` and pass --wheel") from None
        folder.mkdir(parents=True, exist_ok=True)
        partial = folder / (made[0].name + ".partial")
        shutil.copyfile(made[0], partial)
        partial.rename(folder / made[0].name)
    return folder / made[0].name
