"""The rule registry and the read-only view of evidence a rule gets.

A rule is a plain function registered for one control id::

    @rule("aws.kms.rotation")
    def kms_rotation(ev: EvidenceView, params: dict) -> Iterator[Finding]:
        for record in ev.get("aws.kms.keys"):
            ...
            yield passed(arn) / failed(arn, "why")

Rules never call an API (they cannot import one: see tests/test_architecture.py). They see only
the evidence names their catalog entry declares, and only readable records: state ``ok`` or
``absent``, or ``partial`` with the resources it could not read listed (``Evidence.unknown``;
the engine makes exactly those resources ``error``). The engine turns every other unknown
record into an ``error`` finding itself.
"""
from __future__ import annotations

import importlib
from datetime import datetime
from typing import Any, Callable, Iterable

from attest.model import Evidence, EvidenceState, Finding

RuleFn = Callable[["EvidenceView", dict[str, Any]], Iterable[Finding]]
RULES: dict[str, RuleFn] = {}



def rule(control_id: str) -> Callable[[RuleFn], RuleFn]:
    def register(fn: RuleFn) -> RuleFn:
        if control_id in RULES:
            raise ValueError(f"two rules registered for {control_id}")
        RULES[control_id] = fn
        return fn
    return register


def rule_modules() -> tuple[str, ...]:
    """Every registered source's rule modules (``controls/rules/<source>*.py`` by default)."""
    from attest.sources import sources   # the registry: no collector or SDK is imported
    return tuple(m for source in sources().values() for m in source.rule_modules)


def load_rules() -> dict[str, RuleFn]:
    for module in rule_modules():
        importlib.import_module(module)
    return RULES


class EvidenceView:
    """The evidence one rule may read: declared names only, known states only."""

    def __init__(self, records: Iterable[Evidence], names: Iterable[str], now: datetime) -> None:
        self._names = frozenset(names)
        self._records = [r for r in records if r.name in self._names and r.readable]
        self._records.sort(key=lambda r: (r.name, r.scope))
        self.now = now

    def _check(self, name: str) -> None:
        if name not in self._names:
            raise KeyError(f"evidence {name!r} is not declared by this control in the catalog")

    def get(self, name: str) -> list[Evidence]:
        """Every known record of ``name`` (one per scope), sorted by scope."""
        self._check(name)
        return [r for r in self._records if r.name == name]

    def one(self, name: str, scope: str) -> Evidence | None:
        """The record of ``name`` for ``scope``, or None if it is missing or unknown."""
        self._check(name)
        for r in self._records:
            if r.name == name and r.scope == scope:
                return r
        return None

    def payload(self, name: str, scope: str, default: Any = None) -> Any:
        """The payload of (name, scope); ``default`` when absent, missing or unreadable."""
        r = self.one(name, scope)
        if r is None or r.state is EvidenceState.ABSENT:
            return default
        return r.payload
