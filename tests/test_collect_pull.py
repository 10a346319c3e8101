"""edgecnn collect pull over real SSH (a throwaway sshd at 127.0.0.1, as tests/test_deploy.py starts it), and
training on the base images plus the pulled folder (edgecnn train --data A --data B)."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_deploy import _free_port, _make_user, boards, exports, start_sshd  # noqa: F401 (fixtures)

from edgecnn.collect import store
from edgecnn.collect.sorted_folder import INDEX_FILE, SIDECARS, class_folder, host_name, store_archive
from edgecnn.deploy import COLLECT_DIR
from edgecnn.errors import OutputError

CLASSES = ["blue", "green", "red"]
BGR = {"blue": (200, 30, 30), "green": (30, 200, 30), "red": (30, 30, 200)}


def edgecnn(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "edgecnn", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def write_collection(folder: Path, predicted: list[str], t0: float = 1_765_000_000.0) -> list[str]:
    """Frames kept by the camera's writer (store.CollectionStore): one per predicted label, 64x48 colour noise."""
    rng = np.random.default_rng(len(predicted))
    writer = store.CollectionStore(folder, budget_bytes=50_000_000)
    stems = []
    for i, label in enumerate(predicted):
        frame = np.clip(np.array(BGR[label]) + rng.normal(0, 20, (48, 64, 3)), 0, 255).astype(np.uint8)
        meta = {store.TIME: store.iso_time(t0 + i), store.HOST: "board", store.RELEASE: "abc-tflite-int8",
                store.MODEL: "model_int8.tflite", store.PREDICTED: label, store.SCORE: 0.4,
                store.TOP: [{"label": label, "score": 0.4}], store.RULE: store.RULE_LOW_SCORE,
                store.NOVELTY: None, store.FRAME: i, store.SOURCE: "test", store.WIDTH: 64, store.HEIGHT: 48}
        stems.append(writer.save(frame, meta, t0 + i))
    return stems


# ------------------------------------------------------------------ fast: the sorted folder's pieces
def test_names_are_safe_for_the_file_system():
    assert host_name("pi@cam1.local:2222") == "pi_cam1.local_2222"
    assert class_folder("daisy") == "daisy" and class_folder("a/b") == "a_b"
    assert class_folder("..") == "unknown" and class_folder(None) == "unknown" and class_folder(".hidden") == "hidden"


def _pack(collection: Path, archive: Path) -> dict:
    from edgecnn.deploy.ansible import PLAYBOOKS

    out = subprocess.run([sys.executable, str(PLAYBOOKS / "files" / "collect_board.py"), "pack", str(collection),
                          str(archive), store.STEM_RE.pattern, store.IMAGE_SUFFIX, store.SIDECAR_SUFFIX],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_only_frames_matching_the_manifest_are_stored(tmp_path):
    collection = tmp_path / "board"
    stems = write_collection(collection, ["red", "green", "blue"])
    (collection / "20261206-000000-000009.jpg").write_bytes(b"no sidecar: incomplete, not packed")
    packed = _pack(collection, tmp_path / "a.tar")
    assert packed["count"] == 3
    import tarfile

    with tarfile.open(tmp_path / "a.tar") as tar:  # a picture damaged after packing: its checksum fails
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    members[stems[0] + ".jpg"] = members[stems[0] + ".jpg"][:-10]
    with tarfile.open(tmp_path / "b.tar", "w") as tar:
        import io

        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    out = tmp_path / "out"
    result = store_archive(tmp_path / "b.tar", out, "pi@cam:22")
    assert sorted(result.verified) == sorted(stems[1:]) and result.corrupt == 1 and result.new == 2
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.jpg")) == [
        f"blue/pi_cam_22-{stems[2]}.jpg", f"green/pi_cam_22-{stems[1]}.jpg"]
    assert not (tmp_path / "b.tar").exists()
    (tmp_path / "c.tar").write_bytes(b"not a tar")
    with pytest.raises(OutputError, match="unreadable"):
        store_archive(tmp_path / "c.tar", out, "h")
    with tarfile.open(tmp_path / "d.tar", "w"):
        pass
    with pytest.raises(OutputError, match="manifest.json"):
        store_archive(tmp_path / "d.tar", out, "h")


