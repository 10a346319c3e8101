"""tools/arm64 (the emulated Raspberry Pi harness): the README steps it runs, its cpuinfo files, its figures.

The emulation itself runs in CI's smoke step (.ci/run), not here.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from edgecnn.machine import cpu_features, cpu_model, cpuinfo

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools" / "arm64"))

import compare  # noqa: E402
import readme  # noqa: E402

PI_BOARDS = ("raspberry-pi-4", "raspberry-pi-5", "raspberry-pi-zero-2w")


@pytest.mark.parametrize("board", PI_BOARDS)
def test_each_pi_readme_has_the_wheel_install_the_harness_runs(board):
    steps = readme.install_steps(REPO / "devices" / board / "README.md")
    assert steps.build == "python3 -m pip wheel --no-deps -w dist ."
    commands = readme.board_commands(steps.board)
    assert ("root", "apt update && apt install -y python3-venv") in commands
    assert ("user", '~/edgecnn-venv/bin/pip install "$(ls -v ~/edgecnn-*.whl | tail -n 1)[device]"') in [
        (user, readme.strip_comment(cmd)) for user, cmd in commands]
    assert "'edgecnn[device]'" not in (REPO / "devices" / board / "README.md").read_text()  # not on PyPI


def test_pi_boards_share_one_install_path():
    blocks = {readme.install_steps(REPO / "devices" / b / "README.md").board for b in PI_BOARDS}
    assert len(blocks) == 1


def test_sudo_lines_run_as_root_and_mixed_lines_are_refused():
    assert readme.board_commands("sudo apt update && sudo apt install -y x\nls ~  # home\n") == [
        ("root", "apt update && apt install -y x"), ("user", "ls ~  # home")]
    with pytest.raises(ValueError, match="mixes sudo and user commands"):
        readme.board_commands("cd /tmp && sudo make install\n")


def test_a_readme_without_the_two_install_blocks_is_named(tmp_path):
    bad = tmp_path / "README.md"
    bad.write_text("# board\n\n## Install\n\n```bash\npip install edgecnn\n```\n")
    with pytest.raises(ValueError, match="two bash blocks"):
        readme.install_steps(bad)


@pytest.mark.parametrize("board, core, dotprod", [("raspberry-pi-4", "Cortex-A72", False),
                                                   ("raspberry-pi-5", "Cortex-A76", True)])
def test_cpuinfo_files_match_the_device_profiles(board, core, dotprod):
    info = cpuinfo(REPO / "tools" / "arm64" / "cpuinfo" / board)
    features = cpu_features(info)
    from edgecnn.bench.devices import load_profile  # the installed package's (the emulated Pi has no edgecnn/ here)

    expected = load_profile(board)["cpu_features_expected"]
    assert core in cpu_model(info) and set(expected) <= set(features) and ("asimddp" in features) == dotprod


def _result(rows, classes=("a", "b", "c")):
    return {"model": "m.tflite", "classes": list(classes), "images": rows}


def test_agreement_accuracy_and_max_difference():
    board = _result([["x/1.jpg", 0, [0.7, 0.2, 0.1]], ["x/2.jpg", 1, [0.4, 0.5, 0.1]], ["x/3.jpg", 2, [0.5, 0.5, 0.0]]])
    x86 = _result([["x/2.jpg", 1, [0.6, 0.3, 0.1]], ["x/1.jpg", 0, [0.7, 0.2, 0.1]], ["x/3.jpg", 2, [0.5, 0.5, 0.0]]])
    figures = compare.compare(board, x86)
    assert figures["agree"] == 2 and figures["agreement"] == round(2 / 3, 4)
    assert figures["max_abs_diff"] == pytest.approx(0.2)
    assert figures["disagreements"] == [{"image": "x/2.jpg", "label": "b", "device": "b", "reference": "a"}]
    assert compare.accuracy(board)["correct"] == 2  # x/3: a tie goes to the lower index (a), label c
    lo, hi = compare.wilson(2, 3)
    assert 0.2 < lo < 2 / 3 < hi < 1


def test_runs_over_different_images_cannot_be_compared():
    with pytest.raises(ValueError, match="different images"):
        compare.compare(_result([["x/1.jpg", 0, [1, 0, 0]]]), _result([["y/1.jpg", 0, [1, 0, 0]]]))


def test_results_markdown_keeps_its_table_and_names_paths_portably():
    import harness

    record = {"board": "raspberry-pi-4", "note": "EMULATED", "qemu_cpu": "cortex-a72", "cpuinfo": "x",
              "steps": [{"step": 'README: pip install "$(ls -v ~/edgecnn-*.whl | tail -n 1)"', "ok": True,
                         "detail": "a | b"}]}
    row = next(line for line in harness.render_markdown(record).splitlines() if line.startswith("| README"))
    assert row.count(" | ") == 2 and "\\|" in row  # the pipe in the command is escaped, the detail's replaced
    assert harness._portable_arg(str(REPO / "devices")) == "devices"
    assert harness._portable_arg(str(harness.shared_dir() / "data")) == "../shared/data"
    assert harness._portable_arg("/somewhere/else/export-s2") == "export-s2"
