"""How the reports put text on the page (reports/display.py): ids with break points, remediation
as steps, prose and code, missing days as ranges, the verify command, evidence links."""
from __future__ import annotations

import json
import re
import shlex
from datetime import date

import pytest

from controls import load_catalog
from reports.display import (LONG_PART, code, code_spans, day_ranges, ident, remediation_blocks,
                             resource, verify_command)
from attest.cli import main
from reports.html import evidence_href, render_report
from tests.test_report import R, control, finding, results, write_bundle

EVIL = "<script>alert(1)</script>"


# --- days ------------------------------------------------------------------------------------

@pytest.mark.parametrize("days,ranges", [
    ([], []),
    (["2026-09-03"], ["2026-09-03"]),
    (["2026-09-03", "2026-09-04", "2026-09-05", "2026-09-06", "2026-09-07"],
     ["2026-09-03 to 2026-09-07"]),
    (["2026-09-10", "2026-09-03", "2026-09-04", "2026-09-04", "2026-09-12"],     # any order, twice
     ["2026-09-03 to 2026-09-04", "2026-09-10", "2026-09-12"]),
    ([date(2026, 2, 28), date(2026, 3, 1), date(2026, 12, 31), date(2027, 1, 1)],   # month, year
     ["2026-02-28 to 2026-03-01", "2026-12-31 to 2027-01-01"]),
])
def test_day_ranges(days, ranges):
    assert day_ranges(days) == ranges


# --- ids ---------------------------------------------------------------------------------------

def test_control_ids_break_only_after_dots():
    html = str(ident("aws.cloudtrail.log_validation"))
    assert html == '<span class="ident">aws.<wbr>cloudtrail.<wbr>log_validation</span>'
    assert re.sub(r"<[^>]+>", "", html) == "aws.cloudtrail.log_validation"


def test_resources_break_after_separators_and_long_parts_anywhere():
    arn = "arn:aws:ec2:us-east-1:123456789012:security-group/sg-0abc"
    html = str(resource(arn))
    assert html.startswith('<span class="res">arn:<wbr>aws:<wbr>ec2:<wbr>')
    assert "security-group/<wbr>sg-0abc" in html and re.sub(r"<[^>]+>", "", html) == arn
    long = "arn:aws:s3:::" + "b" * (LONG_PART + 1)
    assert str(resource(long)).startswith('<span class="res long">')
    assert str(resource(EVIL)) == ('<span class="res">&lt;script&gt;alert(1)&lt;/<wbr>'
                                   'script&gt;</span>')


# --- remediation ---------------------------------------------------------------------------------

def test_backticks_are_code_and_escaping_is_kept():
    assert code_spans("run `attest scan` daily") == [(False, "run "), (True, "attest scan"),
                                                     (False, " daily")]
    assert code_spans("an `unpaired backtick") == [(False, "an `unpaired backtick")]
    words = str(code(f"attest evidence add --valid-until <next review> {EVIL}"))
    assert '<span class="nb">--valid-until</span>' in words      # never split at its hyphen
    assert "&lt;next" in words and "<script>" not in words


def test_catalog_style_remediation_becomes_steps_prose_and_commands():
    text = ("Prefer the account level:\n"
            "1. S3 console > Block Public Access\n"
            "   settings > Edit.\n"
            "2. Tick \"Block all public access\".\n"
            "For a public website, use CloudFront\n"
            "instead.\n"
            "CLI: aws cloudtrail create-trail --name org-audit\n"
            "--is-multi-region-trail &&\n"
            "aws cloudtrail start-logging --name org-audit")
    blocks = remediation_blocks(text)
    assert [b.kind for b in blocks] == ["para", "steps", "para", "command"]
    assert blocks[1].steps == [[(False, "S3 console > Block Public Access\nsettings > Edit.")],
                               [(False, 'Tick "Block all public access".')]]
    assert blocks[2].spans == [(False, "For a public website, use CloudFront\ninstead.")]
    # wrapped catalog lines are joined into shell lines that paste as they read
    assert blocks[3].label == "CLI"
    assert blocks[3].lines == [
        "aws cloudtrail create-trail --name org-audit --is-multi-region-trail &&",
        "aws cloudtrail start-logging --name org-audit"]


def test_inline_numbered_remediation():
    blocks = remediation_blocks("1. Open it. 2. Tag it with `category:security`. 3. Save.")
    assert [b.kind for b in blocks] == ["steps"]
    assert blocks[0].steps[1] == [(False, "Tag it with "), (True, "category:security"),
                                  (False, ".")]
    blocks = remediation_blocks("Risk: x. Fix: 1. Do a. 2. Do b.")
    assert [b.kind for b in blocks] == ["para", "steps"]


def test_every_catalog_command_is_one_block_per_shell_line():
    for c in load_catalog():
        for b in remediation_blocks(c.remediation):
            if b.kind == "command":
                for line in b.lines:
                    assert re.match(r"(aws|gh|attest|kubectl) [a-z0-9-]+", line), (c.id, line)
                    shlex.split(line)                      # quotes balance on every line