def test_a_frame_that_cannot_be_written_here_is_one_error_and_nothing_is_indexed(tmp_path):
    stems = write_collection(tmp_path / "board", ["red"])
    _pack(tmp_path / "board", tmp_path / "a.tar")
    out = tmp_path / "out"
    out.mkdir()
    (out / "red").write_text("a file where the class folder goes")
    with pytest.raises(OutputError, match="cannot write .*red"):
        store_archive(tmp_path / "a.tar", out, "h")
    assert not (out / INDEX_FILE).exists() and (tmp_path / "board" / f"{stems[0]}.jpg").is_file()


# ------------------------------------------------------------------ slow: real SSH, real Ansible
@pytest.fixture(scope="module")
def board(tmp_path_factory):
    """One SSH "board" (a throwaway user) on an sshd at 127.0.0.1."""
    if os.geteuid() != 0 or not Path("/usr/sbin/sshd").is_file() or not shutil.which("useradd"):
        pytest.skip("needs root and openssh-server (apt-get install openssh-server) for a throwaway sshd")
    pytest.importorskip("ansible_runner")
    tmp = tmp_path_factory.mktemp("ssh")
    for name in ("key", "hostkey"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp / name)], check=True)
    user = "edgecnn-collect-a"
    home = _make_user(user, (tmp / "key.pub").read_text())
    sshd, port, known = start_sshd(tmp, [user])
    yield {"host": f"{user}@127.0.0.1:{port}", "user": user, "home": home, "key": tmp / "key", "known_hosts": known}
    sshd.terminate()
    sshd.wait(timeout=10)
    subprocess.run(["pkill", "-u", user], capture_output=True)
    subprocess.run(["userdel", "-r", user], capture_output=True)


def _collect_on_board(board, predicted: list[str], t0: float) -> list[str]:
    folder = board["home"] / COLLECT_DIR
    stems = write_collection(folder, predicted, t0)
    subprocess.run(["chown", "-R", f"{board['user']}:{board['user']}", str(board["home"] / "edgecnn")], check=True)
    return stems


def pull(board, out: Path):
    return edgecnn("collect", "pull", board["host"], "--out", out, "--key", board["key"], "--known-hosts",
                   board["known_hosts"])


def _index(out: Path) -> list[dict]:
    with open(out / INDEX_FILE, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_pull_sorts_the_frames_and_removes_only_what_was_copied(board, tmp_path):
    stems = _collect_on_board(board, ["red", "red", "green", "blue", "red", "green"], 1_765_000_000.0)
    out = tmp_path / "field"
    first = pull(board, out)
    assert first.returncode == 0, first.stdout + first.stderr[-3000:]
    row = next(line for line in first.stdout.splitlines() if line.startswith(board["host"]))
    assert row.split()[1:] == ["pulled", "6", "6", "0", "6"], first.stdout
    name = host_name(board["host"])
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.jpg")) == sorted(
        f"{label}/{name}-{stem}.jpg" for label, stem in zip(["red", "red", "green", "blue", "red", "green"], stems))
    for stem in stems:  # the picture as the camera wrote it, and its sidecar beside the class folders
        jpg = next(out.rglob(f"{name}-{stem}.jpg"))
        assert jpg.read_bytes()[:2] == b"\xff\xd8"
        assert json.loads((out / SIDECARS / f"{name}-{stem}.json").read_text())[store.FRAME] == stems.index(stem)
    rows = _index(out)
    assert [r["file"].split("/")[0] for r in rows] == ["red", "red", "green", "blue", "red", "green"]
    assert {r["host"] for r in rows} == {board["host"]} and {r["rule"] for r in rows} == {"low-score"}
    board_dir = board["home"] / COLLECT_DIR
    assert not list(board_dir.iterdir())  # removed from the board once stored here (and the archive too)
    assert not (board["home"] / "edgecnn" / "incoming" / "collect-pull.tar").exists()

    # relabel one frame by moving it; new frames arrive; a re-run adds only those
    moved = next(out.rglob(f"{name}-{stems[0]}.jpg"))
    moved.rename(out / "blue" / moved.name)
    later = _collect_on_board(board, ["blue", "green"], 1_765_100_000.0)
    second = pull(board, out)
    assert second.returncode == 0, second.stderr[-3000:]
    assert len(list(out.rglob("*.jpg"))) == 8 and len(_index(out)) == 8
    assert (out / "blue" / moved.name).is_file() and not (out / "red" / moved.name).exists()
    assert {f"{name}-{s}.jpg" for s in later} <= {p.name for p in out.rglob("*.jpg")}

    # nothing new: idempotent
    third = pull(board, out)
    assert third.returncode == 0 and len(list(out.rglob("*.jpg"))) == 8 and len(_index(out)) == 8
    row = next(line for line in third.stdout.splitlines() if line.startswith(board["host"]))
    assert row.split()[1:] == ["pulled", "0", "0", "0", "0"], third.stdout


