"""Coverage tables and the coverage page from literal results (no scan needed)."""
from __future__ import annotations

import io
from datetime import date, datetime, timezone

import pandas as pd

from attest.results import Results
from reports.coverage import NO_SCAN, NOT_EVALUATED, Scan, build_coverage, worst
from reports.export import Period, render_coverage

D1, D2, D3, D4 = (date(2026, 10, d) for d in (1, 2, 3, 4))


def scan(day: date, hour: int, statuses: dict[str, str], bundle: str | None = None,
         title: str | None = None) -> Scan:
    started = datetime(day.year, day.month, day.day, hour, tzinfo=timezone.utc)
    controls = [{"id": cid, "title": title or f"title of {cid}", "criteria": ["CC6.1"], "source": "aws",
                 "severity": "high", "status": st,
                 "findings": [{"resource": f"r-{cid}", "status": st, "detail": "d"}]}
                for cid, st in statuses.items()]
    name = bundle or started.strftime("%Y%m%dT%H%M%SZ")
    return Scan(bundle=name, started_at=started,
                results=Results.model_validate({"scan": {"started_at": started.isoformat(),
                                                         "bundle": name}, "controls": controls}))


def test_worst_status_of_a_day():
    assert worst(["pass", "fail", "error"]) == "fail"
    assert worst(["pass", "error"]) == "error"
    assert worst(["pass", "excepted"]) == "excepted"
    assert worst(["not_applicable", "pass"]) == "pass"
    assert worst(["skipped", "not_applicable"]) == "not_applicable"


def test_several_scans_a_day_gaps_and_controls_added_later():
    scans = [scan(D1, 2, {"a.x": "pass"}), scan(D1, 14, {"a.x": "fail"}),
             scan(D3, 2, {"a.x": "pass", "a.y": "error"}), scan(D4, 2, {"a.x": "fail", "a.y": "pass"})]
    cov = build_coverage(scans, D1, D4)
    assert cov.daily.loc["a.x"].tolist() == ["fail", NO_SCAN, "pass", "fail"]
    assert cov.daily.loc["a.y"].tolist() == [NOT_EVALUATED, NO_SCAN, "error", "pass"]
    x = cov.summary.set_index("control").loc["a.x"]
    assert (x.days_in_period, x.days_evaluated, x.days_passing, x.days_failing, x.days_no_scan) \
        == (4, 3, 1, 2, 1)
    assert (x.first_failure, x.last_failure, x.last_status) == ("2026-10-01", "2026-10-04", "fail")
    y = cov.summary.set_index("control").loc["a.y"]
    assert (y.days_evaluated, y.days_error, y.days_not_evaluated) == (2, 1, 1)
    assert pd.isna(y.first_failure)
    assert len(cov.findings) == 3          # every non-pass finding, per scan
    assert cov.findings["bundle"].tolist()[:1] == ["20261001T140000Z"]


def test_csv_and_xlsx_round_trip_to_the_same_frame():
    cov = build_coverage([scan(D1, 2, {"a.x": "pass"}), scan(D2, 2, {"a.x": "fail"})], D1, D3)
    csv = pd.read_csv(io.BytesIO(cov.to_csv()))
    xlsx = pd.read_excel(io.BytesIO(cov.to_xlsx()), sheet_name="summary", engine="openpyxl")
    pd.testing.assert_frame_equal(csv, xlsx)
    assert csv.loc[0, "days_no_scan"] == 1


def test_coverage_page_escapes_names_and_shows_gaps():
    evil = '<script>alert("x")</script>'
    scans = [scan(D1, 2, {evil: "fail"}, title='<img src=x onerror="boom">'), scan(D3, 2, {evil: "pass"})]
    cov = build_coverage(scans, D1, D3)
    html = render_coverage(cov, Period(D1, D3, bundles=[], scans=scans, manifest_sha={}))
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert html.count('class="cell s-no_scan"') == 1
    assert "2026-10-02: no scan" in html
