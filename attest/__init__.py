"""attest: SOC 2 evidence collection, judged by a control catalog, kept in hash-chained bundles."""
from __future__ import annotations

__version__ = "0.1.0"
