"""tools/docs_pictures.py: the preview screenshot is a real one of `edgecnn camera --serve`, re-run here on a small
real model (the Coral MobileNetV2 int8 classifier) and a folder of one photo (issue 22 item 3)."""

import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import CORAL_MODEL, REPO, shared_path

sys.path.insert(0, str(REPO / "tools"))

import docs_pictures  # noqa: E402

pytestmark = pytest.mark.train  # Pillow reads the screenshot (the train extra); docs are made where it is installed


@pytest.fixture(scope="module")
def shot(tmp_path_factory):
    if docs_pictures.chromium() is None:
        pytest.skip("chromium is not installed (Debian: apt-get install -y chromium)")
    coral = shared_path("data", "coral")
    work = tmp_path_factory.mktemp("preview")
    source = docs_pictures.photo_folder(coral / "sunflower.bmp", work / "source", copies=60)
    return docs_pictures.preview_screenshot(coral / CORAL_MODEL, source,
                                            work / "preview.png",
                                            ("--labels", str(coral / "imagenet_labels.txt"), "--fps", "2"))


def test_the_screenshot_is_a_real_picture_of_the_page(shot):
    from PIL import Image

    with Image.open(shot.png) as image:
        assert image.size == docs_pictures.WINDOW
        pixels = np.asarray(image.convert("RGB"), np.float32)
    background = np.array([0x11, 0x11, 0x11], np.float32)  # the page's body colour
    page = np.abs(pixels - background).max(axis=2) < 8
    assert 0.3 < page.mean() < 0.95  # the dark page, and something drawn on it
    assert pixels.std() > 20  # not blank: the photo and the text


def test_a_screenshot_is_kept_small_for_the_repository(shot, tmp_path):
    import shutil

    from PIL import Image

    small = docs_pictures.shrink_png(Path(shutil.copyfile(shot.png, tmp_path / "small.png")))
    assert small.stat().st_size <= docs_pictures.MAX_PNG_BYTES
    with Image.open(small) as image, Image.open(shot.png) as original:
        assert image.size == original.size
        diff = np.abs(np.asarray(image.convert("RGB"), np.int16) - np.asarray(original.convert("RGB"), np.int16))
    assert diff.mean() < 4  # the same picture, in 256 colours


def test_the_page_served_shows_the_label_the_camera_predicted(shot):
    top = shot.prediction["top"][0]
    assert top["label"] == "daisy" and top["score"] > 0.9, top  # ImageNet has no sunflower: its nearest class
    assert f"{top['label']} {top['score'] * 100:.1f}%" in shot.page  # the top-5 list Chromium rendered
    assert '<img src="/stream.mjpg"' in shot.page and "frame " in shot.page
    assert "summary: " in shot.camera_log  # the camera ended cleanly on Ctrl-C and summed up
