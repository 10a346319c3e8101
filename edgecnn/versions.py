"""Installed package versions, read from package metadata without importing the packages."""

from __future__ import annotations

from typing import Iterable, Optional


def dist_version(*names: str) -> Optional[str]:
    """Version of the first installed distribution among ``names`` (e.g. tensorflow, tensorflow-cpu), else None."""
    from importlib import metadata

    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def package_versions(names: Iterable[str]) -> dict[str, str]:
    """``{name: version}`` for the installed ones among ``names``."""
    found = {}
    for name in names:
        version = dist_version(name)
        if version is not None:
            found[name] = version
    return found
