"""Training and the device runtime must turn the same file into the same pixels (JPEG: the same reader)."""

import numpy as np
import pytest

from edgecnn.data.decode import decode_rgb
from edgecnn.runtime.preprocess import read_image

PIL = pytest.importorskip("PIL.Image")


def runtime_rgb(path):
    return read_image(path)[..., ::-1]  # BGR -> RGB


def test_exif_rotated_jpeg_is_upright_in_both(tmp_path):
    from PIL import Image

    rgb = np.zeros((40, 80, 3), np.uint8)
    rgb[:, :40] = (250, 10, 10)  # left half red, right half black: orientation matters
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise when displayed
    path = tmp_path / "phone.jpg"
    Image.fromarray(rgb).save(path, quality=95, exif=exif)
    train, device = decode_rgb(path), runtime_rgb(path)
    assert train.shape == device.shape == (80, 40, 3)  # upright: portrait
    np.testing.assert_array_equal(train, device)  # training reads JPEG with the runtime's own reader
    assert train[5, 20, 0] > 200 and train[75, 20, 0] < 50  # red moved to the top


def test_transparent_png_is_composited_on_black_in_both(tmp_path):
    from PIL import Image

    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0] = 255  # red everywhere...
    rgba[:, :4, 3] = 255  # ...opaque on the left, fully transparent on the right
    rgba[:, 4:6, 3] = 128
    path = tmp_path / "logo.png"
    Image.fromarray(rgba, "RGBA").save(path)
    train, device = decode_rgb(path), runtime_rgb(path)
    np.testing.assert_array_equal(train, device)
    assert tuple(device[0, 0]) == (255, 0, 0) and tuple(device[0, 7]) == (0, 0, 0)


def test_cmyk_jpeg_gives_the_device_pixels(tmp_path):
    """Pillow and OpenCV convert CMYK JPEGs differently (off by one here): training must see the device's."""
    from PIL import Image

    rgb = (np.random.default_rng(0).random((48, 48, 3)) * 255).astype(np.uint8)
    path = tmp_path / "print.jpg"
    Image.fromarray(rgb).convert("CMYK").save(path, quality=95)
    np.testing.assert_array_equal(decode_rgb(path), runtime_rgb(path))
