"""``attest scan --demo``: a fictional company ("Acme Rockets") on local API servers.

Each source has a module with ``start_demo(now) -> DemoSource``: it starts that source's local
server on 127.0.0.1 (moto for AWS; a spec-shaped fake for GitHub, Okta, Datadog), seeds the
company's estate, and returns the config section that points the real collector at it. The scan
code is the production code; only the endpoints differ. Tests reuse the same pieces.
"""
from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

DEMO_MODULES = {
    "aws": "attest.demo.seed_aws",
    "github": "attest.demo.fake_github",
    "okta": "attest.demo.fake_okta",
    "datadog": "attest.demo.fake_datadog",
}


@dataclass
class DemoSource:
    section: dict[str, Any]                  # the config section for this source
    env: dict[str, str]                      # env vars the section references (demo tokens)
    expected: dict[str, str]                 # control id -> status the demo seeded
    stop: Callable[[], None] = lambda: None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Demo:
    sources: dict[str, DemoSource]

    @property
    def config(self) -> dict[str, Any]:
        return {name: s.section for name, s in self.sources.items()}

    @property
    def expected(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for s in self.sources.values():
            out.update(s.expected)
        return out

    def stop(self) -> None:
        for s in self.sources.values():
            s.stop()


def start_demo(now: datetime, sources: tuple[str, ...] | None = None) -> Demo:
    started: dict[str, DemoSource] = {}
    try:
        for name, module in DEMO_MODULES.items():
            if sources is not None and name not in sources:
                continue
            try:
                mod = importlib.import_module(module)
            except ModuleNotFoundError as exc:
                if exc.name == module:
                    continue
                raise
            src = mod.start_demo(now)
            os.environ.update(src.env)
            started[name] = src
    except BaseException:
        Demo(started).stop()
        raise
    return Demo(started)
