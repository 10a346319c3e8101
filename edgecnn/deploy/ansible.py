"""Run the packaged playbooks through ansible-runner and gather one outcome per host."""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from edgecnn.errors import UsageError

log = logging.getLogger("edgecnn.deploy")

PLAYBOOKS = Path(__file__).resolve().parent / "playbook"


@dataclass
class Outcome:
    """What happened on one host."""

    host: str
    ok: bool = True
    unreachable: bool = False
    message: str = ""
    changed: int = 0
    result: dict = field(default_factory=dict)  # the playbook's edgecnn_result fact


def _import_runner():
    try:
        import ansible_runner
    except ImportError:
        raise UsageError("deploy needs Ansible: pip install 'edgecnn[deploy]' (ansible-core, ansible-runner)") from None
    return ansible_runner


def _failure_message(res: dict, task: str) -> str:
    """One line from an Ansible task result: its msg, else the last stderr/stdout line."""
    for text in (res.get("msg"), res.get("stderr"), res.get("stdout"), res.get("module_stderr")):
        if isinstance(text, str) and text.strip():
            line = text.strip().splitlines()[-1].strip()
            if line and line != "non-zero return code":
                return line if text is res.get("msg") else f"{task}: {line}"
    return f"{task} failed"


_HINTS = {
    "Host key verification failed": "the host's key is not the one in known_hosts: connect once with ssh to "
                                    "check and accept it, or fix known_hosts (--known-hosts)",
    "Permission denied": "the key was refused: add your public key to the board (ssh-copy-id user@host) or pass --key",
    "Could not resolve hostname": "check the host name (or use the board's IP address)",
    "Connection refused": "no SSH server answers there: enable SSH on the board (raspi-config) and check the port",
    "timed out": "no answer: is the board on and on this network?",
}


def _hint(res: dict) -> str:
    text = str(res.get("msg", ""))
    return next((f"; {hint}" for key, hint in _HINTS.items() if key in text), "")


class _Events:
    """ansible-runner event handler: per-host failures, the result fact, progress lines."""

    def __init__(self):
        self.hosts: dict[str, Outcome] = {}

    def outcome(self, host: str) -> Outcome:
        return self.hosts.setdefault(host, Outcome(host))

    def __call__(self, event: dict) -> bool:
        kind, data = event.get("event", ""), event.get("event_data") or {}
        host, task, res = data.get("host"), data.get("task", ""), data.get("res") or {}
        if not host:
            return True
        out = self.outcome(host)
        if kind == "runner_on_unreachable":
            out.ok, out.unreachable = False, True
            out.message = f"unreachable: {_failure_message(res, task)}{_hint(res)}"
            log.debug(f"{host}: {out.message}")
        elif kind == "runner_on_failed" and not data.get("ignore_errors"):
            out.ok, out.message = False, _failure_message(res, task)
            log.debug(f"{host}: {task} failed: {out.message}")
        elif kind == "runner_on_ok":
            facts = res.get("ansible_facts") or {}
            if "edgecnn_result" in facts:
                out.result = facts["edgecnn_result"]
            if res.get("changed"):
                out.changed += 1
                log.info(f"{host}: {task}")
            else:
                log.debug(f"{host}: {task} (unchanged)")
        return True


def run_playbook(name: str, inventory: Path, extravars: dict, check: bool = False, forks: int = 10) -> list[Outcome]:
    """Run ``playbook/<name>`` on every host of ``inventory``; one Outcome per host, in inventory order."""
    runner = _import_runner()
    events = _Events()
    bindir = str(Path(sys.executable).parent)  # ansible-playbook sits beside this Python in a venv
    # ansible-runner turns host-key checking off unless told otherwise: a deploy checks it (known_hosts).
    env = {"PATH": bindir + os.pathsep + os.environ.get("PATH", ""), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_RETRY_FILES_ENABLED": "0", "ANSIBLE_HOST_KEY_CHECKING": "True",
           "ANSIBLE_PYTHON_INTERPRETER": "auto_silent",
           "ANSIBLE_DEPRECATION_WARNINGS": "0", "ANSIBLE_LOCALHOST_WARNING": "0"}
    with tempfile.TemporaryDirectory(prefix="edgecnn-ansible-") as private:
        # SSH connections are shared within this run only: a master kept from an earlier run would skip the
        # host-key check of this one.
        env["ANSIBLE_SSH_CONTROL_PATH_DIR"] = os.path.join(private, "cp")
        result = runner.run(private_data_dir=private, project_dir=str(PLAYBOOKS), playbook=name,
                            inventory=str(inventory), extravars=extravars, envvars=env, quiet=True,
                            forks=forks, cmdline="--check --diff" if check else None,
                            event_handler=events, settings={"suppress_env_files": True})
        stdout = result.stdout.read() if result.stdout else ""
    names = _inventory_hosts(inventory) or list(events.hosts)
    if result.rc and not any(o.ok is False or o.result for o in events.hosts.values()):
        # an error of the playbook itself (syntax, inventory) before any host ran
        last = [line for line in stdout.strip().splitlines() if line.strip()][-1:] or [f"exit {result.rc}"]
        raise UsageError(f"ansible-playbook failed before deploying: {last[0].strip()}")
    return [events.hosts.get(h) or Outcome(h, ok=False, message="the playbook did not reach this host")
            for h in names]


def _inventory_hosts(inventory: Path) -> list[str]:
    import json

    try:
        return list(json.loads(inventory.read_text())["all"]["hosts"])
    except (OSError, ValueError, KeyError, TypeError):
        return []  # a user's inventory (INI or YAML): hosts are named by the events
