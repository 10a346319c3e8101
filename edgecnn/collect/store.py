"""A collection folder on disk: kept frames as ``<YYYYmmdd-HHMMSS>-<seq>.jpg`` plus a same-stem ``.json`` sidecar.

The JPEG is written first, then the sidecar, each through a temporary file and a rename, so a frame is complete
when its ``.json`` exists; readers (``iter_collection``, ``edgecnn collect pull``) skip anything else. The folder is
bounded by a disk budget: the oldest frames are removed first, sidecar before JPEG, so no reader ever sees a sidecar
without its picture.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import numpy as np

from edgecnn._io import write_bytes
from edgecnn.errors import OutputError

log = logging.getLogger(__name__)

# Sidecar field names (the interface between the camera that writes a collection and `collect pull` that reads it).
TIME = "time"            # ISO 8601 UTC of the capture
HOST = "host"            # socket.gethostname() of the camera's computer
RELEASE = "release"      # release folder name of edgecnn deploy, or None
MODEL = "model"          # model file name
PREDICTED = "predicted"  # top-1 label
SCORE = "score"          # top-1 score
TOP = "top"              # [{"label", "score"}, ...] top-5
RULE = "rule"            # which rule kept the frame (one of RULES)
NOVELTY = "novelty"      # novelty score, or None when the model has no features or statistics
FRAME = "frame"          # frame index from the source
SOURCE = "source"        # the camera source as given
WIDTH = "width"          # frame width as captured (before resize)
HEIGHT = "height"        # frame height as captured
FIELDS = (TIME, HOST, RELEASE, MODEL, PREDICTED, SCORE, TOP, RULE, NOVELTY, FRAME, SOURCE, WIDTH, HEIGHT)

# Rule names, in the order they are tried: the first that fires is the one recorded.
RULE_NOVELTY = "novelty"
RULE_LOW_SCORE = "low-score"
RULE_MARGIN = "margin"
RULE_RARE = "rare"
RULE_RANDOM = "random"
RULES = (RULE_NOVELTY, RULE_LOW_SCORE, RULE_MARGIN, RULE_RARE, RULE_RANDOM)

IMAGE_SUFFIX = ".jpg"
SIDECAR_SUFFIX = ".json"
JPEG_QUALITY = 90
TOP_K = 5  # entries of the sidecar's "top"
STEM_RE = re.compile(r"^(\d{8}-\d{6})-(\d{6})$")


@dataclass(frozen=True)
class CollectedFrame:
    """One complete frame of a collection: its picture, its sidecar and the sidecar's fields."""

    image: Path
    sidecar: Path
    meta: dict

    @property
    def stem(self) -> str:
        return self.image.stem


def frame_stem(t: float, seq: int) -> str:
    """``YYYYmmdd-HHMMSS-<6-digit seq>`` of a capture at unix time ``t`` (UTC)."""
    return f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime(t))}-{seq % 1_000_000:06d}"


