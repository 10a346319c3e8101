"""Image folders: decoding by content, messy folders, clear errors."""

from __future__ import annotations

import io

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
