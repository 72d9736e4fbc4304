"""``attest scan --demo``: a fictional company ("Acme Rockets") on local API servers.

Each registered source names its demo (``Source.demo``, ``module:start_demo``): ``start_demo(now)
-> DemoSource`` starts that source's local server on 127.0.0.1 (moto for AWS; a spec-shaped fake
for the SaaS vendors), seeds the company's estate, and returns the config section that points the
real collector at it. The scan code is the production code; only the endpoints differ. Tests
reuse the same pieces. The servers and moto are the ``demo`` extra (``pip install 'attest[demo]'``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

DEMO_EXTRA = ("moto", "werkzeug", "flask", "graphql")   # what pip install 'attest[demo]' adds


@dataclass
class DemoSource:
    section: dict[str, Any] | None           # the config section for this source (None: none)
    env: dict[str, str]                      # env vars the section references (demo tokens)
    expected: dict[str, str]                 # control id -> status the demo seeded
    stop: Callable[[], None] = lambda: None
    extra: dict[str, Any] = field(default_factory=dict)
    prepare: Callable[[Path], Any] = lambda output_dir: None   # seed the output folder


@dataclass
class Demo:
    sources: dict[str, DemoSource]

    @property
    def config(self) -> dict[str, Any]:
        return {name: s.section for name, s in self.sources.items() if s.section is not None}

    def prepare(self, output_dir: Path) -> None:
        for s in self.sources.values():
            s.prepare(output_dir)

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
    """Start the demo of every registered source (or of ``sources``)."""
    from attest.errors import UsageError
    from attest.sources import load, sources as registered
    started: dict[str, DemoSource] = {}
    try:
        for name, source in registered().items():
            if (sources is not None and name not in sources) or source.demo is None:
                continue
            try:
                src = load(source.demo)(now)
            except ModuleNotFoundError as exc:
                if exc.name and exc.name.split(".")[0] in DEMO_EXTRA:
                    raise UsageError(f"the demo needs its extra, which is not installed (no module "
                                     f"{exc.name}): pip install 'attest[demo]'") from None
                raise
            os.environ.update(src.env)
            started[name] = src
    except BaseException:
        Demo(started).stop()
        raise
    return Demo(started)
