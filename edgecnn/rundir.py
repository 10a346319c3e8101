"""File names of a training run directory and an export folder, and loading the run's Keras model.

A run directory (``edgecnn train``) holds ``model.keras`` with its card,
``labels.txt`` and ``config.json``; an export folder (``edgecnn export``) holds
the artifacts named in :data:`edgecnn.formats.FORMATS`, ``labels.txt`` and
``export_report.json``. Keras is imported only by :func:`load_keras`.
"""

from __future__ import annotations

import json
import os
import threading
import zipfile
from pathlib import Path
from typing import Any

from edgecnn.errors import ModelError, UsageError, first_line
from edgecnn.formats import FORMATS, KERAS_SUFFIXES

MODEL_FILE = FORMATS["keras"].filename  # model.keras: a run's model is the keras format's artifact
DEFAULT_RUN_DIR = "runs/train"  # numbered runs/train2, runs/train3, ... when taken
LABELS_FILE = "labels.txt"
CONFIG_FILE = "config.json"
EXPORT_REPORT_FILE = "export_report.json"
FEATURE_STATS_FILE = "feature_stats.npz"  # an export's training-feature statistics (runtime/novelty.py)
RELEASE_FILE = "release.json"  # a release folder of `edgecnn deploy` on a board: which model it runs


def model_file(path: str | os.PathLike) -> tuple[Path, Path | None]:
    """(Keras model file, run directory or None) for a run directory or a .keras/.h5 file."""
    path = Path(path)
    if not path.exists():
        raise ModelError(f"model not found: {path}; pass a training run directory or a .keras file")
    if path.is_dir():
        if not (path / MODEL_FILE).is_file():
            raise ModelError(f"{path} is a folder without {MODEL_FILE}; pass a training run directory or a .keras file")
        return path / MODEL_FILE, path
    if path.suffix.lower() not in KERAS_SUFFIXES:
        raise ModelError(f"{path} is not a Keras model (expected a .keras file or a run directory); "
                         f"to run an already exported model use `edgecnn predict`")
    if path.suffix.lower() == ".keras" and not zipfile.is_zipfile(path):
        raise ModelError(f"{path} is not a Keras model (a .keras file is a zip archive); "
                         f"save the model with model.save('model.keras')")
    run_dir = path.parent if path.name == MODEL_FILE and (path.parent / CONFIG_FILE).is_file() else None
    return path, run_dir


def check_run_dir(out: str | os.PathLike, exist_ok: bool = False) -> Path:
    """``out`` as a Path; UsageError when it is a file, or a non-empty folder without ``exist_ok``."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise UsageError(f"--out {path} is a file; pass a folder for the run")
    if not exist_ok and path.is_dir() and any(path.iterdir()):
        raise UsageError(f"--out {path} already exists and is not empty; pass --exist-ok to write the run into "
                         f"it (its files are replaced), or choose another --out (without --out runs are "
                         f"numbered: {DEFAULT_RUN_DIR}, {DEFAULT_RUN_DIR}2, ...)")
    return path


def new_run_dir(out: str | os.PathLike | None, exist_ok: bool = False) -> Path:
    """The folder a new training run writes to, created and claimed here (:func:`claim_folder`); a run is never
    overwritten by accident, nor shared with a run started at the same time.

    ``out`` None: the first free one of ``runs/train``, ``runs/train2``, ``runs/train3``, ... (as
    Ultralytics numbers its runs). An ``out`` that exists and is not empty needs ``exist_ok``.
    """
    if out is not None:
        path = check_run_dir(out, exist_ok)
        path.mkdir(parents=True, exist_ok=True)
        claim_folder(path, "--out", "training run")
        try:
            return check_run_dir(path, exist_ok)  # again, claimed: a run that finished meanwhile left its files
        except UsageError:
            release_folder(path)
            raise
    base = Path(DEFAULT_RUN_DIR)
    base.parent.mkdir(parents=True, exist_ok=True)
    for n in range(1, 100_000):
        path = base if n == 1 else base.with_name(f"{base.name}{n}")
        try:
            path.mkdir()  # atomic: two trainings started together get different folders
        except FileExistsError:
            continue
        claim_folder(path, "--out", "training run")
        return path
    raise UsageError(f"no free run folder {base}N left; pass --out")


_claims: dict[str, tuple[int, int]] = {}  # folder -> (open descriptor holding the lock, claiming thread)
_claims_lock = threading.Lock()


def claim_folder(path: str | os.PathLike, option: str, what: str) -> None:
    """Claim the existing folder ``path`` for this process, or raise UsageError when another process or thread
    holds it (``option`` and ``what`` name it: ``"--out", "training run"``).

    An exclusive lock on the folder itself (``flock``): no file is left behind and the system drops it when the
    process ends, however it ends. Held until :func:`release_folder`; the thread that holds it may claim it again
    (runs one after another in one session). No lock on Windows.
    """
    try:
        import fcntl
    except ImportError:  # Windows
        return
    key = str(Path(path).resolve())
    with _claims_lock:
        if key in _claims:
            fd, owner = _claims[key]
            if owner != threading.get_ident() and owner in {t.ident for t in threading.enumerate()}:
                raise UsageError(_in_use(path, option, what))
            _claims[key] = (fd, threading.get_ident())
            return
        fd = os.open(key, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise UsageError(_in_use(path, option, what)) from None
        except OSError:  # a file system without locks (some network and FUSE ones): go on unclaimed
            os.close(fd)
            return
        _claims[key] = (fd, threading.get_ident())


def release_folder(path: str | os.PathLike) -> None:
    """Give up this process's claim on ``path`` (:func:`claim_folder`); nothing when it holds none."""
    with _claims_lock:
        held = _claims.pop(str(Path(path).resolve()), None)
    if held is not None:
        os.close(held[0])  # closing the descriptor drops the lock


def _in_use(path: str | os.PathLike, option: str, what: str) -> str:
    return (f"{option} {path} is in use by another {what} (another edgecnn run is writing into it); wait for "
            f"it to finish or choose another {option}")


def run_config(run_dir: Path) -> dict[str, Any]:
    """The run's ``config.json`` as a dict (empty when there is none)."""
    config = run_dir / CONFIG_FILE
    if not config.is_file():
        return {}
    try:
        return json.loads(config.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ModelError(f"{config} is not valid JSON ({exc}); fix or remove it") from None


def load_keras(path: str | os.PathLike):
    """Load a Keras model file (edgecnn's custom layers registered first); ModelError when it cannot."""
    import keras

    from edgecnn.models import list_models

    list_models()  # import the architecture modules so their custom layers deserialize
    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as exc:  # noqa: BLE001  (Keras raises many types for bad files)
        raise ModelError(f"cannot load {path} as a Keras model ({first_line(exc, 200)}); "
                         f"pass a .keras file saved by keras.Model.save") from None