def test_rendered_remediation_uses_code_and_pre(tmp_path):
    res = results([control("aws.s3.encrypted", "fail", ["CC6.1"],
                           [finding("arn:aws:s3:::a", "fail")])])
    res["controls"][0]["remediation"] = (
        f"1. Open `the <console>`.\n2. Save.\nCLI: aws s3api put-bucket-encryption --bucket B\n"
        f"'{{\"Rules\":[]}}' {EVIL}")
    html = render_report(R(res), [])
    section = re.search(r'<div class="remediation">(.*?)</div></div>', html, re.S).group(1)
    assert "<li>Open <code>" in section and "the</span> <span class=\"nb\">&lt;console&gt;" in section
    assert ('<div class="cmd"><span class="cmd-label">CLI</span><pre><code>aws s3api '
            "put-bucket-encryption --bucket B &#39;{&#34;Rules&#34;:[]}&#39; "
            "&lt;script&gt;alert(1)&lt;/script&gt;</code></pre></div>") in html
    assert EVIL not in html


# --- evidence links and the verify command -------------------------------------------------------

def test_evidence_href():
    assert evidence_href("evidence/aws/1/global/aws.s3.buckets.json", "") == \
        "evidence/aws/1/global/aws.s3.buckets.json"
    assert evidence_href("evidence/x y#1.json", "../b/") == "../b/evidence/x%20y%231.json"
    assert evidence_href("evidence/a.json", None) is None
    assert evidence_href("../secret", "") is None and evidence_href("/etc/passwd", "") is None


def test_verify_command():
    assert verify_command("/data/out/20260901T020000Z", False) == \
        "attest verify /data/out/20260901T020000Z"
    assert verify_command("/data/my out/B", True, "/data/my out/k.pem") == \
        "attest verify '/data/my out/B' --public-key '/data/my out/k.pem'"
    assert verify_command("/d/B", True) == "attest verify /d/B --public-key PUBLIC_KEY.pem"


def test_report_in_its_bundle_links_evidence_and_names_the_bundle(tmp_path):
    files = {"evidence/aws/1/global/aws.s3.buckets.json": b"{}"}
    res = results([control("aws.s3.encrypted", "fail", ["CC6.1"], [finding("arn:aws:s3:::a", "fail")],
                           list(files))])
    bundle = write_bundle(tmp_path / "out", res, files)
    html = render_report(R(res), [], bundle_dir=bundle, signed=True)
    assert '<a href="evidence/aws/1/global/aws.s3.buckets.json" class="evidence-link">' in html
    command = re.search(r'<code id="verify-command"[^>]*>(.*?)</code>', html, re.S).group(1)
    assert command == f"attest verify {bundle.absolute()} --public-key PUBLIC_KEY.pem"
    assert "attest keys public" in html                  # where that key comes from
    unsigned = render_report(R(res), [], bundle_dir=bundle)
    assert f">attest verify {bundle.absolute()}</code>" in unsigned
    assert "--public-key" not in re.search(r'<footer>(.*?)</footer>', unsigned, re.S).group(1)


def test_demo_report_names_the_demo_key(tmp_path):
    res = results([control("aws.s3.encrypted", "pass", ["CC6.1"])], demo=True)
    bundle = tmp_path / "out" / res["scan"]["bundle"]
    bundle.mkdir(parents=True)
    (tmp_path / "out" / "demo-signing-key.pub.pem").write_text("key")
    html = render_report(R(res), [], bundle_dir=bundle, signed=True)
    assert (f"attest verify {bundle.absolute()} --public-key "
            f"{(tmp_path / 'out' / 'demo-signing-key.pub.pem').absolute()}</code>") in html
    assert 'data-key-sibling="demo-signing-key.pub.pem"' in html


def test_attest_report_elsewhere_links_back_into_the_bundle(tmp_path):
    files = {"evidence/aws/1/global/aws.s3.buckets.json": b"{}"}
    res = results([control("aws.s3.encrypted", "fail", ["CC6.1"], [finding("arn:aws:s3:::a", "fail")],
                           list(files))])
    bundle = write_bundle(tmp_path / "out", res, files)
    out = tmp_path / "reports" / "r.html"
    out.parent.mkdir()
    assert main(["report", str(bundle), "--out", str(out)]) == 0
    html = out.read_text()
    href = re.search(r'<a href="([^"]+)" class="evidence-link">', html).group(1)
    assert href == f"../out/{bundle.name}/evidence/aws/1/global/aws.s3.buckets.json"
    assert (out.parent / href).resolve() == (bundle / list(files)[0]).resolve()
    assert 'data-live="1"' not in html                   # not in its bundle: the script keeps it
    assert f">attest verify {bundle.absolute()}</code>" in html
    json.loads(re.search(r'id="report-data">(.*?)</script>', html, re.S).group(1))
