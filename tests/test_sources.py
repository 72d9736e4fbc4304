"""Meta-lint over the source registry: a source is its package plus its catalog and rules.

For every registered source: its entry is well formed, its collector is the one it names and
produces what it declares, its catalog file exists and lists only its own controls, every
control has a rule in the source's rule modules, every rule reads only evidence this source's
collector produces, and it has a demo. A missing piece fails naming the source and the piece.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

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


def check_entry(source: Source) -> None:
    name = source.name
    assert (ROOT / "collectors" / name / "source.py").is_file(), f"{name}: no collectors/{name}/source.py"
    assert source.produces, f"{name}: declares no evidence"
    assert all(e.split(".")[0] == name for e in source.produces), f"{name}: evidence of another source"
    cls = source.load_collector()
    assert cls.source == name and tuple(cls.produces) == tuple(source.produces), \
        f"{name}: the collector's produces differ from the registry's"
    assert cls.Config is source.config, f"{name}: the collector's Config is not the registered one"
    source.config.model_json_schema()   # a pydantic model


def check_catalog_and_rules(source: Source) -> None:
    name = source.name
    assert source.catalog_path.is_file(), f"{name}: no catalog file {source.catalog_path.name}"
    entries = yaml.safe_load(source.catalog_path.read_text(encoding="utf-8")) or []
    ids = {e["id"] for e in entries}
    assert ids, f"{name}: an empty catalog"
    assert all(i.split(".")[0] == name for i in ids), f"{name}: the catalog holds another source's controls"
    assert source.rule_modules, f"{name}: no rule module controls/rules/{name}*.py"
    registered = set().union(*(rule_ids(m) for m in source.rule_modules))
    assert ids - registered == set(), f"{name}: controls without a rule: {sorted(ids - registered)}"
    assert registered - ids == set(), f"{name}: rules without a control: {sorted(registered - ids)}"


def check_reads(source: Source, controls: list[Any]) -> None:
    for control in controls:
        missing = set(control.evidence) - set(source.produces)
        assert not missing, (f"{source.name}: {control.id} reads {sorted(missing)}, which its "
                             "collector never produces")


def check_demo(source: Source) -> None:
    assert source.demo, f"{source.name}: no demo (Source.demo)"
    start = load(source.demo)
    assert callable(start), f"{source.name}: {source.demo} is not a function"


@pytest.mark.parametrize("name", NAMES)
def test_source_entry_is_complete(name: str) -> None:
    source = sources()[name]
    assert isinstance(source, Source) and source.name == name
    check_entry(source)


@pytest.mark.parametrize("name", NAMES)
def test_source_has_a_catalog_and_a_rule_for_every_control(name: str) -> None:
    check_catalog_and_rules(sources()[name])


@pytest.mark.parametrize("name", NAMES)
def test_source_rules_read_only_what_its_collector_produces(name: str) -> None:
    check_reads(sources()[name], [c for c in load_catalog() if c.source == name])


@pytest.mark.parametrize("name", NAMES)
def test_source_has_a_demo(name: str) -> None:
    check_demo(sources()[name])


def test_a_missing_piece_is_named(tmp_path: Path) -> None:
    """The checks above fail, naming the source and the piece, when a piece is missing."""
    from dataclasses import replace
    from types import SimpleNamespace
    broken = replace(sources()["aws"], name="widget", catalog=tmp_path / "widget.yaml", rules=(),
                     demo=None)

    def failure(check: Any, *args: Any) -> str:
        with pytest.raises(AssertionError) as caught:
            check(broken, *args)
        return str(caught.value).splitlines()[0]
    assert failure(check_entry) == "widget: no collectors/widget/source.py"
    assert failure(check_catalog_and_rules) == "widget: no catalog file widget.yaml"
    (tmp_path / "widget.yaml").write_text("- {id: widget.thing}\n")
    assert failure(check_catalog_and_rules) == "widget: no rule module controls/rules/widget*.py"
    with_rules = replace(broken, rules=("controls.rules.okta",))
    with pytest.raises(AssertionError, match=r"widget: controls without a rule: \['widget.thing'\]"):
        check_catalog_and_rules(with_rules)
    thing = SimpleNamespace(id="widget.thing", evidence=("widget.gizmos",))
    assert failure(check_reads, [thing]) == \
        "widget: widget.thing reads ['widget.gizmos'], which its collector never produces"
    assert failure(check_demo) == "widget: no demo (Source.demo)"


def test_new_source_touches_one_registry_line() -> None:
    """The registry is the entry-point group: one line per source in pyproject.toml."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    block = text.split('[project.entry-points."attest.sources"]', 1)[1].split("\n[", 1)[0]
    lines = [line.split("=")[0].strip() for line in block.strip().splitlines() if "=" in line]
    assert sorted(lines) == NAMES
    for name in NAMES:
        importlib.import_module(f"collectors.{name}.source")
