"""results.json: the typed contract between the engine and everything that reads a scan's verdicts
(the HTML report, CSV/JUnit, the auditor export and OSCAL, ``attest diff``, alerts, CI pipelines).

    Results
    ├── scan: ScanInfo            id, bundle, started_at, finished_at, tool_version, demo,
    │                             config_digest, sources {name: SourceStatus}, incomplete, params,
    │                             re_evaluated_from (only in ``attest evaluate --out`` files)
    ├── summary: Summary          counts per status, readiness, total
    ├── controls: [ControlRecord] id, title, criteria, source, severity, status, findings
    │                             [FindingRecord], evidence, remediation, description, exceptions
    └── exceptions: [ExceptionRecord] | None   only when an exceptions file was loaded

Written in one place: :func:`build_results` makes the document from the engine's
:class:`~attest.model.ControlResult` s (for ``attest scan`` and ``attest evaluate`` alike) and
:meth:`Results.to_bytes` gives its canonical JSON. Read in one place: :meth:`Results.load` (a
bundle folder or a results file) and :meth:`Results.from_bytes`; a document that does not fit is a
one-line :class:`~attest.errors.UsageError` naming the file.

The JSON Schema shipped in ``attest/schemas/results.schema.json`` is generated from these models;
regenerate it after changing them with ``python -m attest.results > attest/schemas/results.schema.json``
(``tests/test_results.py`` fails while the shipped file differs).
"""
from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Any, ClassVar, Iterable, Iterator, Literal

from pydantic import (BaseModel, ConfigDict, Field, ValidationError, field_serializer,
                      field_validator, model_serializer, model_validator)

from attest.errors import UsageError
from attest.model import ControlResult, Status, canonical_json_pieces, isoformat, parse_time, readiness

__all__ = ["ControlRecord", "ExceptionRecord", "FindingRecord", "RESULTS", "Results", "SCHEMA_ID",
           "SCHEMA_PATH", "ScanInfo", "SourceStatus", "Summary", "build_results", "schema",
           "schema_text"]

RESULTS = "results.json"
SCHEMA_PATH = Path(__file__).parent / "schemas" / "results.schema.json"
SCHEMA_ID = "urn:attest:schema:results.json:1"


class _Record(BaseModel):
    """Frozen; keys a newer attest may add are ignored; ``_OMIT_IF_NONE`` fields are left out of the
    JSON when unset, as the writer always has."""
    model_config = ConfigDict(frozen=True, extra="ignore", use_enum_values=False)
    _OMIT_IF_NONE: ClassVar[tuple[str, ...]] = ()

    @model_serializer(mode="wrap")
    def _omit_unset(self, handler: Any) -> Any:
        data = handler(self)
        for name in self._OMIT_IF_NONE:
            if data.get(name) is None:
                data.pop(name, None)
        return data


