"""Meta-lint over the whole catalog: catalog, rules, collectors and tests agree."""
from __future__ import annotations

from pathlib import Path

import pytest

from attest.sources import sources
from controls import criteria, load_catalog
from controls.rules import load_rules

ROOT = Path(__file__).resolve().parents[2]
CATALOG = load_catalog()
PRODUCED = {name for source in sources().values() for name in source.produces}


def test_every_control_has_exactly_one_rule_and_every_rule_a_control() -> None:
    rules = load_rules()
    ids = {c.id for c in CATALOG}
    assert ids - rules.keys() == set(), "controls without a rule"
    assert {r for r in rules if not r.startswith("test.")} - ids == set(), "rules without a control"


@pytest.mark.parametrize("control", CATALOG, ids=lambda c: c.id)
def test_control_is_well_formed(control) -> None:
    assert control.source in sources(), f"{control.id}: no collector for source {control.source}"
    assert control.evidence, f"{control.id} reads no evidence"
    for name in control.evidence:
        assert name in PRODUCED, f"{control.id} reads {name}, which no collector produces"
        assert name.split(".")[0] == control.source
    assert all(c in criteria() for c in control.criteria)
    for pname, param in control.params.items():
        assert param.check(param.default) is None, f"{control.id}.{pname}: bad default"
    assert control.remediation.strip() and control.description.strip()


@pytest.mark.parametrize("control", [c for c in CATALOG if c.kind == "automated"], ids=lambda c: c.id)
def test_every_automated_control_is_named_in_a_test(control) -> None:
    tests = "".join(p.read_text(encoding="utf-8") for p in (ROOT / "tests").rglob("test_*.py")
                    if p.name != "test_catalog.py")
    assert control.id in tests, f"no test mentions {control.id}"
