"""Import direction of the one-way data flow (STYLE C1): an `ast` walk over every module."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from attest.sources import sources

ROOT = Path(__file__).resolve().parents[1]
# Every registered source's SDKs (from the registry: a new source's SDK is covered by itself),
# plus anything that can reach a network.
NETWORK = {"requests", "urllib3", "httpx", "aiohttp", "http", "urllib", "socket", "ssl", "moto",
           "slack_sdk", "tenacity"}
SDKS = {sdk for source in sources().values() for sdk in source.sdks} | NETWORK


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


def test_the_sdk_list_comes_from_the_registry() -> None:
    assert {"boto3", "botocore", "github", "okta", "datadog_api_client"} <= SDKS


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


def _exits_or_parses(path: Path) -> set[str]:
    """What in a module belongs to the command line only: argparse, sys.exit, SystemExit."""
    found = {"imports argparse" for m in imports(path) if m.split(".")[0] == "argparse"}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Attribute) and f.attr == "exit" and \
                    isinstance(f.value, ast.Name) and f.value.id in ("sys", "os"):
                found.add(f"calls {f.value.id}.exit")
            elif isinstance(f, ast.Name) and f.id in ("exit", "quit"):
                found.add(f"calls {f.id}()")
        elif isinstance(node, ast.Raise) and node.exc is not None:
            exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            if isinstance(exc, ast.Name) and exc.id == "SystemExit":
                found.add("raises SystemExit")
    return found


LIBRARY = [p for package in ("attest", "collectors", "controls", "reports") for p in modules(package)
           if not p.is_relative_to(ROOT / "attest" / "cli")]


@pytest.mark.parametrize("path", LIBRARY, ids=lambda p: str(p.relative_to(ROOT)))
def test_only_the_cli_parses_arguments_or_exits(path: Path) -> None:
    """Library modules raise AttestError; attest/cli/ alone parses arguments and exits."""
    found = _exits_or_parses(path)
    assert not found, f"{path.relative_to(ROOT)} {', '.join(sorted(found))}: move it to attest/cli/"


def test_the_cli_check_catches_each_way_out(tmp_path: Path) -> None:
    for source, expected in [("import argparse\n", "imports argparse"),
                             ("from argparse import Namespace\n", "imports argparse"),
                             ("import sys\nsys.exit(2)\n", "calls sys.exit"),
                             ("raise SystemExit(1)\n", "raises SystemExit"),
                             ("exit(0)\n", "calls exit()")]:
        module = tmp_path / "m.py"
        module.write_text(source, encoding="utf-8")
        assert _exits_or_parses(module) == {expected}


@pytest.mark.parametrize("name", sorted(sources()))
def test_a_source_imports_no_other_source(name: str) -> None:
    """A source is one package: its modules import no other source's package."""
    others = {f"collectors.{o}" for o in sources() if o != name}
    for path in sorted((ROOT / "collectors" / name).rglob("*.py")):
        bad = {m for m in imports(path) if any(m == o or m.startswith(o + ".") for o in others)}
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_source_entries_import_no_sdk() -> None:
    """source.py is what the registry loads for every command: it must stay free of SDKs, so a
    scan imports only the SDKs of the sources it runs."""
    for name in sources():
        path = ROOT / "collectors" / name / "source.py"
        bad = {m for m in imports(path) if m.split(".")[0] in SDKS - {"urllib", "http"}}
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"
