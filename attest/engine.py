"""Judge evidence: the only place that decides pass, fail, error or not_applicable.

Status rule, for one control:
  * every declared evidence name must have at least one record, else an ``error`` finding;
  * every record that is not known (denied, error, partial, unreachable) is an ``error`` finding
    for its scope, unless it lists the resources it could not read (``Evidence.unknown``): then
    the rule judges the rest, and exactly those resources are ``error`` (never ``pass``);
  * a rule that raises is an ``error`` finding (a broken rule never passes);
  * control status: ``fail`` if any finding fails; else ``error`` if any finding errors; else
    ``excepted`` if a failure was covered by an exception; else ``pass`` if any finding passes;
    else ``not_applicable``.
"""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Iterable, Iterator, Protocol, Sequence

from attest.model import STATUS_ORDER, ControlResult, Evidence, Finding, Status, errored
from controls import Control
from controls.rules import EvidenceView, load_rules

log = logging.getLogger("attest.engine")


class EvidenceStore(Protocol):
    """Evidence kept outside memory (the files of the bundle being built): the engine asks for
    the records of one control's evidence names at a time, so what is held while judging is one
    control's evidence, not the estate's."""

    def select(self, names: frozenset[str]) -> list[Evidence]: ...


Records = Sequence[Evidence] | EvidenceStore


def _records_of(records: Records, names: frozenset[str]) -> list[Evidence]:
    if hasattr(records, "select"):
        return records.select(names)   # type: ignore[union-attr]
    return [r.as_stored() for r in records if r.name in names]   # type: ignore[union-attr]


def aggregate(findings: Iterable[Finding]) -> Status:
    statuses = {f.status for f in findings}
    return next((s for s in STATUS_ORDER[:4] if s in statuses), Status.NOT_APPLICABLE)


def evaluate_control(control: Control, records: Records, params: dict[str, Any],
                     now: datetime, exceptions: Any = None) -> ControlResult:
    declared = frozenset(control.evidence)
    mine = _records_of(records, declared)
    findings: list[Finding] = []
    for name in sorted(declared - {r.name for r in mine}):
        findings.append(errored(f"{control.source}", f"no evidence '{name}' was collected"))
    for r in sorted(mine, key=lambda r: (r.name, r.scope)):
        if not r.readable:
            findings.append(errored(r.scope, f"{r.name} is {r.state.value}: {r.detail}".rstrip(": ")))
    rule = load_rules().get(control.id)
    if rule is None:
        findings.append(errored(control.source, f"no rule is registered for {control.id}"))
    else:
        try:
            findings.extend(rule(EvidenceView(mine, declared, now), params))
        except Exception as exc:  # a broken rule or an unexpected payload shape is never a pass
            log.exception("rule %s failed", control.id)
            findings.append(errored(control.source,
                                    f"rule could not evaluate the evidence: {type(exc).__name__}: {exc}"))
    findings = _unknown_resources_error(findings, mine)
    applied: list[dict[str, Any]] = []
    if exceptions is not None:
        findings, applied = exceptions.apply(control.id, findings, now)
    return ControlResult(
        id=control.id, title=control.title, criteria=list(control.criteria), source=control.source,
        severity=control.severity, status=aggregate(findings), findings=findings,
        evidence=sorted({r.path for r in mine}), remediation=control.remediation,
        description=control.description, exceptions=applied)


def _unknown_resources_error(findings: list[Finding], records: list[Evidence]) -> list[Finding]:
    """Every resource a readable-but-partial record could not read is ``error``, whatever the
    rule said of it; one the rule did not mention is added."""
    unknown = {key: f"{r.name} could not be read for it: {why}"
               for r in records if not r.state.known and r.readable
               for key, why in r.unknown.items()}
    if not unknown:
        return findings
    out = [errored(f.resource, unknown[f.resource]) if f.resource in unknown else f for f in findings]
    said = {f.resource for f in out}
    out.extend(errored(key, why) for key, why in sorted(unknown.items()) if key not in said)
    return out


def skipped_control(control: Control, reason: str) -> ControlResult:
    return ControlResult(
        id=control.id, title=control.title, criteria=list(control.criteria), source=control.source,
        severity=control.severity, status=Status.SKIPPED, findings=[], evidence=[],
        remediation=control.remediation, description=control.description + f" ({reason})")


def evaluate(controls: Iterable[Control], records: Records, params: dict[str, dict[str, Any]],
             now: datetime, skipped_sources: dict[str, str] | None = None,
             exceptions: Any = None) -> list[ControlResult]:
    """Evaluate every control; controls of a skipped source are reported as ``skipped``."""
    return list(judge(controls, records, params, now, skipped_sources, exceptions))


def judge(controls: Iterable[Control], records: Records, params: dict[str, dict[str, Any]],
          now: datetime, skipped_sources: dict[str, str] | None = None,
          exceptions: Any = None) -> Iterator[ControlResult]:
    """:func:`evaluate`, one control at a time: a caller that keeps each verdict in another form
    (a scan keeps results.json's records) never holds every control's findings twice."""
    skipped_sources = skipped_sources or {}
    for control in controls:
        if control.source in skipped_sources:
            yield skipped_control(control, skipped_sources[control.source])
            continue
        yield evaluate_control(control, records, control.param_values(params.get(control.id)),
                               now, exceptions)