@pytest.mark.slow
def test_an_interrupted_pull_loses_nothing(board, tmp_path):
    """Frames already stored here but still on the board (a pull cut off before the removal) are not stored twice,
    and are removed from the board by the next pull."""
    stems = _collect_on_board(board, ["green", "red"], 1_765_200_000.0)
    board_dir = board["home"] / COLLECT_DIR
    keep = tmp_path / "kept"
    shutil.copytree(board_dir, keep)
    out = tmp_path / "field"
    assert pull(board, out).returncode == 0
    for f in keep.iterdir():  # as if the removal had never run
        shutil.copy2(f, board_dir / f.name)
    subprocess.run(["chown", "-R", f"{board['user']}:{board['user']}", str(board_dir)], check=True)
    again = pull(board, out)
    assert again.returncode == 0, again.stderr[-3000:]
    row = next(line for line in again.stdout.splitlines() if line.startswith(board["host"]))
    assert row.split()[1:] == ["pulled", "2", "0", "2", "2"], again.stdout
    assert len(list(out.rglob("*.jpg"))) == 2 and len(_index(out)) == 2 and not list(board_dir.iterdir())
    assert {p.name for p in out.rglob("*.jpg")} == {f"{host_name(board['host'])}-{s}.jpg" for s in stems}


@pytest.mark.slow
def test_an_unreachable_board_is_one_error_line_and_nothing_is_created(tmp_path):
    pytest.importorskip("ansible_runner")
    out = tmp_path / "field"
    result = edgecnn("collect", "pull", f"pi@127.0.0.1:{_free_port()}", "--out", out)
    assert result.returncode == 1 and " unreachable " in result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Connection refused" in errors[0], result.stderr
    assert not list(out.rglob("*.jpg"))


def test_bad_pull_arguments_are_one_line_errors(tmp_path):
    (tmp_path / "file").write_text("x")
    for args, expected in ((("--out", tmp_path / "o"), "no host"), (("pi@", "--out", tmp_path / "o"), "expected user@"),
                           (("pi@h", "--out", tmp_path / "file"), "cannot create a folder there"),
                           (("pi@h",), "required: --out")):
        result = edgecnn("collect", "pull", *args)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("error:"), result.stderr
        assert expected in lines[0]
    assert not (tmp_path / "o").exists()


