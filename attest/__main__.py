"""``python -m attest``: the same as the ``attest`` command."""
from attest.cli import run

run()
