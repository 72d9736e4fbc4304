from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET

from attest.results import Results
from reports.formats import to_csv, to_junit

RESULTS_JSON = {
    "scan": {"started_at": "2026-11-22T02:00:00Z"},
    "controls": [
        {"id": "aws.s3.encrypted", "title": "Buckets encrypted", "criteria": ["CC6.1"], "source": "aws",
         "severity": "high", "status": "fail",
         "findings": [{"resource": "arn:aws:s3:::a<b>", "status": "fail", "detail": "no SSE, \"x\""},
                      {"resource": "arn:aws:s3:::c", "status": "pass", "detail": ""}]},
        {"id": "aws.kms.rotation", "title": "KMS rotation", "criteria": ["CC6.1"], "source": "aws",
         "severity": "medium", "status": "error",
         "findings": [{"resource": "aws:1:us-east-1", "status": "error", "detail": "denied"}]},
        {"id": "aws.rds.backups", "title": "Backups", "criteria": ["A1.2"], "source": "aws",
         "severity": "medium", "status": "not_applicable", "findings": []},
        {"id": "okta.mfa_enrolled", "title": "MFA", "criteria": ["CC6.1"], "source": "okta",
         "severity": "high", "status": "skipped", "findings": []},
        {"id": "aws.iam.root_mfa", "title": "Root MFA", "criteria": ["CC6.1"], "source": "aws",
         "severity": "critical", "status": "pass", "findings": [{"resource": "r", "status": "pass", "detail": ""}]},
    ],
}
RESULTS = Results.model_validate(RESULTS_JSON)


def test_junit_one_case_per_control() -> None:
    suite = ET.fromstring(to_junit(RESULTS).split("\n", 1)[1])
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [c["id"] for c in RESULTS_JSON["controls"]]
    assert suite.get("tests") == "5" and suite.get("failures") == "1" and suite.get("errors") == "1"
    assert cases[0].find("failure").text == 'fail: arn:aws:s3:::a<b>: no SSE, "x"'
    assert cases[1].find("error") is not None
    assert cases[2].find("skipped") is not None and cases[3].find("skipped") is not None
    assert list(cases[4]) == []


def test_csv_one_row_per_finding() -> None:
    rows = list(csv.DictReader(io.StringIO(to_csv(RESULTS))))
    assert len(rows) == 2 + 1 + 1 + 1 + 1
    assert rows[0]["resource"] == "arn:aws:s3:::a<b>" and rows[0]["detail"] == 'no SSE, "x"'
    assert rows[3]["control_status"] == "not_applicable" and rows[3]["resource"] == ""
