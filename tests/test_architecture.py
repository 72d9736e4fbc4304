"""Import direction of the one-way data flow (STYLE C1): an `ast` walk over every module."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SDKS = {"boto3", "botocore", "github", "okta", "datadog_api_client", "requests", "urllib3",
        "aiohttp", "http", "urllib", "socket", "moto"}


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return out


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("path", modules("controls"), ids=lambda p: str(p.relative_to(ROOT)))
def test_controls_never_call_an_api(path: Path) -> None:
    bad = {m for m in imports(path)
           if m.split(".")[0] in SDKS | {"collectors", "reports"}}
    assert not bad, f"{path.name} imports {bad}: a rule must judge stored evidence only"


@pytest.mark.parametrize("path", modules("collectors"), ids=lambda p: str(p.relative_to(ROOT)))
def test_collectors_never_judge(path: Path) -> None:
    bad = {m for m in imports(path) if m.split(".")[0] in {"controls", "reports"}
           or m in {"attest.engine", "attest.scan"}}
    assert not bad, f"{path.name} imports {bad}: collectors fetch, they do not judge"


@pytest.mark.parametrize("path", modules("reports"), ids=lambda p: str(p.relative_to(ROOT)))
def test_reports_read_results_not_apis(path: Path) -> None:
    bad = {m for m in imports(path) if m.split(".")[0] in {"collectors"} | (SDKS - {"urllib"})
           or m.startswith("controls.rules")}
    assert not bad, f"{path.name} imports {bad}"


def test_only_the_cli_exits() -> None:
    offenders = []
    for package in ("attest", "collectors", "controls", "reports"):
        for path in modules(package):
            if path.name in ("cli.py", "__main__.py"):
                continue
            if "sys.exit(" in path.read_text(encoding="utf-8"):
                offenders.append(str(path.relative_to(ROOT)))
    assert not offenders
