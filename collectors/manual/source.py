"""Manual evidence as a source: documents (policies, training records, pentest reports...) stored
with ``attest evidence add`` and recorded by every scan, with their sha256 re-computed."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from attest.sources import Source


class ManualConfig(BaseModel):
    """No settings: the store is always ``<output_dir>/manual``."""
    model_config = ConfigDict(extra="forbid")


SOURCE = Source(
    name="manual", title="Manual evidence", order=90, config=ManualConfig,
    collector="collectors.manual.collector:ManualCollector",
    produces=("manual.documents",), demo="collectors.manual.demo:start_demo",
    enabled_without_config=True, reads_with="the local document store (attest evidence add)",
)
