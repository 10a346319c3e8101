"""Image folders: decoding by content, messy folders, clear errors."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgecnn.data import load_folder
from edgecnn.data.decode import decode_rgb
from edgecnn.errors import DataError

SIZE = 16


def _rgb(seed: int, size: int = 20) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def make_messy_folder(root, with_empty_class: bool = True):
    """Two classes of valid images in many encodings, plus junk, plus (optionally) an empty class."""
    cats, dogs = root / "cats", root / "dogs"
    cats.mkdir(parents=True)
    dogs.mkdir()
    Image.fromarray(_rgb(0)).save(cats / "photo.jpg")
    Image.fromarray(_rgb(1)).save(cats / "png_named.jpg", format="PNG")  # PNG content, .jpg name
    Image.fromarray(np.dstack([_rgb(2), np.full((20, 20), 128, np.uint8)]), "RGBA").save(cats / "rgba.png")
    Image.fromarray(_rgb(3)[..., 0], "L").save(cats / "gray.png")
    Image.fromarray((np.arange(400, dtype=np.uint16).reshape(20, 20) * 160)).save(cats / "deep16.png")
    Image.fromarray(_rgb(4)).convert("P", palette=Image.Palette.ADAPTIVE).save(dogs / "palette.gif")
    Image.fromarray(_rgb(5)).save(dogs / "image.bmp")
    Image.fromarray(_rgb(6)).save(dogs / "image.webp")
    Image.fromarray(_rgb(7)).save(dogs / "ok.jpg")
    buf = io.BytesIO()
    Image.fromarray(_rgb(8, 64)).save(buf, format="JPEG")
    (dogs / "corrupt.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 3])  # truncated JPEG
    (dogs / "notes.txt").write_text("not an image")
    if with_empty_class:
        (root / "empty_class").mkdir()
    return root


def test_empty_class_folder_is_a_clear_error(tmp_path):
    root = make_messy_folder(tmp_path / "data")
    with pytest.raises(DataError, match=r"class folder .*empty_class is empty; add images to it or remove it"):
        load_folder(root, SIZE)


def test_messy_folder_loads_and_lists_skipped_files(tmp_path):
    root = make_messy_folder(tmp_path / "data", with_empty_class=False)
    data = load_folder(root, SIZE)
    assert data.class_names == ["cats", "dogs"]
    assert data.images.shape == (9, SIZE, SIZE, 3) and data.images.dtype == np.uint8
    assert np.bincount(data.labels).tolist() == [5, 4]
    assert sorted(p.name for p, _ in data.skipped) == ["corrupt.jpg", "notes.txt"]
    assert all("cannot decode" in reason for _, reason in data.skipped)
    reasons = {path.name: reason for path, reason in data.skipped}
    assert reasons["notes.txt"].endswith("not an image format Pillow can read (or the file is corrupt)")


def test_decoding_converts_every_mode_to_rgb(tmp_path):
    root = make_messy_folder(tmp_path / "data", with_empty_class=False)
    cats = root / "cats"
    gray = decode_rgb(cats / "gray.png")
    assert gray.shape == (20, 20, 3) and np.array_equal(gray[..., 0], gray[..., 2])
    np.testing.assert_array_equal(decode_rgb(cats / "png_named.jpg"), _rgb(1))  # lossless PNG despite the name
    rgba = decode_rgb(cats / "rgba.png")  # alpha 128 composited on black: about half
    assert np.abs(rgba.astype(int) - (_rgb(2).astype(int) * 128 // 255)).max() <= 1
    deep = decode_rgb(cats / "deep16.png")  # 16-bit scaled to 8-bit, not clipped
    assert deep.dtype == np.uint8 and deep.max() == round(399 * 160 / 65535 * 255) and deep.min() == 0
    assert decode_rgb(root / "dogs" / "palette.gif").shape == (20, 20, 3)


def test_animated_gif_gives_its_first_frame(tmp_path):
    frames = [Image.fromarray(np.full((8, 8, 3), v, np.uint8)).convert("P") for v in (10, 240)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    assert decode_rgb(tmp_path / "anim.gif").mean() < 50


def test_exif_orientation_is_applied(tmp_path):
    image = Image.fromarray(np.zeros((10, 30, 3), np.uint8))  # wide
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° when displayed
    image.save(tmp_path / "rotated.jpg", exif=exif)
    assert decode_rgb(tmp_path / "rotated.jpg").shape[:2] == (30, 10)


def test_one_class_is_an_error(tmp_path):
    (tmp_path / "only").mkdir()
    Image.fromarray(_rgb(0)).save(tmp_path / "only" / "a.png")
    with pytest.raises(DataError, match="only one class folder.*at least two classes"):
        load_folder(tmp_path, SIZE)


def test_no_class_folders_and_no_images_are_errors(tmp_path):
    with pytest.raises(DataError, match="no class folders"):
        load_folder(tmp_path, SIZE)
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "readme.txt").write_text("hello")
    with pytest.raises(DataError, match="no readable images"):
        load_folder(tmp_path, SIZE)


def test_class_with_only_unreadable_files_is_an_error(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    Image.fromarray(_rgb(0)).save(tmp_path / "a" / "x.png")
    (tmp_path / "b" / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    with pytest.raises(DataError, match=r"class folder .*b has no readable images \(1 files skipped\)"):
        load_folder(tmp_path, SIZE)


def test_missing_folder_is_an_error(tmp_path):
    with pytest.raises(DataError, match="data folder not found"):
        load_folder(tmp_path / "nope", SIZE)


def test_real_flowers_subset_loads(flowers_dir):
    data = load_folder(flowers_dir / "val", 32, limit_per_class=2)
    assert data.images.shape == (10, 32, 32, 3) and not data.skipped


def _images_in(folder, count: int = 1):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        Image.fromarray(_rgb(i)).save(folder / f"{i}.png")


def test_split_roots_are_found_and_class_roots_left_alone(tmp_path):
    from edgecnn.data.roots import find_splits

    for split in ("train", "valid", "test"):
        for name in ("cat", "dog"):
            _images_in(tmp_path / "split" / split / name)
    found = find_splits(tmp_path / "split")
    assert (found.train.name, found.val.name, found.test.name) == ("train", "valid", "test")
    # A class-per-folder root, even one with a class called "train" (its images lie in it directly).
    for name in ("train", "car", "bus"):
        _images_in(tmp_path / "vehicles" / name)
    assert find_splits(tmp_path / "vehicles") is None
    assert find_splits(tmp_path / "missing") is None


def test_a_root_mixing_split_and_class_folders_is_an_error(tmp_path):
    from edgecnn.data.roots import find_splits

    for path in ("train/cat", "train/dog", "val/cat", "val/dog", "cat", "dog"):
        _images_in(tmp_path / "mixed" / path)
    with pytest.raises(DataError, match=r"mixes split folders \(train, val\) with class folders \(cat, dog\)"):
        find_splits(tmp_path / "mixed")
    for path in ("train/cat", "val/cat", "validation/cat"):
        _images_in(tmp_path / "twice" / path)
    with pytest.raises(DataError, match="2 validation folders"):
        find_splits(tmp_path / "twice")


# --- the on-disk cache (edgecnn/data/cache.py) ----------------------------------------------------------------

def _folder_of(tmp_path, per_class: int, seed: int = 0):
    root = tmp_path / "many"
    for c, name in enumerate(("a", "b", "c")):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(_rgb(seed + 100 * c + i, 24)).save(root / name / f"{i:03d}.png")
    return root


def _expected(paths, size=SIZE):
    from edgecnn.data.decode import resize

    return np.stack([resize(decode_rgb(p), (size, size)) for p in paths])


def test_cache_holds_the_decoded_pixels_and_a_second_open_decodes_nothing(tmp_path, monkeypatch):
    from edgecnn.data import cache, open_folder

    root = make_messy_folder(tmp_path / "data", with_empty_class=False)
    first = open_folder(root, SIZE)
    np.testing.assert_array_equal(first.read(), _expected(first.paths))  # the decoding rules, unchanged
    assert sorted(p.name for p, _ in first.skipped) == ["corrupt.jpg", "notes.txt"]

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again")

    monkeypatch.setattr(cache, "_decode_all", no_decoding)
    again = open_folder(root, SIZE)
    assert again.cache == first.cache and [p.name for p, _ in again.skipped] == [p.name for p, _ in first.skipped]
    np.testing.assert_array_equal(again.read([3, 0, 3]), first.read()[[3, 0, 3]])


def test_cache_is_rebuilt_when_a_file_changes_or_the_size_differs(tmp_path):
    import os

    from edgecnn.data import open_folder

    root = _folder_of(tmp_path, 3)
    before = open_folder(root, SIZE)
    target = root / "b" / "001.png"
    Image.fromarray(np.full((24, 24, 3), 7, np.uint8)).save(target)
    os.utime(target, ns=(0, 10**9))  # a new modification time, whatever the clock
    after = open_folder(root, SIZE)
    assert after.cache == before.cache  # one entry per folder and size: the new version replaced the old
    np.testing.assert_array_equal(after.read([after.paths.index(target)])[0], np.full((SIZE, SIZE, 3), 7))
    other = open_folder(root, SIZE * 2)
    assert other.cache != after.cache and other.read().shape == (9, 2 * SIZE, 2 * SIZE, 3)


def test_worker_processes_decode_the_same_pixels(tmp_path, monkeypatch):
    from edgecnn.data import cache, open_folder

    root = _folder_of(tmp_path, 12)
    monkeypatch.setattr(cache, "MIN_PARALLEL", 8)
    monkeypatch.setattr(cache, "CHUNK", 5)
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "parallel"))
    parallel = open_folder(root, SIZE, workers=2)
    index = json.loads((Path(parallel.cache) / cache.INDEX_FILE).read_text())
    assert index["workers"] == 2
    np.testing.assert_array_equal(parallel.read(), _expected(parallel.paths))


def _snapshot(root: Path) -> list:
    return sorted((p.relative_to(root).as_posix(), p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*"))


def test_cache_goes_where_the_variable_says_and_the_data_folder_is_left_alone(tmp_path, monkeypatch):
    from edgecnn.data import cache, open_folder

    root = make_messy_folder(tmp_path / "data", with_empty_class=False)
    before = _snapshot(root)
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "elsewhere"))
    data = open_folder(root, SIZE)
    assert Path(data.cache).parent == tmp_path / "elsewhere" / "images" and len(data.skipped) == 2
    assert _snapshot(root) == before  # not a file added, changed or touched (folders' mtimes included)


CONCURRENT_OPEN = """
import hashlib, logging, sys, time
from edgecnn.data import cache, open_folder
logging.basicConfig(level=logging.INFO, format="%(message)s")
build = cache._build
def slow_build(*args, **kwargs):  # holds the lock long enough for the other process to arrive
    time.sleep(1.0)
    return build(*args, **kwargs)
