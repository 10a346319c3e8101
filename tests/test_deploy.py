"""edgecnn deploy: host parsing, releases, quoting (fast); then end to end over real SSH to throwaway users on an
sshd at 127.0.0.1 (slow, root): deploy, a no-op re-deploy, a second release, --rollback, a broken model rolled back
by the health check, two hosts with one failing its preflight, a host key that does not match.

This x86 host has no systemd: the service step there checks the unit and runs its command once (the emulated Pi
in tools/arm64 runs it under a real systemd)."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from edgecnn.deploy import hosts, job, release
from edgecnn.errors import UsageError

CLASSES = ["blue", "green", "red"]
SIZE = 16


# ------------------------------------------------------------------ fast: the controller's pieces
def test_host_specs_parse_or_fail_in_one_line():
    assert hosts.parse_host("pi@raspberrypi.local") == hosts.Host("pi@raspberrypi.local", "raspberrypi.local",
                                                                  "pi", None)
    assert hosts.parse_host("me@127.0.0.1:2222").port == 2222
    assert hosts.parse_host("board7").user is None
    assert hosts.parse_host("pi@[::1]:22").host == "::1"
    for bad in ("pi@", "pi@host:0", "pi@host:99999", "pi@ho st", "a@b@c", ""):
        with pytest.raises(UsageError, match="expected user@host"):
            hosts.parse_host(bad)


def test_ssh_never_accepts_a_host_key_silently(tmp_path):
    inventory = hosts.write_inventory([hosts.parse_host("pi@h:2")], tmp_path / "inv.json", "/k", "/kh")
    entry = json.loads(inventory.read_text())["all"]["hosts"]["pi@h:2"]
    assert "StrictHostKeyChecking=yes" in entry["ansible_ssh_common_args"]
    assert "BatchMode=yes" in entry["ansible_ssh_common_args"]  # no password prompt can hang a deploy
    assert "UserKnownHostsFile=/kh" in entry["ansible_ssh_common_args"]
    assert (entry["ansible_user"], entry["ansible_port"], entry["ansible_ssh_private_key_file"]) == ("pi", 2, "/k")


def test_exec_start_arguments_are_quoted_for_systemd():
    assert job.systemd_quote("--source") == "--source"
    assert job.systemd_quote("rtsp://u:p@10.0.0.2/s") == "rtsp://u:p@10.0.0.2/s"
    assert job.systemd_quote("/media/my videos/a.mp4") == '"/media/my videos/a.mp4"'
    assert job.systemd_quote('say "hi" $HOME 100%') == '"say \\"hi\\" $$HOME 100%%"'


def write_export(folder: Path, verdicts: dict[str, str]) -> Path:
    folder.mkdir(parents=True)
    artifacts = []
    for fmt, verdict in verdicts.items():
        name = {"tflite-fp32": "model_fp32.tflite", "tflite-int8": "model_int8.tflite", "onnx": "model.onnx"}[fmt]
        (folder / name).write_bytes(fmt.encode())
        artifacts.append({"format": fmt, "path": name, "validation": {"verdict": verdict}})
    (folder / "export_report.json").write_text(json.dumps({"artifacts": artifacts}))
    (folder / "labels.txt").write_text("a\nb\n")
    return folder


def test_format_choice_follows_the_export_verdicts(tmp_path):
    arts = release.export_artifacts(write_export(tmp_path / "e", {"tflite-fp32": "pass", "tflite-int8": "fail",
                                                                  "onnx": "inconclusive"}))
    assert [a.format for a in release.choose(arts, "auto")] == ["tflite-fp32"]
    assert [a.format for a in release.choose(arts, "onnx")] == ["onnx"]  # an explicit choice wins ...
    with pytest.raises(UsageError, match="tflite-int8 failed its export check"):
        release.choose(arts, "tflite-int8")  # ... but never a failed one
    with pytest.raises(UsageError, match="has no tflite-fp16"):
        release.choose(arts, "tflite-fp16")
    none_passed = release.export_artifacts(write_export(tmp_path / "f", {"tflite-int8": "inconclusive"}))
    with pytest.raises(UsageError, match="no format of this export passed"):
        release.choose(none_passed, "auto")
    with pytest.raises(UsageError, match="no readable export_report.json"):
        release.export_artifacts(tmp_path)


def test_release_archive_and_name_depend_on_content_only(tmp_path):
    folder = write_export(tmp_path / "e", {"tflite-int8": "pass"})
    files = release.release_files(folder, release.export_artifacts(folder))
    assert [f.name for f in files] == ["model_int8.tflite", "labels.txt", "export_report.json"]
    first = release.write_tarball(files, tmp_path / "a.tar.gz")
    os.utime(files[0], (1, 1))
    assert release.write_tarball(files, tmp_path / "b.tar.gz") == first
    assert (tmp_path / "a.tar.gz").read_bytes() == (tmp_path / "b.tar.gz").read_bytes()
    files[0].write_bytes(b"other")
    assert release.write_tarball(files, tmp_path / "c.tar.gz") != first
    assert release.release_id(first, "auto") == f"{first[:12]}-auto"


def test_a_release_folder_names_its_model(tmp_path):
    folder = write_export(tmp_path / "r", {"tflite-int8": "pass"})
    assert release.resolve_model(folder) == folder  # no release.json: the path as it is
    (folder / "release.json").write_text(json.dumps({"model": "model_int8.tflite"}))
    assert release.resolve_model(folder) == folder / "model_int8.tflite"
    for bad in ({"model": "../x.tflite"}, {"model": "missing.tflite"}, {}, []):
        (folder / "release.json").write_text(json.dumps(bad))
        with pytest.raises(Exception, match="release"):
            release.resolve_model(folder)


def edgecnn(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "edgecnn", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def test_bad_deploy_arguments_are_one_line_errors(tmp_path):
    folder = write_export(tmp_path / "e", {"tflite-int8": "pass"})
    for args, expected in (((), "pass the export folder"), ((folder,), "no host"),
                           ((folder, "pi@"), "expected user@host"),
                           ((folder, "pi@h", "--camera-args=--no-such-option"), "unrecognized arguments"),
                           ((folder, "pi@h", "--serve", "nope"), "expected HOST:PORT"),
                           ((folder, "pi@h", "--format", "tflite-fp16"), "has no tflite-fp16")):
        result = edgecnn("deploy", *args)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("error:"), result.stderr
        assert expected in lines[0]


def test_the_playbooks_are_valid_ansible(tmp_path):
    pytest.importorskip("ansible_runner")
    from edgecnn.deploy.ansible import PLAYBOOKS

    bindir = Path(sys.executable).parent
    for name in ("deploy.yml", "rollback.yml", "remote_benchmark.yml"):
        result = subprocess.run([str(bindir / "ansible-playbook"), "--syntax-check", "-i", "localhost,",
                                 str(PLAYBOOKS / name)], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr


# ------------------------------------------------------------------ slow: real SSH, real Ansible
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _make_user(name: str, pubkey: str, fake_32_bit: bool = False) -> Path:
    if subprocess.run(["id", name], capture_output=True).returncode:
        subprocess.run(["useradd", "-m", "-s", "/bin/bash", name], check=True, capture_output=True)
    subprocess.run(["usermod", "-p", "*", name], check=True, capture_output=True)  # unlocked, no password
    home = Path(pwd.getpwnam(name).pw_dir)
    for leftover in ("edgecnn", ".cache"):
        shutil.rmtree(home / leftover, ignore_errors=True)
    (home / ".ssh").mkdir(exist_ok=True)
    (home / ".ssh" / "authorized_keys").write_text(pubkey)
    if fake_32_bit:  # a 32-bit Raspberry Pi OS as far as `getconf LONG_BIT` tells
        (home / "fakebin").mkdir(exist_ok=True)
        (home / "fakebin" / "getconf").write_text('#!/bin/sh\n[ "$1" = LONG_BIT ] && { echo 32; exit 0; }\n'
                                                  'exec /usr/bin/getconf "$@"\n')
        (home / "fakebin" / "getconf").chmod(0o755)
        bashrc = home / ".bashrc"
        bashrc.write_text('PATH="$HOME/fakebin:$PATH"\n' + (bashrc.read_text() if bashrc.exists() else ""))
    subprocess.run(["chown", "-R", f"{name}:{name}", str(home)], check=True)
    return home


def start_sshd(tmp: Path, users: list[str]):
    """A throwaway sshd on 127.0.0.1 with ``tmp``'s host key, letting in ``users`` only: (process, port,
    known_hosts file holding its key), once it accepts connections."""
    port = _free_port()
    config = tmp / "sshd_config"
    config.write_text(f"Port {port}\nListenAddress 127.0.0.1\nHostKey {tmp / 'hostkey'}\nPidFile {tmp / 'pid'}\n"
                      f"PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
                      f"AllowUsers {' '.join(users)}\n")
    Path("/run/sshd").mkdir(exist_ok=True)
    sshd = subprocess.Popen(["/usr/sbin/sshd", "-D", "-f", str(config), "-E", str(tmp / "sshd.log")])
    known = tmp / "known_hosts"
    known.write_text(f"[127.0.0.1]:{port} {' '.join((tmp / 'hostkey.pub').read_text().split()[:2])}\n")
    for _ in range(50):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    return sshd, port, known


@pytest.fixture(scope="module")
def boards(tmp_path_factory):
    """Two SSH "boards" on one sshd at 127.0.0.1: a good one and one whose userland says 32-bit."""
    if os.geteuid() != 0 or not Path("/usr/sbin/sshd").is_file() or not shutil.which("useradd"):
        pytest.skip("needs root and openssh-server (apt-get install openssh-server) for a throwaway sshd")
    pytest.importorskip("ansible_runner")
    tmp = tmp_path_factory.mktemp("ssh")
    for name in ("key", "hostkey"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp / name)], check=True)
    users = {"good": "edgecnn-deploy-a", "bit32": "edgecnn-deploy-b", "small": "edgecnn-deploy-c"}
    homes = {k: _make_user(u, (tmp / "key.pub").read_text(), fake_32_bit=k == "bit32") for k, u in users.items()}
    small_disk = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m,mode=0755", "tmpfs", str(homes["small"])],
                                capture_output=True).returncode == 0  # a board whose disk is nearly full
    if small_disk:
        _make_user(users["small"], (tmp / "key.pub").read_text())
    sshd, port, known = start_sshd(tmp, list(users.values()))
    source = homes["good"] / "photos"  # the camera source on the board: a folder of images the service reads
    source.mkdir(exist_ok=True)
    for i, name in enumerate(CLASSES):
        for j in range(3):
            import cv2

            img = np.zeros((SIZE, SIZE, 3), np.uint8)
            img[..., 2 - i] = 200 + j  # BGR on disk
            cv2.imwrite(str(source / f"{name}{j}.png"), img)
    subprocess.run(["chown", "-R", f"{users['good']}:{users['good']}", str(source)], check=True)
    from edgecnn.deploy.wheel import find_wheel

    wheel = tmp / find_wheel(None).name  # built once: every deploy of this module installs the same code
    shutil.copyfile(find_wheel(None), wheel)
    yield {"port": port, "key": tmp / "key", "known_hosts": known, "users": users, "homes": homes,
           "source": source, "tmp": tmp, "wheel": wheel, "small_disk": small_disk}
    if small_disk:
        subprocess.run(["pkill", "-u", users["small"]], capture_output=True)
        subprocess.run(["umount", "-l", str(homes["small"])], capture_output=True)
    sshd.terminate()
    sshd.wait(timeout=10)
    for user in users.values():
        subprocess.run(["pkill", "-u", user], capture_output=True)
        subprocess.run(["userdel", "-r", user], capture_output=True)


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """A real tiny export (colour classifier, tflite-fp32 and tflite-int8) and a copy whose int8 model is broken."""
    import keras

    from edgecnn.export import export
    from edgecnn.labels import write_labels

    tmp = tmp_path_factory.mktemp("export")
    keras.utils.set_random_seed(0)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(len(CLASSES), activation="softmax")(x))
    run = tmp / "run"
    run.mkdir()
    model.save(run / "model.keras")
    write_labels(run / "labels.txt", CLASSES)
    good = tmp / "good"
    export(run, ["tflite-fp32", "tflite-int8"], good, validate=False)
    broken = tmp / "broken"
    shutil.copytree(good, broken)
    (broken / "model_int8.tflite").write_bytes(b"not a model" * 100)
    return good, broken


def deploy(boards, export, *args, user="good", extra_hosts=()):
    host = f"{boards['users'][user]}@127.0.0.1:{boards['port']}"
    result = edgecnn("deploy", export, host, *extra_hosts, *args, "--key", boards["key"], "--known-hosts",
                     boards["known_hosts"], "--source", boards["source"], "--health-timeout", 90,
                     "--wheel", boards["wheel"])
    return result, host


def current(boards) -> str:
    return os.readlink(boards["homes"]["good"] / "edgecnn" / "current")


@pytest.mark.slow
@pytest.mark.train
def test_deploy_end_to_end_over_ssh(boards, exports):
    good, broken = exports
    first, host = deploy(boards, good, "--format", "tflite-int8")
    assert first.returncode == 0, first.stderr[-3000:]
    row = next(line for line in first.stdout.splitlines() if line.startswith(host))
    assert "deployed" in row and "tflite-int8" in row
    assert "health check ok: " in first.stderr and "frame 0: " in first.stderr  # the photos were classified
    int8 = current(boards)
    meta = json.loads((boards["homes"]["good"] / "edgecnn" / int8 / "release.json").read_text())
    assert meta["model"] == "model_int8.tflite" and meta["format"] == "tflite-int8"

    remote = edgecnn("benchmark", "--remote", host, "--key", boards["key"], "--known-hosts", boards["known_hosts"],
                     "--runs", 5, "--threads", 1, "--out", boards["tmp"] / "remote")
    assert remote.returncode == 0, remote.stderr[-2000:]
    device = json.loads((boards["tmp"] / "remote" / host / "device.json").read_text())
    assert device["emulated"] is False and device["release"] == int8.split("/")[-1]
    results = json.loads((boards["tmp"] / "remote" / host / "results.json").read_text())["results"]
    assert [r["format"] for r in results] == ["tflite-int8"] and results[0]["status"] == "ok"

    again, _ = deploy(boards, good, "--format", "tflite-int8")
    assert again.returncode == 0 and "no changes" in again.stdout, again.stdout + again.stderr[-2000:]
    assert current(boards) == int8

    releases = sorted(os.listdir(boards["homes"]["good"] / "edgecnn" / "releases"))
    dry, _ = deploy(boards, good, "--format", "tflite-fp32", "--check")
    assert dry.returncode == 0 and "would change" in dry.stdout, dry.stdout + dry.stderr[-2000:]
    assert current(boards) == int8 and sorted(os.listdir(boards["homes"]["good"] / "edgecnn" / "releases")) == releases

    fp32_run, _ = deploy(boards, good, "--format", "tflite-fp32")
    assert fp32_run.returncode == 0 and "tflite-fp32" in fp32_run.stdout, fp32_run.stderr[-2000:]
    fp32 = current(boards)
    assert fp32 != int8 and os.readlink(boards["homes"]["good"] / "edgecnn" / "previous") == int8

    back = edgecnn("deploy", "--rollback", host, "--key", boards["key"], "--known-hosts", boards["known_hosts"])
    assert back.returncode == 0, back.stderr[-2000:]
    assert current(boards) == int8 and int8.split("/")[-1] in back.stdout and "tflite-int8" in back.stdout

    bad, _ = deploy(boards, broken, "--format", "tflite-int8")
    assert bad.returncode == 1
    errors = [line for line in bad.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "health check failed" in errors[0], bad.stderr[-2000:]
    assert f"rolled back to {int8.split('/')[-1]}" in errors[0]
    assert current(boards) == int8  # the working release runs again


@pytest.mark.slow
@pytest.mark.train
def test_a_fleet_deploys_the_good_host_and_reports_each_bad_one_in_a_line(boards, exports):
    """One run, four hosts: the good one deployed; a 32-bit userland and a nearly full disk fail preflight and are
    left untouched; a host with no SSH server is unreachable. Exit status 1."""
    good, _ = exports
    bit32 = f"{boards['users']['bit32']}@127.0.0.1:{boards['port']}"
    small = f"{boards['users']['small']}@127.0.0.1:{boards['port']}"
    nobody = f"pi@127.0.0.1:{_free_port()}"
    others = (bit32, nobody) + ((small,) if boards["small_disk"] else ())
    result, host = deploy(boards, good, "--format", "tflite-int8", extra_hosts=others)
    assert result.returncode == 1
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[2:]}
    assert "deployed" in rows[host] or "no changes" in rows[host]
    assert " failed " in rows[bit32] and " unreachable " in rows[nobody]
    errors = {line.split()[1].rstrip(":"): line for line in result.stderr.splitlines() if line.startswith("error:")}
    assert set(errors) == set(others), result.stderr[-3000:]
    assert "32-bit userland" in errors[bit32] and "nothing was changed" in errors[bit32]
    assert "Connection refused" in errors[nobody] and "enable SSH" in errors[nobody]
    assert not (boards["homes"]["bit32"] / "edgecnn").exists()
    if boards["small_disk"]:
        assert "MB free in" in errors[small] and "free some space" in errors[small]
        assert not (boards["homes"]["small"] / "edgecnn").exists()


@pytest.mark.slow
@pytest.mark.train
def test_a_host_key_that_does_not_match_is_refused(boards, exports, tmp_path):
    good, _ = exports
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "other")], check=True)
    wrong = tmp_path / "known_hosts"
    wrong.write_text(f"[127.0.0.1]:{boards['port']} {' '.join((tmp_path / 'other.pub').read_text().split()[:2])}\n")
    host = f"{boards['users']['good']}@127.0.0.1:{boards['port']}"
    result = edgecnn("deploy", good, host, "--format", "tflite-int8", "--key", boards["key"], "--known-hosts", wrong,
                     "--wheel", boards["wheel"])
    assert result.returncode == 1 and "unreachable" in result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "host key" in errors[0].lower(), result.stderr[-2000:]


def test_the_unit_is_rendered_for_the_real_user_and_release():
    jinja2 = pytest.importorskip("jinja2")
    from edgecnn.deploy.ansible import PLAYBOOKS

    template = jinja2.Template((PLAYBOOKS / "templates" / "edgecnn-camera.service.j2").read_text())
    text = template.render(pf={"user": "alice"}, edgecnn_root="/home/alice/edgecnn",
                           edgecnn_venv="/home/alice/edgecnn/venv",
                           **job.camera_vars(["--source", "/media/my clips/a.mp4", "--serve", "0.0.0.0:8080"], ""))
    assert "User=alice\n" in text and "pi" not in text.replace("picamera", "").split()
    assert ('ExecStart=/home/alice/edgecnn/venv/bin/edgecnn camera /home/alice/edgecnn/current --headless '
            '--source "/media/my clips/a.mp4" --serve 0.0.0.0:8080\n') in text
