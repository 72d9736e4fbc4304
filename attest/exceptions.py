"""Risk acceptance: ``exceptions.yaml`` entries turn matching failing findings into ``excepted``.

    - control: aws.s3.encrypted             # a control id from the catalog
      resource: "arn:aws:s3:::legacy-*"     # fnmatch pattern over the finding's resource
      reason: Legacy bucket, public data only, removal planned in Q1
      approved_by: Jane Doe (CTO)
      approved_on: 2026-10-01               # optional
      expires: 2027-01-31                   # required; from the day after, it stops applying

An expired exception no longer applies; the finding stays ``fail`` and says the exception expired.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from attest.errors import ConfigError
from attest.model import Finding, Status

if TYPE_CHECKING:
    from attest.results import Results


class RiskException(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    control: str
    resource: str = Field(min_length=1)
    reason: str = Field(min_length=3)
    approved_by: str = Field(min_length=2)
    approved_on: date | None = None
    expires: date

    def active(self, now: datetime) -> bool:
        return now.date() <= self.expires

    def to_json(self, now: datetime) -> dict[str, Any]:
        return {"control": self.control, "resource": self.resource, "reason": self.reason,
                "approved_by": self.approved_by,
                "approved_on": self.approved_on.isoformat() if self.approved_on else None,
                "expires": self.expires.isoformat(),
                "status": "active" if self.active(now) else "expired"}


@dataclass
class ExceptionSet:
    entries: list[RiskException]
    source: str = ""

    def apply(self, control_id: str, findings: list[Finding],
              now: datetime) -> tuple[list[Finding], list[dict[str, Any]]]:
        mine = [e for e in self.entries if e.control == control_id]
        if not mine:
            return findings, []
        out: list[Finding] = []
        used: dict[int, dict[str, Any]] = {}
        for f in findings:
            if f.status is not Status.FAIL:
                out.append(f)
                continue
            match = next((e for e in mine if fnmatch.fnmatchcase(f.resource, e.resource)
                          and e.active(now)), None)
            if match is not None:
                out.append(Finding(f.resource, Status.EXCEPTED,
                                   f"{f.detail} [excepted: {match.reason}; approved by "
                                   f"{match.approved_by}; expires {match.expires}]"))
                used[id(match)] = match.to_json(now)
                continue
            expired = next((e for e in mine if fnmatch.fnmatchcase(f.resource, e.resource)), None)
            if expired is not None:
                out.append(Finding(f.resource, f.status,
                                   f"{f.detail} [exception expired on {expired.expires}]"))
                used[id(expired)] = expired.to_json(now)
            else:
                out.append(f)
        return out, list(used.values())

    def to_json(self, now: datetime) -> list[dict[str, Any]]:
        return [e.to_json(now) for e in self.entries]

    @classmethod
    def from_results(cls, results: "Results") -> "ExceptionSet | None":
        """The exceptions a scan applied, as its results.json recorded them (for re-evaluation)."""
        if results.exceptions is None:
            return None
        return cls([RiskException.model_validate(e.model_dump(exclude={"status"}))
                    for e in results.exceptions], "results.json")


def load_exceptions_file(path: Path) -> ExceptionSet:
    from attest.config import line_of, read_yaml, validation_error
    from controls import catalog_by_id
    data, node = read_yaml(path)
    data = data or []
    prefix: tuple[Any, ...] = ()
    if isinstance(data, dict) and "exceptions" in data:
        data, prefix = data["exceptions"], ("exceptions",)
    if not isinstance(data, list):
        raise ConfigError("expected a list of exceptions", file=str(path), line=1)
    catalog = catalog_by_id()
    entries = []
    for i, item in enumerate(data):
        try:
            entry = RiskException.model_validate(item)
        except ValidationError as exc:   # entries numbered from 1, as a person counts them
            raise validation_error(exc, file=str(path), node=node, prefix=prefix + (i,),
                                   entry=i + 1) from None
        if entry.control not in catalog:
            raise ConfigError(f"unknown control id {entry.control!r} (see `attest controls`)",
                              file=str(path), line=line_of(node, prefix + (i, "control")),
                              key=f"entry {i + 1}: control")
        entries.append(entry)
    return ExceptionSet(entries, str(path))


def load_exceptions(config: Any) -> ExceptionSet | None:
    """The exceptions file named by the config (relative to the config file); None if absent."""
    name = config.model.exceptions_file
    if not name:
        return None
    path = Path(name)
    if not path.is_absolute() and config.path is not None:
        path = config.path.parent / path
    if not path.is_file():
        if name != "exceptions.yaml":  # a path other than the default must exist
            raise ConfigError("exceptions file not found", file=str(path), key="exceptions_file")
        return None
    return load_exceptions_file(path)
