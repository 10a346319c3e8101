"""Issue 21, second hostile pass: the image cache, claimed output folders, sidecar cards, thread counts.

Each test is one case the pass found: stale cached pixels after ``touch -r``, a pixel slot per unreadable
file, two commands sharing one new ``--out``, a malformed card, ``--threads 100000``.
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

from edgecnn.data import open_folder

SIZE = 8


def _bmp(path, rgb) -> None:
    """A 16x16 BMP of one colour: the same number of bytes whatever the colour."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((16, 16, 3), rgb, np.uint8)).save(path, format="BMP")


# --- item 4: the cache fingerprint survives no same-size edit ----------------------------------------------------

def test_cache_serves_new_pixels_after_a_same_size_edit_whose_mtime_is_restored(tmp_path):
    for name in ("a", "b"):
        _bmp(tmp_path / "data" / name / "x.bmp", (200, 0, 0))
    target = tmp_path / "data" / "a" / "x.bmp"
    assert open_folder(tmp_path / "data", SIZE).read()[0, 0, 0].tolist() == [200, 0, 0]
    before = os.stat(target)
    _bmp(target, (0, 0, 200))  # same size, new pixels
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))  # touch -r: the old modification time back
    after = os.stat(target)
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    assert open_folder(tmp_path / "data", SIZE).read()[0, 0, 0].tolist() == [0, 0, 200]
