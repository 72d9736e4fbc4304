"""The HTML report in a real headless Chromium (Playwright): it renders, filters, sorts, makes
no network request, logs no error, and runs no script that came from an API."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import pytest

from attest.results import Results
from reports.html import render_report

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
PWN_SCRIPT = "<script>window.__pwned=1</script>"
PWN_IMG = '<img src=x onerror="window.__pwned=1">'

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason="Debian's chromium is not installed at /usr/bin/chromium "
                                       "(apt-get install -y chromium)")


def _control(cid: str, status: str, criteria: list[str], findings: list[tuple[str, str, str]],
             severity: str = "high") -> dict[str, Any]:
    return {"id": cid, "title": f"Title {cid} {PWN_IMG}", "criteria": criteria,
            "source": cid.split(".")[0], "severity": severity, "status": status,
            "findings": [{"resource": r, "status": s, "detail": d} for r, s, d in findings],
            "evidence": [f"evidence/{cid.split('.')[0]}/x/{cid}.json"],
            "remediation": f"Fix it {PWN_SCRIPT}", "description": "desc", "exceptions": []}


def _results(bundle: str, readiness: float, controls: list[dict[str, Any]]) -> dict[str, Any]:
    counts = {s: sum(1 for c in controls if c["status"] == s)
              for s in ("pass", "fail", "error", "not_applicable", "excepted", "skipped")}
    return {"scan": {"id": "s", "bundle": bundle, "started_at": f"{bundle[:4]}-{bundle[4:6]}-"
                     f"{bundle[6:8]}T09:00:00Z", "finished_at": None, "tool_version": "0.1.0",
                     "demo": True, "config_digest": "d" * 64, "incomplete": [], "params": {},
                     "sources": {"aws": {"status": "collected"}, "github": {"status": "collected"},
                                 "okta": {"status": "skipped", "detail": f"no section {PWN_SCRIPT}"}}},
            "summary": {"counts": counts, "readiness": readiness, "total": len(controls)},
            "controls": controls}


CONTROLS = [
    _control("aws.iam.root_mfa", "pass", ["CC6.1"], [("arn:aws:iam::1:root", "pass", "")], "critical"),
    _control("aws.s3.public_access_block", "fail", ["CC6.1", "CC6.6"],
             [(PWN_SCRIPT, "fail", f"bucket policy allows * {PWN_IMG}"), ("arn:aws:s3:::ok", "pass", "")]),
    _control("github.branch_protection", "fail", ["CC8.1"], [("acme/api", "fail", "no reviews")], "medium"),
    _control("aws.guardduty.enabled", "error", ["CC7.2"], [("aws:1:eu-west-1", "error", "denied")]),
    _control("aws.rds.backups", "pass", ["A1.2"], [("db-1", "pass", "")], "low"),
    _control("okta.mfa", "skipped", ["CC6.1"], []),
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


@pytest.fixture()
def report(tmp_path: Path) -> Path:
    prev = tmp_path / "out" / "20250301T090000Z"
    prev.mkdir(parents=True)
    (prev / "results.json").write_text(json.dumps(_results("20250301T090000Z", 40.0, CONTROLS[:2])))
    html = render_report(Results.model_validate(_results("20250302T090000Z", 50.0, CONTROLS)), [prev],
                         evidence_sha256={"evidence/aws/x/aws.iam.root_mfa.json": "ab" * 32})
    path = tmp_path / "report.html"
    path.write_text(html, encoding="utf-8")
    return path


@pytest.fixture()
def page(browser: Any, report: Path) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    pg.problems = []     # console errors and page errors
    pg.requests = []
    pg.on("console", lambda m: pg.problems.append(f"console {m.type}: {m.text}")
          if m.type in ("error", "warning") else None)
    pg.on("pageerror", lambda e: pg.problems.append(f"pageerror: {e}"))
    pg.on("request", lambda r: pg.requests.append(r.url))
    pg.goto(report.as_uri())
    pg.wait_for_load_state("load")
    yield pg
    context.close()


def visible_ids(page: Any) -> list[str]:
    return page.eval_on_selector_all(
        "#controls tbody.control:not([hidden]) .cid", "els => els.map(e => e.textContent)")


def test_renders_offline_without_errors_or_injection(page: Any, report: Path) -> None:
    assert page.locator("#readiness").text_content() == "50.0%"
    assert page.locator("#readiness").is_visible()
    assert page.locator("#shown").text_content() == "6 of 6 controls"   # the script ran
    assert page.locator("#trend .trend-point").count() == 2
    assert page.evaluate("typeof window.__pwned") == "undefined"
    row = page.locator("#controls tbody.control", has_text="aws.s3.public_access_block")
    row.locator("tr.summary").click()
    details = row.locator("tr.details")
    assert details.is_visible()
    assert PWN_SCRIPT in details.inner_text()
    assert PWN_IMG in details.inner_text()
    assert page.locator("img").count() == 0
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.requests == [report.as_uri()]
    assert page.problems == []


def test_filters_hide_rows(page: Any) -> None:
    page.select_option("#f-status", "fail")
    assert sorted(visible_ids(page)) == ["aws.s3.public_access_block", "github.branch_protection"]
    assert page.locator("#controls tbody.control", has_text="aws.iam.root_mfa").is_hidden()
    assert page.locator("#shown").text_content() == "2 of 6 controls"
    page.select_option("#f-source", "github")
    assert visible_ids(page) == ["github.branch_protection"]
    page.click("#f-reset")
    page.select_option("#f-criterion", "CC7")
    assert visible_ids(page) == ["aws.guardduty.enabled"]
    page.click("#f-reset")
    page.fill("#f-text", "<script>window")           # search matches failing resources too
    assert visible_ids(page) == ["aws.s3.public_access_block"]
    page.click("#f-reset")
    page.click('.family[data-family="A1"]')          # a family card filters by family
    assert visible_ids(page) == ["aws.rds.backups"]
    assert page.problems == []


def test_sorting_by_column(page: Any) -> None:
    ids = sorted(c["id"] for c in CONTROLS)
    page.click('#controls th[data-sort="id"]')
    assert visible_ids(page) == ids
    assert page.get_attribute('#controls th[data-sort="id"]', "aria-sort") == "ascending"
    page.click('#controls th[data-sort="id"]')
    assert visible_ids(page) == ids[::-1]
    page.click('#controls th[data-sort="severity"]')
    assert visible_ids(page)[0] == "aws.iam.root_mfa"     # critical first
    assert visible_ids(page)[-1] == "aws.rds.backups"     # low last
    page.click('#controls th[data-sort="status"]')
    assert [i.split(".")[0] for i in visible_ids(page)][:2] == ["aws", "github"]
    assert visible_ids(page)[-1] == "okta.mfa"            # skipped last
    assert page.problems == []


# --- the demo's own report, as `attest scan --demo` writes it, at phone and desktop widths -----

WIDTHS = (320, 420, 1280)


@pytest.fixture(scope="module")
def demo_out(demo, tmp_path_factory) -> Path:
    """Two signed demo scans in one output folder, as `attest scan --demo` runs them (the
    second report has a changes panel)."""
    from datetime import timedelta

    from attest.config import load_config
    from collectors.manual.demo import demo_signing_key, seed_manual
    from attest.scan import run_scan
    from tests.conftest import NOW
    out = tmp_path_factory.mktemp("browser") / "demo out"       # a space: the command quotes it
    key, _ = demo_signing_key(out)
    config = load_config(None, overrides={**demo.config,
                                          "signing": {"private_key_path": str(key)}})
    seed_manual(out, NOW)
    for when in (NOW, NOW + timedelta(days=1)):
        run_scan(config, out_dir=out, now=when, demo=True)
    return out


def _open(browser: Any, report: Path, width: int) -> Any:
    context = browser.new_context(viewport={"width": width, "height": 900})
    pg = context.new_page()
    pg.problems, pg.requests = [], []
    pg.on("console", lambda m: pg.problems.append(f"console {m.type}: {m.text}")
          if m.type in ("error", "warning") else None)
    pg.on("pageerror", lambda e: pg.problems.append(f"pageerror: {e}"))
    pg.on("request", lambda r: pg.requests.append(r.url))
    pg.goto(report.as_uri())
    pg.wait_for_load_state("load")
    return pg


# Where each line of an element's text ends, from the position of every character on screen.
LINE_ENDS = """els => els.filter(el => el.getClientRects().length).map(el => {
  const chars = [], tops = [];
  const walk = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
  for (let n = walk.nextNode(); n; n = walk.nextNode()) {
    for (let i = 0; i < n.length; i++) {
      const r = document.createRange(); r.setStart(n, i); r.setEnd(n, i + 1);
      const rect = r.getBoundingClientRect();
      if (rect.width || rect.height) { chars.push(n.data[i]); tops.push(rect.top); }
    }
  }
  const ends = [];
  for (let i = 1; i < chars.length; i++) { if (tops[i] > tops[i - 1] + 2) { ends.push(i); } }
  return [chars.join(""), ends];
})"""


def _breaks(page: Any, selector: str) -> list[tuple[str, str]]:
    """(text, the text up to a line end) for every line end inside the elements."""
    return [(text, text[:i]) for text, ends in page.eval_on_selector_all(selector, LINE_ENDS)
            for i in ends]


@pytest.mark.parametrize("width", WIDTHS)
def test_demo_report_fits_the_screen_and_ids_stay_whole(browser: Any, demo_out: Path,
                                                        width: int) -> None:
    report = sorted(demo_out.glob("2*/report.html"))[-1]
    page = _open(browser, report, width)
    try:
        page.click("#f-expand")                        # every control open: the widest page
        assert page.locator("#controls tbody.control.open").count() > 40
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), \
            f"horizontal scroll at {width} px"
        ids = page.eval_on_selector_all(".cid", "els => els.map(e => e.textContent)")
        assert "aws.cloudtrail.log_validation" in ids
        # a control id ends a line only after one of its dots, never inside a word
        for text, head in _breaks(page, ".ident"):
            assert head.endswith("."), f"{text!r} broken after {head!r}"
        # a resource (not marked long) only after : / @, a hyphen or a space
        for text, head in _breaks(page, ".res:not(.long)"):
            assert head[-1] in ":/@- ", f"{text!r} broken after {head!r}"
        if width == 420:   # the cards: id on a line of its own, status and count above it
            first = page.locator("#controls tbody.control").first
            assert first.locator(".c-id").bounding_box()["y"] > \
                first.locator(".c-status").bounding_box()["y"]
            assert page.locator("#controls thead th[data-sort='id']").is_visible()   # sort kept
        assert page.requests == [report.as_uri()]      # nothing fetched, links not followed
        assert page.problems == []
    finally:
        page.context.close()


def test_demo_report_evidence_links_open_files_of_the_bundle(browser: Any, demo_out: Path) -> None:
    from urllib.parse import unquote
    bundle = sorted(demo_out.glob("2*"))[-1]
    page = _open(browser, bundle / "report.html", 1280)
    try:
        hrefs = page.eval_on_selector_all("a.evidence-link", "els => els.map(a => a.getAttribute('href'))")
        resolved = page.eval_on_selector_all("a.evidence-link", "els => els.map(a => a.href)")
    finally:
        page.context.close()
    cited = {p for c in json.loads((bundle / "results.json").read_text())["controls"]
             for p in c["evidence"]}
    assert {unquote(h) for h in hrefs} == cited            # every cited file, relative links
    for href, url in zip(hrefs, resolved):
        assert not href.startswith(("/", "file:")) and ".." not in href
        target = Path(unquote(url.removeprefix("file://")))
        assert target.is_file() and target.resolve().is_relative_to(bundle.resolve()), href


def test_demo_report_verify_command_runs_from_anywhere(browser: Any, demo_out: Path,
                                                       tmp_path: Path) -> None:
    import shlex
    import shutil
    import subprocess
    import sys
    copy = tmp_path / "copied elsewhere"             # the folder moved: the command follows
    shutil.copytree(demo_out, copy)
    for out in (demo_out, copy):
        bundle = sorted(out.glob("2*"))[-1]
        page = _open(browser, bundle / "report.html", 420)
        try:
            command = page.locator("#verify-command").text_content()
            assert page.locator("#verify-command").is_visible()
        finally:
            page.context.close()
        key = out / "demo-signing-key.pub.pem"
        assert shlex.split(command) == ["attest", "verify", str(bundle), "--public-key", str(key)]
        run = subprocess.run([sys.executable, "-m", "attest", *shlex.split(command)[1:]],
                             cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stdout + run.stderr
        assert "every bundle is signed by the given public key" in run.stdout