cache._build = slow_build
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))  # both processes look for the entry at once
print(hashlib.sha256(open_folder(sys.argv[1], 16, workers=1).read().tobytes()).hexdigest())
"""


def test_two_processes_opening_a_new_folder_at_once_build_it_once(tmp_path):
    import hashlib
    import os
    import subprocess
    import sys
    import time

    root = _folder_of(tmp_path, 4)
    env = {**os.environ, "EDGECNN_CACHE_DIR": str(tmp_path / "shared-cache")}
    start = str(time.time() + 3.0)
    children = [subprocess.Popen([sys.executable, "-c", CONCURRENT_OPEN, str(root), start], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [child.communicate(timeout=120) for child in children]
    assert [child.returncode for child in children] == [0, 0], outputs
    from edgecnn.data import open_folder

    paths = open_folder(root, 16).paths  # (this test's own cache folder)
    expected = hashlib.sha256(_expected(paths, 16).tobytes()).hexdigest()
    assert [out.strip() for out, _ in outputs] == [expected, expected]
    assert sum("data: decoded" in err for _, err in outputs) == 1  # one built it, the other waited and reused it
    entry = next((tmp_path / "shared-cache" / "images").iterdir())
    assert sorted(p.name.split("-")[0] for p in entry.iterdir()) == [".lock", "index.json", "pixels"]


def test_validation_folder_takes_the_training_class_order(tmp_path):
    from edgecnn.data import open_folder

    root = _folder_of(tmp_path, 2)
    data = open_folder(root, SIZE, class_names=["c", "a", "b"])
    assert data.class_names == ["c", "a", "b"] and data.labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert [p.parent.name for p in data.paths] == ["c", "c", "a", "a", "b", "b"]
    np.testing.assert_array_equal(data.read(), _expected(data.paths))


def test_record_file_reads_any_order_with_repeats(tmp_path):
    from edgecnn.data.records import RecordFile

    values = np.arange(5 * 6, dtype=np.float16).reshape(5, 2, 3)
    store = RecordFile.create(tmp_path / "r.f16", 5, (2, 3), np.float16)
    store.write(0, values[:2])
    store.write(2, values[2:])
    reopened = RecordFile(tmp_path / "r.f16", (2, 3), np.float16)
    assert len(reopened) == 5
    np.testing.assert_array_equal(reopened.read([4, 0, 1, 2, 2]), values[[4, 0, 1, 2, 2]])
    with pytest.raises(IndexError):
        reopened.read([5])


def test_decode_files_stops_at_the_limit_and_skips_unreadable(tmp_path):
    from edgecnn.data import decode_files

    root = make_messy_folder(tmp_path / "data", with_empty_class=False)
    paths = [root / "dogs" / "notes.txt", root / "dogs" / "ok.jpg", root / "cats" / "photo.jpg",
             root / "dogs" / "image.bmp"]
    images, kept, skipped = decode_files(paths, SIZE, limit=2)
    assert kept == [1, 2] and [p.name for p, _ in skipped] == ["notes.txt"]
    np.testing.assert_array_equal(images, _expected(paths[1:3]))


def test_progress_bar_draws_only_when_asked_or_on_a_terminal(monkeypatch, capsys):
    from edgecnn import progress

    monkeypatch.delenv(progress.PROGRESS_ENV, raising=False)
    with progress.live(4, "decoding x") as bar:  # stderr is captured: not a terminal
        bar.advance(4)
    assert capsys.readouterr().err == ""
    pytest.importorskip("rich", reason="bars need rich, which a device install (the device extra) lacks")
    monkeypatch.setenv(progress.PROGRESS_ENV, "1")
    with progress.live(4, "decoding y", "images") as bar:
        bar.advance(2)
        bar.describe("decoding y, halfway")
        bar.advance(2)
    err = capsys.readouterr().err
    assert "decoding y" in err and "4/4" in err and "images/s" in err
