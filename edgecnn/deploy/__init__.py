"""``edgecnn deploy``: an export onto one board or a fleet over SSH, with Ansible as the engine.

The controller side (this package, imported by the CLI) prepares what travels
(a wheel of edgecnn, a release tarball of the export, an inventory) and runs the
playbook shipped in ``playbook/`` through ansible-runner; the boards need only
SSH, Python 3 and sudo. A fleet operator can run the same playbook from their own
Ansible (see ``playbook/deploy.yml`` for its variables).

Layout on a board (``~/edgecnn`` by default)::

    venv/                     the runtime: edgecnn[device] from the deployed wheel
    releases/<id>/            one export (model, card, labels, report) + release.json
    current -> releases/<id>  what the service runs (switched atomically)
    previous -> releases/<id> what --rollback and a failed health check switch back to
    collect/                  frames the service keeps (deploy --collect), emptied by `edgecnn collect pull`

:mod:`edgecnn.deploy.release` is imported on the board too (``edgecnn camera
~/edgecnn/current``): it must stay free of Ansible and heavy imports.
"""

COLLECT_DIR = "edgecnn/collect"  # a board's collection (deploy --collect, collect pull), under the user's home
