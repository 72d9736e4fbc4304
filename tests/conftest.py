"""Shared fixtures. Moto keeps its state per process: suites run with `--dist loadfile`, so the
tests of one file stay on one worker, in order, and module-scoped servers are safe there.

Every results.json a test writes is checked against the shipped JSON Schema after the test (its
``tmp_path``) and after each test module (the folders its module-scoped fixtures made with
``tmp_path_factory``, e.g. demo histories): a test whose bundle does not fit fails, naming the file
and the first error. A test that tampers with a results.json on purpose says so with
``@pytest.mark.writes_invalid_results``.
"""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import pytest

from tests.results_schema import problems_under

NOW = datetime(2026, 11, 22, 2, 0, tzinfo=timezone.utc)


def _fail_on(problems: list[str]) -> None:
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        pytest.fail(f"results.json does not fit attest/schemas/results.schema.json: "
                    f"{problems[0]}{more}", pytrace=False)


_test_dirs: set[Path] = set()   # tmp_path folders the per-test check has taken care of


@pytest.fixture(autouse=True)
def results_fit_the_schema(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each test: every results.json under its tmp_path fits the shipped schema."""
    if "tmp_path" not in request.fixturenames:
        yield
        return
    tmp_path = request.getfixturevalue("tmp_path")   # now, so that it outlives this check
    _test_dirs.add(tmp_path)
    yield
    if not request.node.get_closest_marker("writes_invalid_results"):
        _fail_on(problems_under(tmp_path))


@pytest.fixture(autouse=True, scope="module")
def module_results_fit_the_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """After each test module: the same for the folders its module-scoped fixtures made with
    tmp_path_factory while it ran (the tests' own tmp_path folders are checked per test)."""
    base = tmp_path_factory.getbasetemp()
    before = set(base.iterdir())
    yield
    made = sorted(d for d in set(base.iterdir()) - before - _test_dirs
                  if d.is_dir() and not d.is_symlink())   # pytest links <name>current -> <name>N
    _fail_on([p for d in made for p in problems_under(d)])


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


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    """moto's server on 127.0.0.1, one per test module (real HTTP, no SDK mocks)."""
    from collectors.aws import demo as seed_aws
    server, url = seed_aws.start_server()
    yield url
    server.stop()


@pytest.fixture
def moto(moto_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """A reset moto server and default-chain credentials that reach it; returns its URL."""
    from collectors.aws import demo as seed_aws
    seed_aws.reset(moto_url)
    for name, value in seed_aws.ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("ATTEST_CONFIG", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    return moto_url
