"""Stage 1: collectors fetch raw evidence and judge nothing.

``SOURCES`` maps a source name (its config key and evidence-name prefix) to the collector class,
imported lazily so a scan imports only the SDKs it uses.
"""
from __future__ import annotations

import importlib
from typing import Any

SOURCES: dict[str, str] = {
    "aws": "collectors.aws:AwsCollector",
    "github": "collectors.github:GithubCollector",
    "okta": "collectors.okta:OktaCollector",
    "datadog": "collectors.datadog:DatadogCollector",
    "manual": "collectors.manual:ManualCollector",
}


def load_collector(source: str) -> Any:
    module, _, cls = SOURCES[source].partition(":")
    return getattr(importlib.import_module(module), cls)


def all_collectors() -> dict[str, Any]:
    return {name: load_collector(name) for name in SOURCES}