def _time(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return parse_time(value)
    if not isinstance(value, str):
        raise ValueError("expected an ISO-8601 time")
    try:
        return parse_time(value)
    except ValueError:
        raise ValueError(f"not an ISO-8601 time: {value!r}") from None


class FindingRecord(_Record):
    """One verdict on one resource."""
    _OMIT_IF_NONE: ClassVar[tuple[str, ...]] = ("facts",)
    resource: str = Field(description="What was judged: an ARN, owner/repo, owner/repo#number, a "
                                      "login, a document, or a scope such as aws:<account>:<region> "
                                      "when the evidence of that scope could not be judged.")
    status: Status = Field(description="The verdict on this resource.")
    detail: str = Field("", description="Why, in one line, naming the resource.")
    facts: dict[str, Any] | None = Field(
        None, description="Structured details a report shows without parsing the detail, e.g. a "
                          "manual document's document_state (current, expiring, expired, missing, "
                          "changed), file, sha256 and valid_until. Left out when there are none.")


class ExceptionRecord(_Record):
    """An approved risk exception, as the scan saw it (from the config's exceptions file)."""
    control: str = Field(description="The control id the exception applies to.")
    resource: str = Field(description="Resource pattern (fnmatch) the exception covers.")
    reason: str = Field(description="Why the risk is accepted.")
    approved_by: str = Field(description="Who approved it.")
    approved_on: date | None = Field(None, description="When it was approved (YYYY-MM-DD), if known.")
    expires: date = Field(description="Last day it is in force (YYYY-MM-DD, UTC).")
    status: Literal["active", "expired"] = Field(
        description="active: in force at the scan's start; expired: its last day has passed, so "
                    "the failures it covered fail again.")


class ControlRecord(_Record):
    """One control's verdict in one scan, with the catalog facts a report needs."""
    id: str = Field(description="Control id, <source>.<service>.<property>, e.g. aws.iam.root_mfa.")
    title: str = Field("", description="What the control checks, in one line.")
    criteria: list[str] = Field(default_factory=list,
                                description="SOC 2 Trust Services Criteria ids, e.g. CC6.1.")
    source: str = Field("", description="The evidence source (aws, github, okta, datadog, manual); "
                                        "when absent, the first dot-part of the id.")
    severity: str = Field("", description="low, medium, high or critical.")
    status: Status = Field(description="fail if any finding fails; else error if any could not be "
                                       "judged; else excepted; else pass if any passes; else "
                                       "not_applicable. skipped: the source is not configured.")
    findings: list[FindingRecord] = Field(default_factory=list,
                                          description="One verdict per resource.")
    evidence: list[str] = Field(default_factory=list,
                                description="Bundle-relative paths of the evidence files judged "
                                            "(their sha256 is in the bundle's manifest.json).")
    remediation: str = Field("", description="How to fix a failure.")
    description: str = Field("", description="What passing means, from the catalog.")
    exceptions: list[ExceptionRecord] = Field(default_factory=list,
                                              description="Exceptions applied to this control's "
                                                          "findings (active or expired).")

    @model_validator(mode="before")
    @classmethod
    def _source_from_id(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("source") and isinstance(data.get("id"), str):
            return {**data, "source": data["id"].split(".", 1)[0]}
        return data

    @classmethod
    def of(cls, result: ControlResult) -> "ControlRecord":
        """The record of one engine verdict."""
        return cls.model_validate(result.to_json())

    def to_dict(self) -> dict[str, Any]:
        """Its JSON value (what canonical JSON asks a value it does not know for)."""
        return self.model_dump(mode="json")

    def failing(self) -> list[FindingRecord]:
        """Findings that fail or could not be judged."""
        return [f for f in self.findings if f.status in (Status.FAIL, Status.ERROR)]


class SourceStatus(_Record):
    """How the collection of one source went."""
    _OMIT_IF_NONE: ClassVar[tuple[str, ...]] = ("detail",)
    status: Literal["collected", "failed", "skipped", "unreachable"] = Field(
        description="collected: the collector ran to the end (single calls may still have been "
                    "denied: see scan.incomplete); failed: the collector crashed, its controls are "
                    "error; skipped: the source is not configured, its controls are skipped; "
                    "unreachable: no call of the source got any answer (DNS, refused, timeout).")
    detail: str | None = Field(None, description="Why it failed or was skipped.")

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, data: Any) -> Any:
        if isinstance(data, str):   # the first bundles wrote "collected" / "failed: <why>"
            status, _, detail = data.partition(": ")
            return {"status": status, "detail": detail or None}
        return data


class ScanInfo(_Record):
    """When, how and with what the scan ran."""
    _OMIT_IF_NONE: ClassVar[tuple[str, ...]] = ("re_evaluated_from", "selection")
    id: str = Field("", description="Scan id (a UUID); the manifest's scan_id and the log lines "
                                    "carry the same id.")
    bundle: str | None = Field(None, description="Bundle name: the UTC start time, "
                                                 "YYYYMMDDTHHMMSSZ, -N when several sealed in one "
                                                 "second.")
    started_at: datetime = Field(description="When the scan started (UTC, ISO 8601); evidence "
                                             "windows and expiry dates are judged at this time.")
    finished_at: datetime | None = Field(None, description="When the bundle was sealed (UTC).")
    tool_version: str = Field("", description="attest version that wrote the results.")
    demo: bool = Field(False, description="True for `attest scan --demo` (a fictional company).")
    config_digest: str = Field("", description="sha256 of the config (secrets are ${ENV} "
                                               "references there, never values).")
    sources: dict[str, SourceStatus] = Field(default_factory=dict,
                                             description="Each evidence source and how its "
                                                         "collection went.")
    incomplete: list[str] = Field(default_factory=list,
                                  description="'<evidence name> <scope>' of every evidence item "
                                              "that was denied, errored or partial: the controls "
                                              "reading it are error, never pass.")
    params: dict[str, dict[str, Any]] = Field(default_factory=dict,
                                              description="Control parameters the config set "
                                                          "(control id -> name -> value).")
    re_evaluated_from: str | None = Field(None, description="Only in `attest evaluate --out` "
                                                            "files: the bundle whose stored evidence "
                                                            "was judged again.")
    selection: dict[str, list[str]] | None = Field(
        None, description="Only for a narrowed run (`attest scan --only` / `--controls`): the "
                          "sources and control ids it was limited to; other sources are skipped "
                          "and other controls absent from this scan.")

    @field_validator("started_at", "finished_at", mode="before")
    @classmethod
    def _parse_times(cls, value: Any) -> datetime | None:
        return _time(value)

    @field_serializer("started_at", "finished_at")
    def _iso(self, value: datetime | None) -> str | None:
        return isoformat(value) if value is not None else None


class Summary(_Record):
    """Counts over the controls."""
    counts: dict[Status, int] = Field(description="Number of controls per status (every status "
                                                  "present, 0 when none).")
    readiness: float | None = Field(None, description="Percent of judged controls (pass, fail, "
                                                      "error, excepted) that pass or are excepted, "
                                                      "one decimal; null when none was judged.")
    total: int = Field(0, description="Number of controls.")

    @model_validator(mode="before")
    @classmethod
    def _complete(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("counts"), dict):
            counts = {**{s.value: 0 for s in Status}, **data["counts"]}
            data = {"readiness": readiness(counts), "total": sum(counts.values()), **data,
                    "counts": counts}
        return data

    @classmethod
    def of(cls, controls: Iterable[ControlRecord]) -> "Summary":
        counts = {s: 0 for s in Status}
        for c in controls:
            counts[c.status] += 1
        return cls(counts=counts, readiness=readiness({s.value: n for s, n in counts.items()}),
                   total=sum(counts.values()))


class Results(_Record):
    """results.json of an attest bundle: the verdict on every control of the catalog in one scan,
    with its findings per resource and the evidence files judged. Written by `attest scan` (and by
    `attest evaluate --out`); a missing, partial or denied piece of evidence is status error,
    never pass. Generated from attest.results.Results."""
    model_config = ConfigDict(title="attest results.json", json_schema_extra={
        "$id": SCHEMA_ID, "$schema": "https://json-schema.org/draft/2020-12/schema"})
    _OMIT_IF_NONE: ClassVar[tuple[str, ...]] = ("exceptions",)
    scan: ScanInfo = Field(description="When, how and with what the scan ran.")
    controls: list[ControlRecord] = Field(description="One entry per control of the catalog, in "
                                                      "catalog order.")
    summary: Summary = Field(default_factory=lambda data: Summary.of(data.get("controls", [])),
                             description="Counts over the controls (computed from them when "
                                         "absent).")
    exceptions: list[ExceptionRecord] | None = Field(
        None, description="Every exception in the config's exceptions file, with its status at the "
                          "scan's start; absent when no exceptions file was loaded.")

    # -- reading -------------------------------------------------------------------------------

    @classmethod
    def from_bytes(cls, data: bytes | str, origin: str | Path) -> "Results":
        """Parse one results.json; ``origin`` names it in the one-line UsageError."""
        try:
            raw = json.loads(data)
        except ValueError as exc:
            raise UsageError(f"{origin}: unreadable results: {exc}") from None
        return cls.from_json(raw, origin)

    @classmethod
    def from_json(cls, raw: Any, origin: str | Path) -> "Results":
        if not isinstance(raw, dict) or not isinstance(raw.get("controls"), list):
            raise UsageError(f"{origin}: not an attest results document (no 'controls' list)")
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            raise UsageError(f"{origin}: not an attest results document: {_first_problem(exc)}") \
                from None

    @classmethod
    def load(cls, target: str | Path) -> "Results":
        """results.json of a bundle folder, or a results file itself."""
        path = Path(target)
        file = path / RESULTS if path.is_dir() else path
        if not file.is_file():
            raise UsageError(f"{target}: not a bundle (no {RESULTS}) or results file")
        try:
            data = file.read_bytes()
        except OSError as exc:
            raise UsageError(f"{file}: unreadable results: {exc}") from None
        return cls.from_bytes(data, file)

    # -- writing -------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def to_bytes(self) -> bytes:
        """The canonical JSON written to results.json (sorted keys, 2-space indent, UTF-8)."""
        return b"".join(self.json_pieces())

    def json_pieces(self) -> Iterator[bytes]:
        """:meth:`to_bytes`, in pieces, each control turned into JSON values only as it is
        written: 75,000 findings are never held a second time as dicts, nor as one text."""
        data = self.model_dump(mode="json", exclude={"controls"})
        data["controls"] = list(self.controls)   # each dumped by ControlRecord.to_dict, in turn
        return canonical_json_pieces(data)

    # -- convenience ---------------------------------------------------------------------------

    def control(self, control_id: str) -> ControlRecord | None:
        return next((c for c in self.controls if c.id == control_id), None)

    def statuses(self) -> dict[str, Status]:
        """control id -> status."""
        return {c.id: c.status for c in self.controls}

    def sealed(self, *, bundle: str, finished_at: datetime) -> "Results":
        """The same results with the bundle name and seal time filled in."""
        return self.model_copy(update={"scan": self.scan.model_copy(
            update={"bundle": bundle, "finished_at": finished_at})})


def build_results(controls: Iterable[ControlResult], scan: ScanInfo,
                  exceptions: list[dict[str, Any]] | None = None) -> Results:
    """The results document of the engine's verdicts: the one writer for ``attest scan`` and
    ``attest evaluate``."""
    records = [ControlRecord.of(r) for r in controls]
    return Results(scan=scan, controls=records, summary=Summary.of(records),
                   exceptions=None if exceptions is None
                   else [ExceptionRecord.model_validate(e) for e in exceptions])


def _first_problem(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(x) for x in err["loc"]) or "(top level)"
    if err["type"] == "missing":
        return f"{loc}: missing"
    msg = err["msg"].removeprefix("Value error, ")
    shown = err.get("input")
    if shown is not None and not isinstance(shown, (dict, list)):
        msg = f"{msg} (got {shown!r})"
    return f"{loc}: {msg}"


def schema() -> dict[str, Any]:
    """The JSON Schema of results.json (draft 2020-12), generated from :class:`Results`."""
    return Results.model_json_schema()


def schema_text() -> str:
    """The shipped schema file's exact text."""
    return json.dumps(schema(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":  # python -m attest.results > attest/schemas/results.schema.json
    print(schema_text(), end="")
