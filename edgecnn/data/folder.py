"""Class-per-folder image datasets (``root/<class>/<image>``): the scan, and how skipped files are reported.

Images are recognised by content, not by extension; files that cannot be
decoded are skipped and reported, never a crash mid-epoch. Decoding happens
once, in parallel, into the on-disk cache of :mod:`edgecnn.data.cache`;
training, evaluation and export read that (``open_folder``) a batch at a time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from edgecnn.errors import DataError


@dataclass
class FolderScan:
    root: Path
    class_names: list[str]
    files: list[tuple[Path, int]]  # (path, class index), sorted for reproducibility
    names: list[str] = field(default_factory=list)  # each file's path under root, "/"-separated
    # Each file's (size, modification time, status-change time (ns), inode): a write, even one whose mtime is put
    # back (touch -r), or a replaced file changes one of them; nothing a user tool does can set the ctime.
    stats: list[tuple[int, int, int, int]] = field(default_factory=list)


def scan_folder(root: str | os.PathLike, class_names: list[str] | None = None) -> FolderScan:
    """List ``root/<class>/**`` files. ``class_names`` fixes the class order (e.g. a validation folder)."""
    root = Path(root)
    if not root.exists():
        raise DataError(f"data folder not found: {root}; pass a folder with one sub-folder of images per class")
    if not root.is_dir():
        raise DataError(f"data path is not a folder: {root}; pass a folder with one sub-folder of images per class")
    found = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not found:
        raise DataError(f"no class folders in {root}; put the images of each class in their own sub-folder")
    if class_names is None:
        if len(found) < 2:
            raise DataError(f"only one class folder ({found[0]}) in {root}; a classifier needs at least two classes")
        class_names = found
    else:
        unknown = sorted(set(found) - set(class_names))
        if unknown:
            raise DataError(f"{root} has class folders not in the training classes: {', '.join(unknown)}")
    scan = FolderScan(root=root, class_names=list(class_names), files=[])
    for index, name in enumerate(class_names):
        members = _files_under(root / name)
        if not members and name in found:
            raise DataError(f"class folder {root / name} is empty; add images to it or remove it")
        for parts, st in members:
            scan.files.append((root.joinpath(name, *parts), index))
            scan.names.append("/".join((name, *parts)))
            scan.stats.append((st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino))
    return scan


def _files_under(folder: Path) -> list[tuple[tuple[str, ...], os.stat_result]]:
    """Every file under ``folder`` that is not hidden, as (path parts below ``folder``, stat), in path order.

    One ``os.scandir`` pass: symlinks to files count, symlinked folders are not entered, unreadable
    folders are passed over (as ``Path.rglob`` does).
    """
    found = []
    pending = [((), folder)]
    while pending:
        parts, current = pending.pop()
        try:
            with os.scandir(current) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(((*parts, entry.name), entry.path))
                    elif not entry.name.startswith(".") and entry.is_file():
                        try:
                            found.append(((*parts, entry.name), entry.stat()))
                        except OSError:  # gone since listed
                            continue
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
    found.sort(key=lambda item: item[0])  # the order of sorted Paths
    return found


FILE_MARK = "<file>"  # stands for the file's path in the text of a reason many files share
SKIPPED_REASONS, SKIPPED_EXAMPLES = 10, 5  # a report names at most this many reasons, and example files of each


def reason_template(path, reason: str) -> str:
    """``reason`` with ``path`` replaced by :data:`FILE_MARK`: one text for every file skipped for that reason."""
    return reason.replace(str(path), FILE_MARK)


def _by_reason(skipped: list[tuple[Path, str]], limit: int) -> list[tuple[str, list[tuple[Path, str]]]]:
    """Skipped files grouped by reason template, commonest first; past ``limit`` reasons, one group of the rest."""
    groups: dict[str, list[tuple[Path, str]]] = {}
    for path, reason in skipped:
        groups.setdefault(reason_template(path, reason), []).append((path, reason))
    ranked = sorted(groups.items(), key=lambda item: (-len(item[1]), item[0]))
    if len(ranked) > limit:
        rest = ranked[limit - 1:]
        ranked = ranked[:limit - 1] + [(f"{len(rest)} other reasons", [e for _, group in rest for e in group])]
    return ranked


def skipped_summary(skipped: list[tuple[Path, str]]) -> dict:
    """Unreadable files as a bounded record for reports: their count, the count per reason, a few files of each."""
    groups = _by_reason(skipped, SKIPPED_REASONS)
    return {"skipped_count": len(skipped),
            "skipped_reasons": [{"reason": reason, "count": len(group)} for reason, group in groups],
            "skipped": [{"path": str(path), "reason": text} for _, group in groups
                        for path, text in group[:SKIPPED_EXAMPLES]]}


def skipped_line(skipped: list[tuple[Path, str]], total: int, root: Path) -> str:
    """One log line: how many of ``total`` files under ``root`` were skipped, per reason, naming a few."""
    parts = []
    for reason, group in _by_reason(skipped, 3):
        names = ", ".join(_under(path, root) for path, _ in group[:3]) + (", ..." if len(group) > 3 else "")
        parts.append(f"{len(group)} x {reason} (e.g. {names})")
    return f"{len(skipped)} of {total} files under {root} skipped: {'; '.join(parts)}"


def _under(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.name


def check_every_class_readable(scan: FolderScan, readable: set[int], skipped: list) -> None:
    """A class folder whose files all failed to decode is as unusable as an empty one."""
    with_files = {label for _, label in scan.files}
    for label in sorted(with_files - readable):
        folder = scan.root / scan.class_names[label]
        count = sum(1 for path, _ in skipped if folder in path.parents)
        raise DataError(f"class folder {folder} has no readable images ({count} files skipped); "
                        f"add JPEG/PNG/BMP/GIF/WebP images to it or remove it")

