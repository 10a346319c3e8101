"""Device profiles (``edgecnn/bench/profiles/<name>.json``): benchmark defaults and install facts per target.

They ship inside the package, so ``--device raspberry-pi-5`` works on the board itself; ``$EDGECNN_DEVICES``
names another folder of ``<name>.json`` files, and ``--device`` also takes a path to a profile file.
The human-readable side of each target (install steps, results) is ``devices/<name>/README.md``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from edgecnn.errors import UsageError, did_you_mean

PROFILE_SUFFIX = ".json"
BENCH_KEYS = ("formats", "threads", "runs", "warmup", "batch")


def devices_dir() -> Path:
    env = os.environ.get("EDGECNN_DEVICES")
    return Path(env) if env else Path(__file__).resolve().parent / "profiles"


def list_devices() -> list[str]:
    root = devices_dir()
    return sorted(p.stem for p in root.glob("*" + PROFILE_SUFFIX)) if root.is_dir() else []


def load_profile(name: str) -> dict:
    """The profile of device ``name`` (or the profile file at that path)."""
    path = Path(name)
    if not path.is_file():
        path = devices_dir() / (name + PROFILE_SUFFIX)
    if not path.is_file():
        known = list_devices()
        hint = did_you_mean(name, known)
        where = f"; known: {', '.join(known)}" if known else f"; no profiles in {devices_dir()} (set EDGECNN_DEVICES)"
        raise UsageError(f"unknown --device {name!r}{hint}{where}")
    try:
        profile = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise UsageError(f"device profile {path} is not valid JSON ({exc}); fix it") from None
    profile.setdefault("name", path.stem)
    profile["_path"] = str(path)
    return profile


def benchmark_defaults(profile: dict) -> dict:
    """The benchmark options a profile sets (formats, threads, runs, warmup, batch)."""
    bench = profile.get("benchmark", {})
    return {k: bench[k] for k in BENCH_KEYS if k in bench}
