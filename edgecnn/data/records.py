"""Fixed-size records in one raw file, read by index: the on-disk store behind the image cache and feature caches.

Each record is one array of ``shape`` and ``dtype``; record ``i`` starts at byte ``i * record_bytes``.
Reads use ``os.preadv`` straight into a numpy buffer, so the bytes pass through the operating system's page
cache, not through this process's memory: a dataset many times larger than RAM streams, and a process that
reads every record keeps only the batch it asked for. No memory map on purpose: pages a process maps and
touches count towards its resident set size (RSS) until the kernel evicts them.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


class RecordFile:
    """``RecordFile(path, shape, dtype)``: ``read(indices)`` -> array (len(indices), *shape); ``write(i, array)``."""

    def __init__(self, path: str | os.PathLike, shape, dtype, count: int | None = None):
        self.path = Path(path)
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        self.record_bytes = int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize
        self.count = count if count is not None else self.path.stat().st_size // max(self.record_bytes, 1)
        self._fd: int | None = None
        self._fd_pid: int | None = None
        self._writable = False

    @classmethod
    def create(cls, path: str | os.PathLike, count: int, shape, dtype) -> "RecordFile":
        """A new file of ``count`` zero records (sparse: no disk used until written)."""
        store = cls(path, shape, dtype, count)
        fd = os.open(store.path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.ftruncate(fd, count * store.record_bytes)
        finally:
            os.close(fd)
        store._writable = True
        return store

    def __len__(self) -> int:
        return self.count

    def __getstate__(self):  # picklable for worker processes: the descriptor is reopened there
        state = dict(self.__dict__)
        state["_fd"] = state["_fd_pid"] = None
        return state

    def open(self) -> "RecordFile":
        """Open the file now (reads otherwise open it on first use); FileNotFoundError when it is gone."""
        self._descriptor()
        return self

    def _descriptor(self) -> int:
        if self._fd is None or self._fd_pid != os.getpid():
            self._fd = os.open(self.path, os.O_RDWR if self._writable else os.O_RDONLY)
            self._fd_pid = os.getpid()
        return self._fd

    def read(self, indices) -> np.ndarray:
        """Records ``indices`` (any order, repeats allowed) as one array."""
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        out = np.empty((len(indices), *self.shape), dtype=self.dtype)
        if not len(indices):
            return out
        if indices.min() < 0 or indices.max() >= self.count:
            raise IndexError(f"record index out of range 0..{self.count - 1} in {self.path}")
        fd, size = self._descriptor(), self.record_bytes
        flat = out.reshape(len(indices), -1).view(np.uint8)
        start = 0
        while start < len(indices):  # one system call per run of consecutive records
            stop = start + 1
            while stop < len(indices) and indices[stop] == indices[stop - 1] + 1:
                stop += 1
            _read_exactly(fd, flat[start:stop], int(indices[start]) * size)
            start = stop
        return out

    def write(self, index: int, values: np.ndarray) -> None:
        """Write records ``index, index + 1, ...`` from ``values`` (one record, or a batch of them)."""
        values = np.ascontiguousarray(values, dtype=self.dtype)
        if values.shape == self.shape:
            values = values[None]
        if values.shape[1:] != self.shape or index < 0 or index + len(values) > self.count:
            raise ValueError(f"records of shape {values.shape} at {index} do not fit {self.path} "
                             f"({self.count} x {self.shape})")
        if not self._writable:  # reopen read-write
            self.close()
            self._writable = True
        data = memoryview(values.reshape(-1).view(np.uint8))
        offset, fd = index * self.record_bytes, self._descriptor()
        while len(data):
            written = os.pwrite(fd, data, offset)
            data, offset = data[written:], offset + written

    def move(self, sources, targets) -> None:
        """Copy record ``sources[i]`` onto record ``targets[i]`` for each i (a few MB read at a time)."""
        batch = max(1, (64 << 20) // max(self.record_bytes, 1))
        for start in range(0, len(sources), batch):
            values = self.read(sources[start:start + batch])
            for target, value in zip(targets[start:start + batch], values):
                self.write(int(target), value)

    def truncate(self, count: int) -> None:
        """Keep the first ``count`` records only."""
        if not self._writable:
            self.close()
            self._writable = True
        os.ftruncate(self._descriptor(), count * self.record_bytes)
        self.count = count

    def close(self) -> None:
        if self._fd is not None and self._fd_pid == os.getpid():
            os.close(self._fd)
        self._fd = None


def _read_exactly(fd: int, out: np.ndarray, offset: int) -> None:
    view = memoryview(out.reshape(-1))
    while len(view):
        if hasattr(os, "preadv"):
            got = os.preadv(fd, [view], offset)
        else:  # no preadv (Windows): read, then copy
            chunk = os.pread(fd, len(view), offset)
            got = len(chunk)
            view[:got] = chunk
        if got <= 0:
            raise OSError(f"unexpected end of record file at byte {offset}")
        view, offset = view[got:], offset + got
