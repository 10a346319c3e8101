"""The image cache: each image of a class-per-folder dataset decoded and resized once, then read from disk.

:func:`open_folder` scans the folder once (the rules of :func:`~edgecnn.data.folder.scan_folder`), then looks
for a cache entry made from the same files (relative path, size, modification and status-change time and inode
of each: an edit whose modification time is put back still changes the last two), at the same
image size, by the same decoder. When there is none it builds one: worker processes, one per core, decode and
resize the files (:func:`~edgecnn.data.decode.decode_rgb`: by content, EXIF orientation, alpha/16-bit/palette
to RGB) and write the pixels straight into a :class:`~edgecnn.data.records.RecordFile`; unreadable files are
skipped and remembered, and take no room: the last decoded images move into their slots and the file is cut to
one record per decoded image. The :class:`FolderImages` it returns holds paths and labels; pixels are read by index,
a batch at a time, so no part of edgecnn needs the whole dataset in memory.

Where: ``$EDGECNN_CACHE_DIR``, else ``$XDG_CACHE_HOME/edgecnn``, else ``~/.cache/edgecnn``. One folder per data
folder and image size keeps the newest version of that data only. Deleting the cache is always safe, during a
build too (the entry is built again, after one notice). A full disk is one error line naming the folder.
Worker processes: forked (no start-up cost) when this process has a single thread, as ``edgecnn train``
has before it imports TensorFlow; otherwise from a ``forkserver`` (or ``spawn``), which is safe beside
TensorFlow's threads and, as for any multiprocessing code, needs a script calling edgecnn to guard its top
level with ``if __name__ == "__main__":``. Should workers fail to start, decoding goes on in this process.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgecnn._io import write_text
from edgecnn.data.decode import damaged_line, decode_rgb, decoder_warnings, resize
from edgecnn.data.folder import (
    FILE_MARK,
    FolderScan,
    check_every_class_readable,
    reason_template,
    scan_folder,
    skipped_line,
)
from edgecnn.data.imageset import ImageSet
from edgecnn.data.records import RecordFile
from edgecnn.errors import DataError
from edgecnn.table import human_size

log = logging.getLogger("edgecnn.data")

CACHE_ENV = "EDGECNN_CACHE_DIR"
# Bump when this layout changes: entries made by another version are rebuilt (as they are when decode.py,
# Pillow or OpenCV change: the fingerprint includes them).
CACHE_VERSION = 2
INDEX_FILE = "index.json"
CHUNK = 32  # files per task sent to a worker process
MIN_PARALLEL = 4 * CHUNK  # fewer files than this decode in this process (starting workers costs ~1 s)


def cache_root() -> Path:
    """``$EDGECNN_CACHE_DIR``, else ``$XDG_CACHE_HOME/edgecnn``, else ``~/.cache/edgecnn``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "edgecnn"


