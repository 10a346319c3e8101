"""Do edgecnn's TFLite exports work in MediaPipe Tasks' ImageClassifier, with the same answers?

MediaPipe reads only the standard TFLite metadata edgecnn writes (NormalizationOptions, colour
space, the zipped label file), so agreeing with edgecnn's runtime image by image shows that the
metadata states the model's input contract and labels right.

mediapipe 1.2.x needs opencv-contrib-python, which clashes with edgecnn's opencv-python-headless
(both install the ``cv2`` package), and its image classifier does not use OpenCV. So mediapipe is
installed without its dependencies into a folder of its own (cached outside the repository,
``$EDGECNN_MEDIAPIPE_DIR`` or ``~/.cache/edgecnn-tests/mediapipe-1.2``) and runs in a subprocess
with that folder on ``PYTHONPATH``; numpy, flatbuffers and absl-py come from the dev environment.

    .venv/bin/python tools/mediapipe_check.py EXPORT/model_fp32.tflite EXPORT/model_int8.tflite \\
        --data ../shared/data/flowers5/val [--mediapipe-decodes]

Both sides classify the same pixels: every image decoded by edgecnn (OpenCV) and resized to the
model's input size once. ``--mediapipe-decodes`` also lets MediaPipe decode each file itself
(its JPEG decoder differs from OpenCV's by about 0.1 grey level on average).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

MEDIAPIPE_REQUIREMENT = "mediapipe>=1.2,<1.3"
INSTALL_TIMEOUT_S = 900


def mediapipe_dir() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "edgecnn-tests" / "mediapipe-1.2"
    return Path(os.environ.get("EDGECNN_MEDIAPIPE_DIR", default))


def _env(target: Path) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(target), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.setdefault("GLOG_minloglevel", "2")
    return env


def _importable(target: Path) -> str | None:
    """None when MediaPipe's image classifier imports from ``target``, else the first error line."""
    probe = "from mediapipe.tasks.python import vision; vision.ImageClassifier"
    proc = subprocess.run([sys.executable, "-c", probe], env=_env(target), capture_output=True, text=True,
                          timeout=300)
    if proc.returncode == 0:
        return None
    lines = proc.stderr.strip().splitlines()
    return lines[-1] if lines else f"exit code {proc.returncode}"


def ensure_mediapipe() -> tuple[Path | None, str]:
    """(folder with mediapipe, "") when it can run here; (None, why not) otherwise. Installs on first use."""
    target = mediapipe_dir()
    if (target / "mediapipe").is_dir() and _importable(target) is None:
        return target, ""
    staging = target.with_name(target.name + ".partial")
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--upgrade", "--target", str(staging),
           MEDIAPIPE_REQUIREMENT]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return None, f"pip install {MEDIAPIPE_REQUIREMENT} took over {INSTALL_TIMEOUT_S} s"
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["failed"])[-1]
        return None, f"pip install {MEDIAPIPE_REQUIREMENT} failed: {last}"
    problem = _importable(staging)
    if problem is not None:
        return None, f"{MEDIAPIPE_REQUIREMENT} installed but does not import here: {problem}"
    if target.exists():
        import shutil

        shutil.rmtree(target)
    staging.rename(target)
    return target, ""


def mediapipe_classify(target: Path, model: Path, source: Path) -> list[list]:
    """MediaPipe's top-1 ``[index, category_name, score]`` per image of ``source``
    (an .npy of RGB images, or a text file of image paths, one a line)."""
    cmd = [sys.executable, __file__, "--worker", str(model), str(source)]
    proc = subprocess.run(cmd, env=_env(target), capture_output=True, text=True, timeout=1800)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("[")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
        raise RuntimeError(f"MediaPipe failed on {model.name}: {tail}")
    return json.loads(lines[-1])


def _worker(model: str, source: str) -> None:
    import mediapipe as mp
    import numpy as np
    from mediapipe.tasks import python as mp_python
    from mediapipe.tasks.python import vision

    options = vision.ImageClassifierOptions(base_options=mp_python.BaseOptions(model_asset_path=model),
                                            max_results=1)
    if source.endswith(".npy"):
        images = [mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(a)) for a in np.load(source)]
    else:
        images = [mp.Image.create_from_file(p) for p in Path(source).read_text().splitlines() if p]
    out = []
    with vision.ImageClassifier.create_from_options(options) as classifier:
        for image in images:
            best = classifier.classify(image).classifications[0].categories[0]
            out.append([best.index, best.category_name, round(float(best.score), 6)])
    print(json.dumps(out))


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def load_images(paths: list[Path], size: tuple[int, int]):
    """RGB uint8 images decoded by edgecnn and resized to ``size`` (h, w) with INTER_LINEAR, as one array."""
    import cv2
    import numpy as np

    from edgecnn.runtime.preprocess import read_image

    out = []
    for path in paths:
        image = read_image(path)[..., ::-1]
        if image.shape[:2] != size:
            image = cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
        out.append(np.ascontiguousarray(image))
    return np.stack(out)


def compare(target: Path, model: Path, paths: list[Path], mediapipe_decodes: bool = False) -> dict:
    """Top-1 agreement, label names and score differences between MediaPipe and edgecnn on ``paths``."""
    import numpy as np

    from edgecnn.runtime import Classifier

    clf = Classifier(model)
    images = load_images(paths, (clf.input_spec.height, clf.input_spec.width))
    ours = [clf.predict(image, top_k=1, order="RGB") for image in images]
    result = {"model": model.name, "images": len(paths)}
    with tempfile.TemporaryDirectory(prefix="edgecnn-mediapipe-") as tmp:
        npy = Path(tmp) / "images.npy"
        np.save(npy, images)
        runs = {"same_pixels": npy}
        if mediapipe_decodes:
            listing = Path(tmp) / "files.txt"
            listing.write_text("".join(f"{p}\n" for p in paths))
            runs["mediapipe_decodes"] = listing
        for name, source in runs.items():
            theirs = mediapipe_classify(target, model, source)
            if name == "mediapipe_decodes":  # edgecnn predict reads the files itself
                ours_now = [clf.predict(p, top_k=1) for p in paths]
            else:
                ours_now = ours
            agree = sum(o.index == t[0] for o, t in zip(ours_now, theirs))
            named = sum(t[1] == clf.labels[t[0]] for t in theirs)
            diffs = [abs(o.score - t[2]) for o, t in zip(ours_now, theirs) if o.index == t[0]]
            low, high = wilson(agree, len(theirs))
            result[name] = {"agreement": agree / len(theirs), "interval95": [round(low, 4), round(high, 4)],
                            "named_like_edgecnn": named / len(theirs),
                            "mean_abs_score_diff": float(np.mean(diffs)) if diffs else None}
    clf.close()
    return result


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"]:
        _worker(argv[1], argv[2])
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", type=Path, help=".tflite files exported by edgecnn")
    parser.add_argument("--data", required=True, type=Path, help="folder of images (searched recursively)")
    parser.add_argument("--mediapipe-decodes", action="store_true",
                        help="also let MediaPipe decode the files itself")
    args = parser.parse_args(argv)
    from edgecnn.runtime.inputs import expand_inputs

    paths = [Path(item.path) for item in expand_inputs([str(args.data)]) if not item.error]
    target, why = ensure_mediapipe()
    if target is None:
        print(f"error: {why}", file=sys.stderr)
        return 2
    for model in args.models:
        print(json.dumps(compare(target, model, paths, args.mediapipe_decodes)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
