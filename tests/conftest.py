"""Shared fixtures. Moto keeps its state per process: suites run with `--dist loadfile`, so the
tests of one file stay on one worker, in order, and module-scoped servers are safe there."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import pytest

NOW = datetime(2026, 11, 22, 2, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def demo() -> Iterator[object]:
    """The built-in demo (every source) on local servers, started once per test module."""
    from attest.demo import start_demo
    d = start_demo(NOW)
    yield d
    d.stop()


@pytest.fixture
def demo_scan(demo, tmp_path: Path):
    """Run one real scan against the demo into a fresh output folder; returns a runner."""
    from attest.config import load_config
    from attest.scan import run_scan

    def run(now: datetime = NOW, out: Path | None = None, **overrides):
        config = load_config(None, overrides={**demo.config, **overrides})
        return run_scan(config, out_dir=out or tmp_path / "out", now=now, demo=True)
    return run
