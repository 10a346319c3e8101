"""HOST arguments (``user@host[:port]``) -> an Ansible inventory; SSH options that check host keys, never prompt."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from edgecnn.errors import UsageError

_SPEC = re.compile(r"^(?:(?P<user>[A-Za-z0-9._-]+)@)?(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::(?P<port>\d+))?$")


@dataclass(frozen=True)
class Host:
    spec: str  # as the user wrote it: the inventory name and the table's first column
    host: str
    user: str | None
    port: int | None


def parse_host(spec: str) -> Host:
    match = _SPEC.match(spec)
    port = int(match["port"]) if match and match["port"] else None
    if not match or (port is not None and not 0 < port < 65536):
        raise UsageError(f"Received host {spec!r}; expected user@host or user@host:port, e.g. pi@raspberrypi.local")
    return Host(spec, match["host"].strip("[]"), match["user"], port)


def ssh_args(known_hosts: str | None) -> str:
    """Host keys are checked against known_hosts (never accepted silently); no password prompt can hang a deploy."""
    args = "-o StrictHostKeyChecking=yes -o BatchMode=yes -o ConnectTimeout=15"
    return args + (f" -o UserKnownHostsFile={known_hosts}" if known_hosts else "")


def write_inventory(hosts: list[Host], dest: Path, key: str | None, known_hosts: str | None) -> Path:
    """A YAML (JSON) inventory with one entry per host."""
    entries = {}
    for h in hosts:
        entry = {"ansible_host": h.host, "ansible_ssh_common_args": ssh_args(known_hosts),
                 "ansible_python_interpreter": "/usr/bin/python3"}
        if h.user:
            entry["ansible_user"] = h.user
        if h.port:
            entry["ansible_port"] = h.port
        if key:
            entry["ansible_ssh_private_key_file"] = key
        entries[h.spec] = entry
    dest.write_text(json.dumps({"all": {"hosts": entries}}, indent=1))
    return dest
