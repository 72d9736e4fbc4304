"""attest: SOC 2 evidence collection, judged by a control catalog, kept in hash-chained bundles.

The public API (everything else may change between versions)::

    from attest import load_config, run_scan, verify, evaluate
    outcome = run_scan(load_config("config.yaml"))
    bundles, problems = verify(outcome.bundle.parent)
    results = Results.load(outcome.bundle)       # results.json, typed (attest/results.py)
"""
from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = [
    "ControlResult", "Evidence", "EvidenceState", "Finding", "Results", "Status", "__version__",
    "evaluate", "load_config", "run_scan", "verify",
]

_LAZY = {
    "ControlResult": "attest.model", "Evidence": "attest.model", "EvidenceState": "attest.model",
    "Finding": "attest.model", "Results": "attest.results", "Status": "attest.model",
    "evaluate": "attest.engine", "load_config": "attest.config", "run_scan": "attest.scan",
    "verify": "attest.manifest",
}


def __getattr__(name: str) -> Any:  # imported on first use: `import attest` stays cheap
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'attest' has no attribute {name!r}")
