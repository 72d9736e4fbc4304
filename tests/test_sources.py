"""Meta-lint over the source registry: a source is its package plus its catalog and rules.

For every registered source: its entry is well formed, its collector is the one it names and
produces what it declares, its catalog file exists and lists only its own controls, every
control has a rule in the source's rule modules, every rule reads only evidence this source's
collector produces, and it has a demo. A missing piece fails naming the source and the piece.
"""
from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import yaml

from attest.sources import Source, load, sources
from controls import load_catalog

ROOT = Path(__file__).resolve().parents[1]
NAMES = sorted(sources())


def rule_ids(module: str) -> set[str]:
    """Control ids the rules defined in ``module`` are registered for."""
    from controls.rules import load_rules
    return {cid for cid, fn in load_rules().items() if fn.__module__ == module}


@pytest.mark.parametrize("name", NAMES)
def test_source_entry_is_complete(name: str) -> None:
    source = sources()[name]
    assert isinstance(source, Source) and source.name == name
    assert (ROOT / "collectors" / name / "source.py").is_file(), f"{name}: no collectors/{name}/source.py"
    assert source.produces, f"{name}: declares no evidence"
    assert all(e.split(".")[0] == name for e in source.produces), f"{name}: evidence of another source"
    cls = source.load_collector()
    assert cls.source == name and tuple(cls.produces) == tuple(source.produces), \
        f"{name}: the collector's produces differ from the registry's"
    assert cls.Config is source.config, f"{name}: the collector's Config is not the registered one"
    source.config.model_json_schema()   # a pydantic model


@pytest.mark.parametrize("name", NAMES)
def test_source_has_a_catalog_and_a_rule_for_every_control(name: str) -> None:
    source = sources()[name]
    assert source.catalog_path.is_file(), f"{name}: no catalog file {source.catalog_path.name}"
    entries = yaml.safe_load(source.catalog_path.read_text(encoding="utf-8")) or []
    ids = {e["id"] for e in entries}
    assert ids, f"{name}: an empty catalog"
    assert all(i.split(".")[0] == name for i in ids), f"{name}: the catalog holds another source's controls"
    assert source.rule_modules, f"{name}: no rule module controls/rules/{name}*.py"
    registered = set().union(*(rule_ids(m) for m in source.rule_modules))
    assert ids - registered == set(), f"{name}: controls without a rule: {sorted(ids - registered)}"
    assert registered - ids == set(), f"{name}: rules without a control: {sorted(registered - ids)}"


@pytest.mark.parametrize("name", NAMES)
def test_source_rules_read_only_what_its_collector_produces(name: str) -> None:
    source = sources()[name]
    for control in (c for c in load_catalog() if c.source == name):
        missing = set(control.evidence) - set(source.produces)
        assert not missing, f"{name}: {control.id} reads {sorted(missing)}, which its collector never produces"


@pytest.mark.parametrize("name", NAMES)
def test_source_has_a_demo(name: str) -> None:
    source = sources()[name]
    assert source.demo, f"{name}: no demo (Source.demo)"
    start = load(source.demo)
    assert callable(start), f"{name}: {source.demo} is not a function"


def test_a_missing_piece_is_named(tmp_path: Path) -> None:
    """The checks above fail, naming the source, when a piece is missing."""
    from dataclasses import replace
    aws = sources()["aws"]
    broken = replace(aws, name="widget", catalog=tmp_path / "widget.yaml", rules=(), demo=None)
    assert not broken.catalog_path.is_file()
    assert broken.rule_modules == ()
    (tmp_path / "widget.yaml").write_text("- {id: widget.thing}\n")
    assert rule_ids("controls.rules.okta") and not ({"widget.thing"} & rule_ids("controls.rules.okta"))


def test_new_source_touches_one_registry_line() -> None:
    """The registry is the entry-point group: one line per source in pyproject.toml."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    block = text.split('[project.entry-points."attest.sources"]', 1)[1].split("\n[", 1)[0]
    lines = [line.split("=")[0].strip() for line in block.strip().splitlines() if "=" in line]
    assert sorted(lines) == NAMES
    for name in NAMES:
        importlib.import_module(f"collectors.{name}.source")
