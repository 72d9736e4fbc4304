"""IAM credential report: generate, poll until ready, decode the CSV into one dict per row."""
from __future__ import annotations

import csv
import io
import time
from typing import Any

from attest.model import EvidenceState
from collectors.aws.session import CallFailed, Target

NOT_READY = ("ReportInProgress", "ReportNotPresent", "ReportExpired")
WAIT_SECONDS = 120


def credential_report(t: Target) -> dict[str, Any]:
    """``GetCredentialReport`` with ``Content`` decoded: ``{"GeneratedTime", "ReportFormat", "Rows"}``.

    Rows keep AWS's column names and string values (``"true"``, ``"N/A"``, ISO times); the
    root user's row is ``user == "<root_account>"``."""
    deadline = time.monotonic() + WAIT_SECONDS
    delay = 0.2
    t.call("iam", "GenerateCredentialReport")
    while True:
        report = t.call("iam", "GetCredentialReport", absent=NOT_READY)
        if report is not None:
            break
        if time.monotonic() > deadline:
            raise CallFailed(EvidenceState.ERROR,
                             f"the credential report was not ready after {WAIT_SECONDS} s")
        time.sleep(delay)
        delay = min(delay * 2, 4.0)
        t.call("iam", "GenerateCredentialReport")
    content = report.pop("Content", b"")
    text = content.decode("utf-8") if isinstance(content, bytes) else str(content)
    report["Rows"] = list(csv.DictReader(io.StringIO(text)))
    return report
