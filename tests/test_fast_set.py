"""The suite's own selection rules (tests/conftest.py): a bare ``pytest`` runs the fast set, ``-m slow`` the rest,
a path or ``-k`` selects exactly that; ``train`` tests skip without the train extra, by the same rule everywhere."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
SAMPLE = '''
import pytest


def test_quick():
    pass


@pytest.mark.slow
def test_long():
    pass


@pytest.mark.train
def test_keras():
    pass
'''


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A throwaway project with this suite's conftest.py and pytest settings, and one quick, slow and train test."""
    root = tmp_path_factory.mktemp("suite")
    shutil.copy(TESTS / "conftest.py", root / "conftest.py")
    shutil.copy(TESTS.parent / "pyproject.toml", root / "pyproject.toml")
    (root / "test_sample.py").write_text(SAMPLE)
    return root


def collected(project: Path, *args: str, env_plugin: str = "") -> tuple[set[str], str]:
    """The test names a pytest run in ``project`` passes or skips, and its output."""
    plugin = ["-p", env_plugin] if env_plugin else []
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly", "-rs", "-v",
                           *plugin, *args], cwd=project, capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": str(project), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return set(re.findall(r"::(test_\w+) (?:PASSED|SKIPPED)", proc.stdout)), proc.stdout


def test_a_bare_pytest_runs_the_fast_set_and_says_so(project):
    names, out = collected(project)
    assert names == {"test_quick", "test_keras"}
    assert "1 deselected" in out and "the fast set: tests marked slow are deselected" in out


def test_minus_m_slow_runs_the_rest_and_minus_m_empty_everything(project):
    assert collected(project, "-m", "slow")[0] == {"test_long"}
    assert collected(project, "-m", "")[0] == {"test_quick", "test_long", "test_keras"}


def test_a_path_or_k_selects_exactly_that(project):
    assert collected(project, "test_sample.py")[0] == {"test_quick", "test_long", "test_keras"}
    assert collected(project, "-k", "long")[0] == {"test_long"}


def test_train_tests_skip_where_the_train_extra_is_missing(project):
    (project / "no_keras.py").write_text("import importlib.util\n\n"
                                         "_find = importlib.util.find_spec\n"
                                         "importlib.util.find_spec = lambda name, *a: None if name == 'keras' "
                                         "else _find(name, *a)\n")
    names, out = collected(project, env_plugin="no_keras")
    assert "SKIPPED" in out and re.search(r"needs the train extra \([^)]*\bkeras\b[^)]*not installed\)", out)
    assert "test_keras PASSED" not in out and "test_quick PASSED" in out
