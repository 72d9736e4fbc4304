"""The engine's status rule: never a pass from evidence it did not get."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from attest.engine import aggregate, evaluate_control
from attest.model import Evidence, EvidenceState, Finding, Status
from controls import Control
from controls.rules import RULES, EvidenceView

NOW = datetime(2026, 11, 22, 2, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("statuses,expected", [
    ([], Status.NOT_APPLICABLE),
    ([Status.PASS], Status.PASS),
    ([Status.PASS, Status.ERROR], Status.ERROR),
    ([Status.PASS, Status.ERROR, Status.FAIL], Status.FAIL),
    ([Status.PASS, Status.EXCEPTED], Status.EXCEPTED),
    ([Status.EXCEPTED, Status.ERROR], Status.ERROR),
])
def test_aggregate(statuses: list[Status], expected: Status) -> None:
    assert aggregate([Finding("r", s) for s in statuses]) is expected


@pytest.fixture
def toy_control():
    control = Control(id="test.toy.enabled", title="Toy is enabled", criteria=["CC6.1"],
                      severity="low", evidence=["test.toy"], description="a control for tests",
                      remediation="turn the toy on, please")

    def toy(ev: EvidenceView, params: dict) -> list[Finding]:
        return [Finding(r.scope, Status.PASS if r.payload and r.payload.get("on") else Status.FAIL)
                for r in ev.get("test.toy")]
    RULES[control.id] = toy
    yield control
    del RULES[control.id]


def ev(scope: str, state: EvidenceState, payload=None) -> Evidence:
    return Evidence("test.toy", scope, state, payload, detail="x")


def test_every_region_passing_passes(toy_control: Control) -> None:
    res = evaluate_control(toy_control, [ev("test:a", EvidenceState.OK, {"on": True})], {}, NOW)
    assert res.status is Status.PASS
    assert res.evidence == ["evidence/test/a/test.toy.json"]


def test_denied_region_is_error_not_pass(toy_control: Control) -> None:
    records = [ev("test:a", EvidenceState.OK, {"on": True}), ev("test:b", EvidenceState.DENIED)]
    res = evaluate_control(toy_control, records, {}, NOW)
    assert res.status is Status.ERROR
    assert [f.resource for f in res.findings if f.status is Status.ERROR] == ["test:b"]


@pytest.mark.parametrize("state", [EvidenceState.PARTIAL, EvidenceState.ERROR])
def test_partial_or_failed_evidence_is_error(toy_control: Control, state: EvidenceState) -> None:
    assert evaluate_control(toy_control, [ev("test:a", state, {"on": True})], {}, NOW).status is Status.ERROR


def test_missing_evidence_is_error(toy_control: Control) -> None:
    res = evaluate_control(toy_control, [], {}, NOW)
    assert res.status is Status.ERROR
    assert "no evidence 'test.toy' was collected" in res.findings[0].detail


def test_a_crashing_rule_is_error(toy_control: Control) -> None:
    RULES[toy_control.id] = lambda ev, params: [1 / 0]
    res = evaluate_control(toy_control, [ev("test:a", EvidenceState.OK, {})], {}, NOW)
    assert res.status is Status.ERROR
    assert "ZeroDivisionError" in res.findings[0].detail


def test_view_hides_undeclared_and_unknown_evidence() -> None:
    records = [ev("test:a", EvidenceState.OK, {}), ev("test:b", EvidenceState.DENIED),
               Evidence("other.thing", "test:a", EvidenceState.OK, {})]
    view = EvidenceView(records, ["test.toy"], NOW)
    assert [r.scope for r in view.get("test.toy")] == ["test:a"]
    with pytest.raises(KeyError):
        view.get("other.thing")


def test_a_failed_read_of_some_resources_errors_exactly_those(toy_control) -> None:
    """A partial record that lists what it could not read: the rule judges the rest; exactly the
    listed resources are error (even where the rule would have passed them), never pass."""
    def per_user(ev: EvidenceView, params: dict) -> list[Finding]:
        out = []
        for r in ev.get("test.toy"):
            for user, on in r.payload.items():
                out.append(Finding(user, Status.PASS if on else Status.FAIL))
            out.append(Finding("carol", Status.PASS))   # a rule that ignores what is unknown
        return out
    RULES[toy_control.id] = per_user
    record = Evidence("test.toy", "test:org", EvidenceState.PARTIAL, {"alice": True, "bob": True},
                      detail="2 of 4 users could not be read",
                      unknown={"carol": "GET /carol: 500 after 4 attempts", "dave": "no answer"})
    result = evaluate_control(toy_control, [record], {}, NOW)
    by = {f.resource: f for f in result.findings}
    assert {k: f.status for k, f in by.items()} == {"alice": Status.PASS, "bob": Status.PASS,
                                                    "carol": Status.ERROR, "dave": Status.ERROR}
    assert "500 after 4 attempts" in by["carol"].detail
    assert result.status is Status.ERROR
    # a partial record that does not list its unknowns is not readable at all
    blind = Evidence("test.toy", "test:org", EvidenceState.PARTIAL, {"alice": True})
    result = evaluate_control(toy_control, [blind], {}, NOW)
    assert [f.status for f in result.findings] == [Status.ERROR]