def iso_time(t: float) -> str:
    """ISO 8601 UTC with milliseconds, e.g. ``2026-12-06T20:41:07.123Z``."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int((t % 1) * 1000):03d}Z"


def _stems(folder: Path) -> list[str]:
    """Stems of complete frames (sidecar and picture both there), oldest first (names sort by time, then seq)."""
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return []
    found = set(names)
    stems = [n[: -len(SIDECAR_SUFFIX)] for n in names if n.endswith(SIDECAR_SUFFIX) and not n.startswith(".")]
    return sorted(s for s in stems if STEM_RE.match(s) and s + IMAGE_SUFFIX in found)


def iter_collection(folder: str | os.PathLike) -> Iterator[CollectedFrame]:
    """Complete frames of a collection folder, oldest first; unreadable sidecars are skipped with a warning."""
    folder = Path(folder)
    for stem in _stems(folder):
        sidecar = folder / (stem + SIDECAR_SUFFIX)
        try:
            meta = json.loads(sidecar.read_text(encoding="utf-8"))
        except FileNotFoundError:  # removed meanwhile (evicted, pulled)
            continue
        except (OSError, ValueError) as exc:
            log.warning("warning: skipping %s: unreadable sidecar (%s)", sidecar.name, exc)
            continue
        yield CollectedFrame(folder / (stem + IMAGE_SUFFIX), sidecar, meta)


def encode_jpeg(image: np.ndarray) -> bytes:
    """The BGR frame as JPEG bytes at JPEG_QUALITY."""
    import cv2

    ok, buf = cv2.imencode(IMAGE_SUFFIX, image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise OutputError(f"could not encode a {image.shape} frame as JPEG")
    return buf.tobytes()


def _plain(obj):
    """numpy scalars in a sidecar as plain numbers."""
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


class CollectionStore:
    """Writes frames into ``folder`` within ``budget_bytes``, removing the oldest frames first.

    Not thread-safe: one writer (the collector's worker thread). Frames removed by someone else (a pull) are
    noticed by a re-scan whenever the budget looks exceeded.
    """

    def __init__(self, folder: str | os.PathLike, budget_bytes: int):
        self.folder = Path(folder)
        self.budget = int(budget_bytes)
        self.saved = 0
        self.evicted = 0
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create the collection folder {self.folder} ({exc.strerror or exc})") from None
        self._drop_incomplete()
        self._sizes: dict[str, int] = {}
        self._rescan()
        self._seq = self._next_seq()

    @property
    def used_bytes(self) -> int:
        return self._used

    @property
    def frames(self) -> int:
        return self._frames

    def save(self, image: np.ndarray, meta: dict, t: float) -> Optional[str]:
        """Write one frame and its sidecar; the stem, or None when one frame alone exceeds the budget."""
        jpeg = encode_jpeg(image)
        sidecar = (json.dumps(meta, indent=2, default=_plain) + "\n").encode("utf-8")
        size = len(jpeg) + len(sidecar)
        if size > self.budget:
            return None
        self._make_room(size)
        stem = frame_stem(t, self._seq)
        self._seq += 1
        try:
            write_bytes(self.folder / (stem + IMAGE_SUFFIX), jpeg)
            write_bytes(self.folder / (stem + SIDECAR_SUFFIX), sidecar)
        except OSError as exc:
            raise OutputError(f"cannot write to the collection folder {self.folder} ({exc.strerror or exc})") from None
        self._sizes[stem] = self._size(stem)
        self._count()
        self.saved += 1
        return stem

    def _make_room(self, size: int) -> None:
        if self.used_bytes + size <= self.budget:
            return
        self._rescan()  # a pull may have removed frames meanwhile
        while self._sizes and self.used_bytes + size > self.budget:
            self._remove(next(iter(self._sizes)))
            self._count()

    def _remove(self, stem: str) -> None:
        """Remove one frame, sidecar first (then it no longer counts as complete)."""
        for suffix in (SIDECAR_SUFFIX, IMAGE_SUFFIX):
            try:
                (self.folder / (stem + suffix)).unlink()
            except FileNotFoundError:
                pass
        del self._sizes[stem]
        self.evicted += 1

    def _size(self, stem: str) -> int:
        total = 0
        for suffix in (IMAGE_SUFFIX, SIDECAR_SUFFIX):
            try:
                total += (self.folder / (stem + suffix)).stat().st_size
            except FileNotFoundError:
                pass
        return total

    def _rescan(self) -> None:
        """Sizes of the complete frames, oldest first (dicts keep insertion order)."""
        self._sizes = {stem: self._size(stem) for stem in _stems(self.folder)}
        self._count()

    def _count(self) -> None:
        """The totals other threads read (the preview) without touching the dict this thread changes."""
        self._used, self._frames = sum(self._sizes.values()), len(self._sizes)

    def _drop_incomplete(self) -> None:
        """Remove pictures without a sidecar and temporaries that an interrupted run left."""
        names = set(os.listdir(self.folder))
        for name in names:
            stem, suffix = os.path.splitext(name)
            orphan = suffix == IMAGE_SUFFIX and STEM_RE.match(stem) and stem + SIDECAR_SUFFIX not in names
            temporary = name.startswith(".") and STEM_RE.match(name[1:].split(".")[0] or "")
            if orphan or temporary:
                try:
                    (self.folder / name).unlink()
                except OSError:
                    pass

    def _next_seq(self) -> int:
        seqs = [int(STEM_RE.match(s).group(2)) for s in self._sizes]
        return (max(seqs) + 1) if seqs else 0
