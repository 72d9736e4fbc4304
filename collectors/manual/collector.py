"""The manual evidence collector: records the documents in the manual store (see attest.manual)."""
from __future__ import annotations

from typing import ClassVar, Iterator

from pydantic import BaseModel

from attest.model import Evidence
from collectors.base import CollectContext
from collectors.manual.source import SOURCE, ManualConfig


class ManualCollector:
    source: ClassVar[str] = SOURCE.name
    Config: ClassVar[type[BaseModel]] = ManualConfig
    produces: ClassVar[tuple[str, ...]] = SOURCE.produces

    def __init__(self, config: ManualConfig) -> None:
        self.config = config

    def collect(self, ctx: CollectContext) -> Iterator[Evidence]:
        from attest.manual import iter_documents
        docs: dict[str, list[dict]] = {}
        if ctx.output_dir is not None:
            for meta in iter_documents(ctx.output_dir):
                docs.setdefault(meta["control"], []).append(meta)
        ctx.progress("manual evidence store")
        yield ctx.evidence("manual.documents", "manual:store", docs,
                           request={"store": "manual/"})