def cpu_workers() -> int:
    """Cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


@dataclass
class FolderImages:
    """A class-per-folder dataset at one image size: paths and labels in memory, pixels on disk (``read``)."""

    root: Path
    class_names: list[str]
    size: tuple[int, int]  # (height, width)
    store: RecordFile  # uint8 (height, width, 3) RGB records
    slots: np.ndarray  # record index of each image in ``store``
    labels: np.ndarray  # int64 class index of each image
    paths: list[Path]
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # (path, reason): unreadable files
    cache: str = ""  # the cache entry's folder

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def shape(self) -> tuple[int, int, int]:
        return (*self.size, 3)

    dtype = np.dtype(np.uint8)

    def read(self, positions=None) -> np.ndarray:
        """uint8 RGB images (n, height, width, 3): all of them, or those at ``positions`` (in that order)."""
        slots = self.slots if positions is None else self.slots[np.asarray(positions, dtype=np.int64)]
        return self.store.read(slots)

    def subset(self, positions) -> "FolderImages":
        positions = np.asarray(positions, dtype=np.int64)
        return FolderImages(self.root, self.class_names, self.size, self.store, self.slots[positions],
                            self.labels[positions], [self.paths[i] for i in positions], self.skipped, self.cache)

    def first_per_class(self, limit: int) -> "FolderImages":
        """At most ``limit`` images of each class, the first ones in scan order."""
        seen: dict[int, int] = {}
        keep = []
        for i, label in enumerate(self.labels.tolist()):
            if seen.get(label, 0) < limit:
                seen[label] = seen.get(label, 0) + 1
                keep.append(i)
        return self.subset(keep)

    def load(self) -> ImageSet:
        """Everything in memory (small sets: figures, calibration samples, tests)."""
        return ImageSet(self.read(), self.labels.copy(), str(self.root), self.class_names, list(self.paths),
                        self.skipped)


def open_folder(root: str | os.PathLike, img_size: int | tuple[int, int], class_names: list[str] | None = None,
                *, workers: int | None = None) -> FolderImages:
    """The images of ``root/<class>/**`` at ``img_size``, decoded once and cached on disk (see the module notes).

    ``class_names`` fixes the class order (a validation folder takes the training classes). DataError for a
    missing or empty folder, an empty class, or a class without one readable image.
    """
    size = (img_size, img_size) if isinstance(img_size, int) else (int(img_size[0]), int(img_size[1]))
    scan = scan_folder(root, class_names)
    order = sorted(range(len(scan.files)), key=scan.names.__getitem__)  # the cache's slots: by name under root
    files = [scan.files[i][0] for i in order]
    entry = _entry_dir(scan.root, size)
    fingerprint = _fingerprint([(scan.names[i], *scan.stats[i]) for i in order], size)
    index, store = _read_index(entry, fingerprint), None
    if index is not None:
        log.debug(f"data: {len(files)} files of {scan.root} at {size[0]}x{size[1]} from the cache {entry}")
        store = _open_pixels(entry, index, size)
    if store is None:  # none yet, or another process replaced it between our reading the index and the pixels
        nonempty = sum(1 for stats in scan.stats if stats[0] > 0)
        index, store = _built(entry, scan.root, files, size, fingerprint, workers or cpu_workers(), nonempty)
    slots, labels, paths, skipped = _placed(scan, order, index)
    if skipped:
        log.info(f"data: {skipped_line(skipped, len(scan.files), scan.root)}")
    if index.get("damaged"):
        log.warning(damaged_line([files[slot] for slot in index["damaged"]], len(scan.files), scan.root))
    if not slots:
        raise DataError(f"no readable images under {scan.root} ({len(skipped)} files skipped); "
                        f"supported: JPEG, PNG, BMP, GIF, WebP, TIFF")
    check_every_class_readable(scan, set(labels), skipped)
    return FolderImages(scan.root, scan.class_names, size, store, np.asarray(slots, dtype=np.int64),
                        np.asarray(labels, dtype=np.int64), paths, skipped, str(entry))


def _placed(scan: FolderScan, order: list[int], index: dict) -> tuple[list, list, list, list]:
    """In scan order: (record, label, path) of each decoded file, and (path, reason) of each skipped one."""
    failed = {slot: template for template, slots in index["skipped"].items() for slot in slots}
    moved = dict(index["moved"])
    slot_of = {position: slot for slot, position in enumerate(order)}
    records, labels, paths, skipped = [], [], [], []
    for position, (path, label) in enumerate(scan.files):
        slot = slot_of[position]
        if slot in failed:
            skipped.append((path, failed[slot].replace(FILE_MARK, str(path))))
            continue
        records.append(moved.get(slot, slot))
        labels.append(label)
        paths.append(path)
    return records, labels, paths, skipped


def decode_files(paths: list[Path], img_size: int | tuple[int, int], *, limit: int | None = None,
                 workers: int | None = None) -> tuple[np.ndarray, list[int], list[tuple[Path, str]]]:
    """Decode and resize ``paths`` in parallel, without the cache: (images, positions kept, skipped).

    With ``limit``, stops once that many images decoded (in ``paths`` order). For a few hundred images picked
    from a folder (export calibration); a whole dataset goes through :func:`open_folder`.
    """
    size = (img_size, img_size) if isinstance(img_size, int) else (int(img_size[0]), int(img_size[1]))
    wanted = len(paths) if limit is None else limit
    images, kept, skipped = [], [], []
    with tempfile.TemporaryDirectory(prefix="edgecnn-decode-") as tmp:
        start = 0
        while start < len(paths) and len(kept) < wanted:
            batch = paths[start:start + max(wanted - len(kept), 1) + 8]  # a few spare for unreadable files
            store = RecordFile.create(Path(tmp) / f"{start}.u8", len(batch), (*size, 3), np.uint8)
            failed, damaged = _decode_all(store, [str(p) for p in batch], size, workers or cpu_workers())
            failed = dict(failed)
            if damaged:
                log.warning(damaged_line([batch[i] for i in damaged], len(batch)))
            good = [i for i in range(len(batch)) if i not in failed][:wanted - len(kept)]
            images.append(store.read(good))
            store.close()
            kept += [start + i for i in good]
            skipped += [(batch[i], failed[i]) for i in sorted(failed)]
            start += len(batch)
    pixels = np.concatenate(images) if images else np.zeros((0, *size, 3), np.uint8)
    return pixels, kept, skipped


# --- the cache entry ---------------------------------------------------------------------------------------------

def _entry_dir(root: Path, size: tuple[int, int]) -> Path:
    resolved = str(root.resolve())
    digest = hashlib.sha256(f"{resolved}|{size[0]}x{size[1]}".encode()).hexdigest()[:16]
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in root.resolve().name)[:40] or "data"
    return cache_root() / "images" / f"{name}-{size[0]}x{size[1]}-{digest}"


def _decoder_identity() -> str:
    from edgecnn.data import decode

    rules = hashlib.sha256(Path(decode.__file__).read_bytes()).hexdigest()[:12]
    versions = [f"edgecnn-cache-{CACHE_VERSION}", f"decode.py-{rules}"]
    for module in ("PIL", "cv2"):
        try:
            versions.append(f"{module}-{__import__(module).__version__}")
        except ImportError:
            versions.append(f"{module}-none")
    return ",".join(versions)


def _fingerprint(files: list[tuple], size: tuple[int, int]) -> str:
    """Of the decoder, the size and each file's ``(name under the root, *stats)`` (:class:`FolderScan`'s stats:
    size, mtime, ctime, inode)."""
    digest = hashlib.sha256(f"{_decoder_identity()}|{size[0]}x{size[1]}\n".encode())
    for name, *stats in files:
        digest.update("\0".join(map(str, (name, *stats))).encode() + b"\n")
    return digest.hexdigest()


def _read_index(entry: Path, fingerprint: str) -> dict | None:
    try:
        index = json.loads((entry / INDEX_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if index.get("fingerprint") != fingerprint or not (entry / str(index.get("pixels"))).is_file():
        return None
    return index


def _open_pixels(entry: Path, index: dict, size: tuple[int, int]) -> RecordFile | None:
    """The entry's pixel file, opened now (a file another process deletes later stays readable through the
    open descriptor); None when it is already gone."""
    store = RecordFile(entry / index["pixels"], (*size, 3), np.uint8, count=index["records"])
    try:
        store.open()
    except FileNotFoundError:
        return None
    return store


@contextlib.contextmanager
def _locked(entry: Path):
    """One builder per entry at a time (several training processes on one machine); others wait, then reuse."""
    try:
        entry.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create the image cache folder {entry} ({exc.strerror}); "
                        f"set {CACHE_ENV} to a writable folder") from None
    try:
        import fcntl
    except ImportError:  # Windows: no lock
        yield
        return
    with open(entry / ".lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class _Deleted(Exception):
    """The cache entry's folder or files were deleted while it was being built."""


def _built(entry: Path, root: Path, files: list[Path], size: tuple[int, int], fingerprint: str, workers: int,
           nonempty: int) -> tuple[dict, RecordFile]:
    """The entry's index and open pixel file, built under the lock unless another process built it meanwhile; built
    once more, after a notice, when the cache is deleted during the build."""
    for attempt in range(2):
        with _locked(entry):
            index = _read_index(entry, fingerprint)  # another process may have built it meanwhile
            try:
                if index is None:
                    index = _build(entry, root, files, size, fingerprint, workers, nonempty)
                store = _open_pixels(entry, index, size)  # under the lock: nobody replaces it now
            except _Deleted:
                store = None
        if store is not None:
            return index, store
        if not attempt:
            log.warning(f"note: the image cache {entry} was deleted while it was being built; decoding again")
    raise DataError(f"the image cache {entry} was deleted twice while it was being built; let the run build it "
                    f"before deleting it, or set {CACHE_ENV} to another folder")


def _build(entry: Path, root: Path, files: list[Path], size: tuple[int, int], fingerprint: str,
           workers: int, nonempty: int) -> dict:
    """Decode ``files`` into a new pixel file of ``entry`` and write its index (``nonempty``: files not 0 bytes).

    Leaves no pixel file behind when it fails: DataError naming the folder for a full disk, :class:`_Deleted` when
    the cache was deleted meanwhile."""
    needed = nonempty * size[0] * size[1] * 3
    free = shutil.disk_usage(entry).free
    if needed > free:
        raise DataError(f"the image cache needs {human_size(needed)} for {nonempty} images at {size[0]}x{size[1]} "
                        f"and {entry} has {human_size(free)} free; {_make_room(entry)}")
    name = f"pixels-{fingerprint[:16]}.u8"
    tmp = entry / f".{name}.{os.getpid()}.tmp"
    started, store = time.perf_counter(), None
    try:
        store = RecordFile.create(tmp, len(files), (*size, 3), np.uint8)
        failed, damaged = _decode_all(store, [str(p) for p in files], size, workers, f"decoding {root.name}")
        failed = dict(failed)
        moved = _fill_holes(store, sorted(failed))
        store.close()
        os.replace(tmp, entry / name)
        index = _write_index(entry, root, files, size, fingerprint, failed, damaged, moved, name, started, workers)
    except OSError as exc:
        deleted = not entry.is_dir() or not (tmp.exists() or (entry / name).exists())
        for path in (tmp, entry / name):  # a full-size pixel file without an index would only take room
            with contextlib.suppress(OSError):
                path.unlink()
        if deleted:
            raise _Deleted from None
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DataError(f"the image cache needs {human_size(needed)} for {nonempty} images at "
                            f"{size[0]}x{size[1]} and the disk of {entry} is full ({exc.strerror}); "
                            f"{_make_room(entry)}") from None
        raise
    finally:
        if store is not None:
            store.close()  # a descriptor left open would keep a removed file's blocks
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return index


def _make_room(entry: Path) -> str:
    return (f"free space there, delete the cache ({cache_root()}), or set {CACHE_ENV} to a folder on a disk with "
            f"more room")


def _write_index(entry: Path, root: Path, files: list[Path], size: tuple[int, int], fingerprint: str,
                 failed: dict[int, str], damaged: list[int], moved: list, name: str, started: float,
                 workers: int) -> dict:
    """Write the entry's index for the pixel file ``name`` just built, remove older pixel files, log the build."""
    seconds = time.perf_counter() - started
    skipped: dict[str, list[int]] = {}  # reason (the file's path as FILE_MARK) -> slots
    for slot, reason in sorted(failed.items()):
        skipped.setdefault(reason_template(files[slot], reason), []).append(slot)
    index = {"version": CACHE_VERSION, "root": str(root.resolve()), "size": list(size), "count": len(files),
             "records": len(files) - len(failed), "fingerprint": fingerprint, "decoder": _decoder_identity(),
             "pixels": name, "skipped": skipped, "moved": moved, "damaged": sorted(damaged),
             "seconds": round(seconds, 2),
             "workers": workers if len(files) >= MIN_PARALLEL else 1}
    write_text(entry / INDEX_FILE, json.dumps(index, separators=(",", ":")) + "\n")  # compact: one slot per skip
    for old in entry.glob("pixels-*.u8"):  # earlier versions of this folder (open readers keep their copy)
        if old.name != name:
            with contextlib.suppress(OSError):
                old.unlink()
    log.info(f"data: decoded {len(files)} files of {root} in {seconds:.1f} s "
             f"({len(files) / max(seconds, 1e-9):.0f} images/s, {index['workers']} processes); cached in {entry}")
    return index


def _fill_holes(store: RecordFile, failed: list[int]) -> list[list[int]]:
    """Move the last decoded records into the slots of the ``failed`` (sorted) ones and cut the file after the
    decoded count: one record per decoded image, copying no more records than failed. The [slot, record] moves."""
    kept = store.count - len(failed)
    holes = [slot for slot in failed if slot < kept]
    tail = sorted(set(range(kept, store.count)) - set(failed))  # as many as there are holes
    store.move(tail, holes)
    store.truncate(kept)
    return [[slot, record] for slot, record in zip(tail, holes)]


# --- parallel decoding -------------------------------------------------------------------------------------------

def _decode_chunk(store: RecordFile, size: tuple[int, int], start: int,
                  paths: list[str]) -> tuple[list[tuple[int, str]], list[int]]:
    """Decode ``paths`` into records ``start, start + 1, ...`` of ``store``, one write per run of decoded files;
    return ``(record, reason)`` for the unreadable ones, whose records are never written (no disk used), and the
    records of files decoded despite corrupt data (:func:`~edgecnn.data.decode.decoder_warnings`)."""
    failed, decoded = [], []
    pixels = np.zeros((len(paths), *size, 3), np.uint8)
    with decoder_warnings() as damaged:
        for n, path in enumerate(paths):
            try:
                rgb = decode_rgb(path)
                pixels[n] = rgb if rgb.shape[:2] == size else resize(rgb, size)  # no OpenCV when it fits
                decoded.append(n)
            except DataError as exc:
                failed.append((start + n, str(exc)))
    for first, stop in _runs(decoded):
        store.write(start + first, pixels[first:stop])
    store.close()
    record = {path: start + n for n, path in enumerate(paths)}
    return failed, [record[path] for path in damaged]


def _runs(ascending: list[int]) -> list[tuple[int, int]]:
    """``[0, 1, 2, 5, 6]`` -> ``[(0, 3), (5, 7)]``: the runs of consecutive numbers, as (first, stop)."""
    runs: list[tuple[int, int]] = []
    for n in ascending:
        if runs and runs[-1][1] == n:
            runs[-1] = (runs[-1][0], n + 1)
        else:
            runs.append((n, n + 1))
    return runs


def _decode_all(store: RecordFile, paths: list[str], size: tuple[int, int], workers: int,
                description: str = "decoding") -> tuple[list[tuple[int, str]], list[int]]:
    """Decode every path into ``store`` (slot = position), across ``workers`` processes when worth it: (record,
    reason) of each unreadable file, and the records of those decoded despite corrupt data."""
    from edgecnn.progress import live

    chunks = [(start, paths[start:start + CHUNK]) for start in range(0, len(paths), CHUNK)]
    failed: list[tuple[int, str]] = []
    damaged: list[int] = []
    with live(len(paths), description) as bar:
        pending = chunks
        if workers > 1 and len(paths) >= MIN_PARALLEL:
            pending = _decode_in_pool(store, size, chunks, workers, (failed, damaged), bar)
        for start, chunk in pending:
            chunk_failed, chunk_damaged = _decode_chunk(store, size, start, chunk)
            failed += chunk_failed
            damaged += chunk_damaged
            bar.advance(len(chunk))
    return failed, damaged


# Libraries whose thread pools make fork() unsafe once loaded (numpy's OpenBLAS handles fork itself).
THREADED_RUNTIMES = ("tensorflow", "torch", "jax")


def _context():
    """fork on Linux before TensorFlow is loaded (instant start); else a forkserver, else spawn."""
    import multiprocessing
    import sys

    methods = multiprocessing.get_all_start_methods()
    if sys.platform.startswith("linux") and not any(name in sys.modules for name in THREADED_RUNTIMES):
        return multiprocessing.get_context("fork")
    if "forkserver" in methods:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([__name__])
        return context
    return multiprocessing.get_context("spawn")


def _decode_in_pool(store, size, chunks, workers, found, bar) -> list:
    """Run ``chunks`` in worker processes, adding to ``found`` (failed, damaged); return the chunks left undone when
    the pool could not run them."""
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    pool = ProcessPoolExecutor(max_workers=min(workers, len(chunks)), mp_context=_context())
    futures = {pool.submit(_decode_chunk, store, size, *chunk): n for n, chunk in enumerate(chunks)}
    done: set[int] = set()
    try:
        for future in as_completed(futures):
            for into, got in zip(found, future.result()):
                into += got
            done.add(futures[future])
            bar.advance(len(chunks[futures[future]][1]))
    except BrokenProcessPool as exc:
        log.warning(f"note: decoding in worker processes failed ({exc}); decoding in this process instead")
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return [chunk for n, chunk in enumerate(chunks) if n not in done]


def load_folder(
    root: str | os.PathLike,
    img_size: int | tuple[int, int],
    class_names: list[str] | None = None,
    limit_per_class: int | None = None,
) -> ImageSet:
    """Every image under ``root`` (or the first ``limit_per_class`` readable ones of each class) in memory.

    Decoded through the on-disk cache (:func:`open_folder`); unreadable or non-image files are skipped and
    listed in ``skipped``. For small sets: a whole dataset streams with ``open_folder``.
    """
    data = open_folder(root, img_size, class_names)
    if limit_per_class is not None:
        data = data.first_per_class(limit_per_class)
    return data.load()