def test_the_pull_playbooks_are_valid_ansible_and_packaged():
    pytest.importorskip("ansible_runner")
    import tomllib

    from edgecnn.deploy.ansible import PLAYBOOKS

    bindir = Path(sys.executable).parent
    for name in ("collect_pull.yml", "collect_remove.yml"):
        result = subprocess.run([str(bindir / "ansible-playbook"), "--syntax-check", "-i", "localhost,",
                                 str(PLAYBOOKS / name)], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr
    data = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    assert "playbook/files/*.py" in data["tool"]["setuptools"]["package-data"]["edgecnn.deploy"]


def test_deploy_collect_gives_the_service_the_boards_collection_folder():
    jinja2 = pytest.importorskip("jinja2")
    from edgecnn.deploy import job
    from edgecnn.deploy.ansible import PLAYBOOKS

    template = jinja2.Template((PLAYBOOKS / "templates" / "edgecnn-camera.service.j2").read_text())
    common = job._common_vars(job.Options(collect=True))
    text = template.render(pf={"user": "alice", "home": "/home/alice"}, edgecnn_root="/home/alice/edgecnn",
                           edgecnn_venv="/home/alice/edgecnn/venv", **common, **job.camera_vars(["--source", "0"], ""))
    assert ('ExecStart=/home/alice/edgecnn/venv/bin/edgecnn camera /home/alice/edgecnn/current --headless '
            f'--source 0 --collect "/home/alice/{COLLECT_DIR}"\n') in text
    plain = template.render(pf={"user": "alice", "home": "/home/alice"}, edgecnn_root="/r", edgecnn_venv="/v",
                            **job._common_vars(job.Options()), **job.camera_vars(["--source", "0"], ""))
    assert "--collect" not in plain
    result = edgecnn("deploy", "EXPORT", "pi@h", "--collect", "--camera-args", "--collect /tmp/x")
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and "pass --collect to deploy" in lines[0], result.stderr


@pytest.mark.slow
@pytest.mark.train
def test_train_on_the_base_and_the_pulled_folder_records_both(board, tmp_path):
    from test_train import make_colour_folder

    _collect_on_board(board, ["red", "blue", "red", "green", "blue"], 1_765_300_000.0)
    field = tmp_path / "field"
    assert pull(board, field).returncode == 0
    base = make_colour_folder(tmp_path / "base", per_class=5)
    run = tmp_path / "run"
    result = edgecnn("train", "--arch", "simple_cnn", "--data", base, "--data", field, "--img-size", 24, "--epochs", 1,
                     "--batch-size", 8, "--augment", "none", "--eager", "--out", run)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"+5 training images from {field.resolve()}" in result.stderr
    report = json.loads((run / "data_report.json").read_text())
    assert report["roots"][1] == {"path": str(field.resolve()), "role": "added to training", "images": 5,
                                  "per_class": [2, 1, 2], "collection": True}
    assert report.get("skipped_count", 0) == 0  # index.csv and .sidecars/ are not read as images
    assert json.loads((run / "config.json").read_text())["more_data"] == [str(field.resolve())]


def test_the_field_loop_guide_runs_the_loop_and_its_commands_parse(capsys):
    """docs/field-loop.md: deploy/camera with --collect, pull, train on two roots, export, compare, deploy; every
    `edgecnn ...` command in it parses with edgecnn's real argparse (parsed only)."""
    from test_readme import edgecnn_commands

    from edgecnn.cli import build_parser

    commands = edgecnn_commands(Path(__file__).resolve().parents[1] / "docs" / "field-loop.md")
    verbs = []
    for argv in commands:
        try:
            args = build_parser().parse_args(argv[1:])
        except SystemExit:
            pytest.fail(f"`{' '.join(argv)}` does not parse: {capsys.readouterr().err.strip()}")
        verbs.append(argv[1])
        if argv[1] in ("deploy", "camera"):
            assert args.collect, argv
        if argv[1] == "train":
            assert len(args.data) >= 2, argv
    steps = [v for i, v in enumerate(verbs) if i == 0 or v != verbs[i - 1]]
    assert steps == ["deploy", "camera", "collect", "train", "export", "benchmark", "evaluate", "deploy"], verbs


@pytest.mark.slow
@pytest.mark.train
def test_deploy_collect_then_pull_end_to_end(boards, exports, tmp_path):  # noqa: F811
    """edgecnn deploy --collect gives the board's camera its collection folder; the camera run there keeps frames;
    edgecnn collect pull brings them home sorted and empties the board's folder."""
    from test_deploy import deploy

    good, _ = exports
    result, host = deploy(boards, good, "--format", "tflite-int8", "--collect", "--camera-args",
                          "--collect-random 1 --collect-rate 600/min")
    assert result.returncode == 0, result.stderr[-3000:]
    home, user = boards["homes"]["good"], boards["users"]["good"]
    collection = home / COLLECT_DIR
    assert collection.is_dir()
    assert f"--collect {collection}" in (home / "edgecnn" / "camera.args").read_text()  # this host has no systemd
    run = subprocess.run(["su", "-", user, "-c", 'cd ~/edgecnn && eval "set -- $(cat camera.args)" && '
                          'venv/bin/edgecnn camera current --headless "$@"'], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    kept = sorted(p.name for p in collection.glob("*.jpg"))
    assert kept, run.stderr[-2000:]
    out = tmp_path / "field"
    pulled = edgecnn("collect", "pull", host, "--out", out, "--key", boards["key"], "--known-hosts",
                     boards["known_hosts"])
    assert pulled.returncode == 0, pulled.stderr[-3000:]
    assert sorted(p.name[len(host_name(host)) + 1:] for p in out.glob("*/*.jpg")) == kept
    assert {p.parent.name for p in out.glob("*/*.jpg")} <= {"blue", "green", "red"}
    assert not list(collection.iterdir())
