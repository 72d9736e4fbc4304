"""Machine formats of a scan's results for CI pipelines: CSV (one row per finding) and JUnit XML
(one test case per control: fail -> <failure>, error -> <error>, not judged -> <skipped>)."""
from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from typing import Callable

from attest.model import Status, isoformat
from attest.results import ControlRecord, Results

CSV_COLUMNS = ("control", "title", "criteria", "severity", "control_status", "resource",
               "finding_status", "detail")


def to_csv(results: Results) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for c in results.controls:
        base = (c.id, c.title, " ".join(c.criteria), c.severity, c.status.value)
        if not c.findings:
            writer.writerow(base + ("", "", ""))
        for f in c.findings:
            writer.writerow(base + (f.resource, f.status.value, f.detail))
    return buf.getvalue()


def _lines(c: ControlRecord, statuses: tuple[str, ...]) -> str:
    return "\n".join(f"{f.status.value}: {f.resource}: {f.detail}" for f in c.findings
                     if f.status in statuses)


def to_junit(results: Results) -> str:
    controls = results.controls
    count = lambda *s: sum(1 for c in controls if c.status in s)  # noqa: E731
    suite = ET.Element("testsuite", name="attest", tests=str(len(controls)),
                       failures=str(count("fail")), errors=str(count("error")),
                       skipped=str(count("skipped", "not_applicable")),
                       timestamp=isoformat(results.scan.started_at))
    for c in controls:
        case = ET.SubElement(suite, "testcase", classname=f"attest.{c.source}", name=c.id)
        title = f"{c.title} ({', '.join(c.criteria)})"
        if c.status is Status.FAIL:
            el = ET.SubElement(case, "failure", message=title, type="fail")
            el.text = _lines(c, ("fail",))
        elif c.status is Status.ERROR:
            el = ET.SubElement(case, "error", message=title, type="error")
            el.text = _lines(c, ("error",))
        elif c.status in ("skipped", "not_applicable"):
            ET.SubElement(case, "skipped", message=c.status.value)
        if c.status is Status.EXCEPTED:
            ET.SubElement(case, "system-out").text = _lines(c, ("excepted",))
    ET.indent(suite)
    return ET.tostring(ET.ElementTree(suite).getroot(), encoding="unicode", xml_declaration=True) + "\n"


FORMATS: dict[str, Callable[[Results], str]] = {"csv": to_csv, "junit": to_junit}
