from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from attest.engine import aggregate
from attest.errors import ConfigError
from attest.exceptions import load_exceptions_file
from attest.model import Finding, Status

NOW = datetime(2026, 11, 22, 2, 0, tzinfo=timezone.utc)

EXC = """\
- control: aws.s3.encrypted
  resource: "arn:aws:s3:::legacy-*"
  reason: Legacy bucket with public data only
  approved_by: Jane Doe (CTO)
  approved_on: 2026-10-01
  expires: 2027-01-31
- control: aws.s3.encrypted
  resource: "arn:aws:s3:::old-*"
  reason: Migration finished in the summer
  approved_by: Jane Doe (CTO)
  expires: 2026-09-30
"""


@pytest.fixture
def exceptions(tmp_path: Path):
    p = tmp_path / "exceptions.yaml"
    p.write_text(EXC, encoding="utf-8")
    return load_exceptions_file(p)


def test_active_exception_excepts_matching_failure(exceptions) -> None:
    findings = [Finding("arn:aws:s3:::legacy-logs", Status.FAIL, "no default encryption"),
                Finding("arn:aws:s3:::prod", Status.FAIL, "no default encryption"),
                Finding("arn:aws:s3:::legacy-ok", Status.PASS, "")]
    out, applied = exceptions.apply("aws.s3.encrypted", findings, NOW)
    assert [f.status for f in out] == [Status.EXCEPTED, Status.FAIL, Status.PASS]
    assert "approved by Jane Doe (CTO)" in out[0].detail
    assert applied[0]["status"] == "active"
    assert aggregate(out) is Status.FAIL
    assert aggregate(out[:1] + out[2:]) is Status.EXCEPTED


def test_expired_exception_stops_applying_and_says_so(exceptions) -> None:
    out, applied = exceptions.apply("aws.s3.encrypted",
                                    [Finding("arn:aws:s3:::old-x", Status.FAIL, "no encryption")], NOW)
    assert out[0].status is Status.FAIL
    assert "exception expired on 2026-09-30" in out[0].detail
    assert applied == [dict(applied[0], status="expired")]


def test_other_controls_untouched(exceptions) -> None:
    f = [Finding("arn:aws:s3:::legacy-logs", Status.FAIL, "x")]
    assert exceptions.apply("aws.s3.public_access_blocked", f, NOW) == (f, [])


def test_bad_entry_names_line_and_key(tmp_path: Path) -> None:
    p = tmp_path / "exceptions.yaml"
    p.write_text("- control: aws.s3.encrypted\n  resource: x\n  reason: because\n"
                 "  approved_by: me\n  expires: someday\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"exceptions.yaml:5: entry 1: expires: expected a date"):
        load_exceptions_file(p)
    p.write_text("- control: aws.s3.encrypted\n  resource: x\n  reason: ok ok\n  approved_by: me\n"
                 "  expires: 2027-01-01\n  aproved: typo\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"exceptions.yaml:6: entry 1: aproved: unknown key"):
        load_exceptions_file(p)
    p.write_text("- control: aws.nope\n  resource: x\n  reason: because\n  approved_by: me\n"
                 "  expires: 2027-01-01\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"exceptions.yaml:1: entry 1: control: unknown control id"):
        load_exceptions_file(p)


def test_missing_exceptions_file(tmp_path: Path) -> None:
    from attest.config import load_config
    from attest.exceptions import load_exceptions
    cfg = tmp_path / "config.yaml"
    cfg.write_text("exceptions_file: exceptions.yaml\n", encoding="utf-8")
    assert load_exceptions(load_config(cfg)) is None  # the default path may be absent
    cfg.write_text("exceptions_file: risk/accepted.yaml\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="accepted.yaml: exceptions_file: exceptions file not found"):
        load_exceptions(load_config(cfg))
    (tmp_path / "exceptions.yaml").write_text(EXC, encoding="utf-8")
    cfg.write_text("output_dir: out\n", encoding="utf-8")
    assert len(load_exceptions(load_config(cfg)).entries) == 2  # found next to the config


def test_mapping_form_and_line_numbers(tmp_path: Path) -> None:
    p = tmp_path / "exceptions.yaml"
    p.write_text("exceptions:\n" + "".join("  " + line + "\n" for line in EXC.splitlines()),
                 encoding="utf-8")
    assert len(load_exceptions_file(p).entries) == 2
    p.write_text("exceptions:\n  - control: aws.s3.encrypted\n    resource: x\n    reason: because\n"
                 "    approved_by: me\n    expires: soon\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"exceptions.yaml:6: entry 1: expires: "):
        load_exceptions_file(p)
