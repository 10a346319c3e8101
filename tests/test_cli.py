"""The command line: help, one-line errors, exit codes."""

import subprocess
import sys

import pytest

from edgecnn.cli import COMMANDS, build_parser, main


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "edgecnn", *args], capture_output=True, text=True, timeout=120)


def test_help_lists_every_command_with_a_description():
    result = run_cli("--help")
    assert result.returncode == 0
    for name in COMMANDS:
        assert name in result.stdout
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for choice in sub._choices_actions:
        assert choice.help and "\n" not in choice.help


def test_quickstart_with_missing_data_is_one_error_line():
    result = run_cli("quickstart", "--data", "/nonexistent/photos")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "/nonexistent/photos" in lines[0]
    assert "Traceback" not in result.stderr


def test_bad_option_value_exits_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["quickstart", "--epochs", "many"])
    assert exc.value.code == 2
    assert "argument --epochs: Received 'many'; expected a whole number >= 1" in capsys.readouterr().err


def test_user_error_raised_inside_a_command(capsys, tmp_path):
    missing = tmp_path / "missing"
    assert main(["export", str(missing)]) == 2
    assert capsys.readouterr().err.strip() == (f"error: model not found: {missing}; "
                                               f"pass a training run directory or a .keras file")


def test_debug_shows_the_traceback(tmp_path):
    result = run_cli("--debug", "quickstart", "--data", str(tmp_path / "missing"))
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_no_command_prints_help():
    result = run_cli()
    assert result.returncode == 2 and "quickstart" in result.stdout


def test_messages_go_to_stderr_once_and_quiet_or_verbose_change_the_level(capsys):
    import logging

    from edgecnn.cli import configure_logging

    log = logging.getLogger("edgecnn.test")
    configure_logging()
    configure_logging()  # configuring twice must not print twice
    log.info("progress")
    log.debug("detail")
    configure_logging(quiet=True)
    log.info("hidden")
    log.warning("warning: kept")
    configure_logging(verbose=True)
    log.debug("detail shown")
    configure_logging()
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.splitlines() == ["progress", "warning: kept", "detail shown"]
