"""edgecnn collect pull, on the board (python3, standard library only; run by Ansible's script module).

pack DIR ARCHIVE STEM_RE IMAGE_SUFFIX SIDECAR_SUFFIX
    Put every complete frame of the collection DIR (a sidecar and its picture, stems matching STEM_RE) into the
    tar ARCHIVE (written whole, then renamed) with manifest.json: each stem and the sha256 of its two files.
    Frames removed meanwhile (evicted by the camera) are left out. Prints one JSON line: count, bytes, archive.
remove DIR ARCHIVE STEMS_JSON IMAGE_SUFFIX SIDECAR_SUFFIX
    Remove the frames whose stems the JSON file lists (those the controller verified), sidecar first, then the
    archive and the list. Prints one JSON line: removed.
Relative paths are under the login user's home. The controller passes the names (edgecnn/collect/store.py).
"""

import hashlib
import io
import json
import os
import re
import sys
import tarfile


def _home(path):
    return os.path.join(os.path.expanduser("~"), os.path.expanduser(path))


def _stems(folder, pattern, image, sidecar):
    try:
        names = set(os.listdir(folder))
    except FileNotFoundError:
        return []
    stems = [n[: -len(sidecar)] for n in names if n.endswith(sidecar) and not n.startswith(".")]
    return sorted(s for s in stems if re.match(pattern, s) and s + image in names)


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


def pack(folder, archive, pattern, image, sidecar):
    folder, archive = _home(folder), _home(archive)
    os.makedirs(os.path.dirname(archive), exist_ok=True)
    manifest, tmp = [], archive + ".partial"
    with tarfile.open(tmp, "w") as tar:
        for stem in _stems(folder, pattern, image, sidecar):
            meta, picture = _read(os.path.join(folder, stem + sidecar)), _read(os.path.join(folder, stem + image))
            if meta is None or picture is None:
                continue  # evicted since listed
            for name, data in ((stem + image, picture), (stem + sidecar, meta)):
                info = tarfile.TarInfo(name)
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
            manifest.append({"stem": stem, "image_sha256": hashlib.sha256(picture).hexdigest(),
                             "sidecar_sha256": hashlib.sha256(meta).hexdigest()})
        data = json.dumps(manifest).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size, info.mode = len(data), 0o644
        tar.addfile(info, io.BytesIO(data))
    os.replace(tmp, archive)
    return {"count": len(manifest), "bytes": os.path.getsize(archive), "archive": archive}


def remove(folder, archive, stems_file, image, sidecar):
    folder, archive, stems_file = _home(folder), _home(archive), _home(stems_file)
    with open(stems_file) as f:
        stems = json.load(f)
    removed = 0
    for stem in stems:
        if os.path.basename(stem) != stem:
            continue
        for suffix in (sidecar, image):  # sidecar first: the frame stops counting as complete
            try:
                os.unlink(os.path.join(folder, stem + suffix))
                removed += suffix == image
            except FileNotFoundError:
                pass
    for path in (archive, stems_file):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    return {"removed": removed}


if __name__ == "__main__":
    action, args = sys.argv[1], sys.argv[2:]
    print(json.dumps({"pack": pack, "remove": remove}[action](*args)))
