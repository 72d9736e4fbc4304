"""The export's OSCAL assessment-results validate against NIST's official JSON schema and pin
every evidence file by the sha256 of the file in the zip."""
from __future__ import annotations

import hashlib
import json
import zipfile
from datetime import date, timedelta
from pathlib import Path

import jsonschema
import pytest

from attest.exceptions import ExceptionSet, RiskException
from reports.export import OSCAL_FILE, export_period
from tests.history import (ebs_default_encryption, make_history, marketing_bucket_encryption,
                           no_change)

SCHEMA = Path(__file__).parent / "schemas" / "oscal_assessment-results_schema-1.2.1.json"
SCHEMA_SHA256 = "4f9e277a177adbcca9527612ce450a33dc6096773fa229d413d801d196c61985"
START = date(2026, 10, 1)


def official_validator() -> jsonschema.Draft7Validator:
    """NIST's schema; Python's re lacks \\p{L} and \\p{N}, rewritten in memory only."""
    raw = SCHEMA.read_bytes()
    assert hashlib.sha256(raw).hexdigest() == SCHEMA_SHA256, "the vendored schema was edited"
    text = raw.decode("utf-8").replace("\\\\p{L}", "[^\\\\W\\\\d_]").replace("\\\\p{N}", "\\\\d")
    schema = json.loads(text)
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("oscal") / "evidence"
    exceptions = ExceptionSet([RiskException(
        control="datadog.monitors_not_muted", resource="40110004", reason="Legacy <b>queue</b>",
        approved_by="Jane Doe (CTO)", expires=START + timedelta(days=1))])
    flips = {0: [no_change("datadog.monitors_not_muted", "excepted")],
             1: [ebs_default_encryption(True), marketing_bucket_encryption(True)],
             2: [no_change("datadog.monitors_not_muted", "fail")]}
    make_history(out, START, 4, {3}, flips, sources=("aws", "datadog"), exceptions=exceptions)
    path = export_period(out, START, START + timedelta(days=3), tmp_path_factory.mktemp("z") / "a.zip")
    zf = zipfile.ZipFile(path)
    root = zf.namelist()[0].split("/")[0]
    return zf, root, json.loads(zf.read(f"{root}/{OSCAL_FILE}"))


def test_validates_against_the_official_schema(exported):
    _, _, doc = exported
    errors = sorted(official_validator().iter_errors(doc), key=lambda e: list(e.absolute_path))
    assert [f"{list(e.absolute_path)}: {e.message[:200]}" for e in errors] == []
    assert doc["assessment-results"]["metadata"]["oscal-version"] >= "1.1.2"


def test_invalid_document_is_caught_by_the_schema(exported):
    _, _, doc = exported
    broken = json.loads(json.dumps(doc))
    del broken["assessment-results"]["results"][0]["observations"][0]["collected"]
    assert any("collected" in e.message for e in official_validator().iter_errors(broken))


def test_every_evidence_entry_pins_the_file_in_the_zip(exported):
    zf, root, doc = exported
    result = doc["assessment-results"]["results"][0]
    resources = {r["uuid"]: r for r in doc["assessment-results"]["back-matter"]["resources"]}
    checked = 0
    for obs in result["observations"]:
        for ev in obs.get("relevant-evidence", []):
            digest = hashlib.sha256(zf.read(f"{root}/{ev['href']}")).hexdigest()
            assert {"name": "sha256", "ns": "urn:attest", "value": digest} in ev["props"]
            rlink = resources[ev["links"][0]["href"][1:]]["rlinks"][0]
            assert rlink["href"] == ev["href"]
            assert rlink["hashes"] == [{"algorithm": "SHA-256", "value": digest}]
            checked += 1
    assert checked > 100
    manifests = [r for r in resources.values() if r["rlinks"][0]["href"].endswith("manifest.json")]
    assert len(manifests) == 3
    for r in manifests:
        data = zf.read(f"{root}/{r['rlinks'][0]['href']}")
        assert r["rlinks"][0]["hashes"][0]["value"] == hashlib.sha256(data).hexdigest()


def test_findings_for_failing_controls_and_exceptions_as_risks(exported):
    _, _, doc = exported
    result = doc["assessment-results"]["results"][0]
    observations = {o["uuid"]: o for o in result["observations"]}
    findings = {f["target"]["target-id"]: f for f in result["findings"]}
    assert "aws.ebs.default_encryption" in findings         # failed on the first day
    assert "aws.cloudtrail.multi_region" not in findings    # passes every day
    ebs = findings["aws.ebs.default_encryption"]
    assert ebs["target"]["status"]["state"] == "not-satisfied"
    days = [next(p["value"] for p in observations[r["observation-uuid"]]["props"] if p["name"] == "day")
            for r in ebs["related-observations"]]
    assert days == ["2026-10-01"]
    (risk,) = result["risks"]
    props = {p["name"]: p["value"] for p in risk["props"]}
    assert props["approved-by"] == "Jane Doe (CTO)" and props["expires"] == "2026-10-02"
    assert risk["status"] == "open"                          # expired by the last scan
    assert risk["statement"] == "Legacy &lt;b&gt;queue&lt;/b&gt;"
    assert {r["risk-uuid"] for r in findings["datadog.monitors_not_muted"]["related-risks"]} \
        == {risk["uuid"]}


def test_trestle_reads_it(exported):
    from trestle.oscal.assessment_results import Model
    _, _, doc = exported
    model = Model.model_validate(doc)
    assert len(model.assessment_results.results[0].observations) == len(
        doc["assessment-results"]["results"][0]["observations"])
