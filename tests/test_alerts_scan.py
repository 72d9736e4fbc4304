"""Alerts from real scans through the command line: one regression reaches Slack, PagerDuty and
Datadog exactly once; the scan in which it passes again resolves the PagerDuty event; a scan that
cannot run is alerted; ``--fail-on regression`` gates a nightly job on regressions only."""
from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest

from attest import alerts
from attest.cli import main
from attest.manual import add_document
from tests.test_alerts import (DD_API_KEY, DD_APP_KEY, ROUTING_KEY, SECRETS, SLACK_TOKEN, Receiver,
                               datadog_answer, pagerduty_answer, slack_answer)

CONTROL = "manual.security_policies"


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(alerts, "RETRY_BACKOFF", 0.0)
    monkeypatch.setattr(alerts, "MAX_RETRY_WAIT", 0.05)


@pytest.fixture
def receivers():
    made = {"slack": Receiver(slack_answer), "pagerduty": Receiver(pagerduty_answer),
            "datadog": Receiver(datadog_answer)}
    yield made
    for r in made.values():
        r.stop()


def write_config(tmp_path: Path, r: dict[str, Receiver], monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SLACK_WEBHOOK_URL", f"{r['slack'].url}/services/T0/B0/{SLACK_TOKEN}")
    monkeypatch.setenv("PAGERDUTY_ROUTING_KEY", ROUTING_KEY)
    monkeypatch.setenv("DD_API_KEY", DD_API_KEY)
    monkeypatch.setenv("DD_APP_KEY", DD_APP_KEY)
    path = tmp_path / "config.yaml"
    # the datadog source reads the same receiver (its GETs fail every night, the same way)
    path.write_text(f"""output_dir: ev
alerts:
  slack:
    webhook_url: ${{SLACK_WEBHOOK_URL}}
  pagerduty:
    routing_key: ${{PAGERDUTY_ROUTING_KEY}}
    url: {r['pagerduty'].url}/v2/enqueue
  datadog: {{events: true, metrics: true}}
datadog:
  host: {r['datadog'].url}
  api_key: ${{DD_API_KEY}}
  app_key: ${{DD_APP_KEY}}
""")
    return path


def counts(r: dict[str, Receiver]) -> dict[str, int]:
    return {"slack": len(r["slack"].requests),
            "pd": len(r["pagerduty"].at("/v2/enqueue")),
            "dd_events": len(r["datadog"].at("/api/v1/events")),
            "dd_series": len(r["datadog"].at("/api/v2/series"))}


def test_one_regression_reaches_every_channel_once_and_its_fix_resolves_it(
        tmp_path: Path, receivers: dict[str, Receiver], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    config = write_config(tmp_path, receivers, monkeypatch)
    doc = tmp_path / "policy.pdf"
    doc.write_text("Information security policy v3, approved\n")
    meta = add_document(tmp_path / "ev", CONTROL, doc, date.today() + timedelta(days=200))
    run = ["scan", "--config", str(config), "--fail-on", "regression"]

    assert main(run) == 0                       # first night: nothing to compare with
    first = counts(receivers)
    assert first == {"slack": 0, "pd": 0, "dd_events": 1, "dd_series": 1}
    assert receivers["datadog"].at("/api/v1/events")[0]["json"]["alert_type"] == "info"

    stored = tmp_path / "ev" / meta["path"]     # the stored document changes: pass -> error
    original = stored.read_bytes()
    stored.write_bytes(original + b"edited\n")
    assert main(run) == 1
    err = capsys.readouterr().err
    assert f"regression: {CONTROL}: pass -> error" in err
    second = {k: v - first[k] for k, v in counts(receivers).items()}
    assert second == {"slack": 1, "pd": 1, "dd_events": 1, "dd_series": 1}
    slack = receivers["slack"].requests[-1]["json"]
    assert CONTROL in json.dumps(slack) and str(tmp_path / "ev") in json.dumps(slack)
    trigger = receivers["pagerduty"].at("/v2/enqueue")[-1]["json"]
    assert trigger["event_action"] == "trigger" and trigger["routing_key"] == ROUTING_KEY
    assert trigger["dedup_key"] == f"attest:{(tmp_path / 'ev').resolve()}:{CONTROL}"
    event = receivers["datadog"].at("/api/v1/events")[-1]
    assert event["json"]["alert_type"] == "error" and CONTROL in event["json"]["text"]
    assert event["headers"]["dd-api-key"] == DD_API_KEY
    series = receivers["datadog"].at("/api/v2/series")[-1]["json"]["series"]
    by_metric = {s["metric"] for s in series}
    assert {"attest.controls", "attest.control.status", "attest.readiness"} <= by_metric

    stored.write_bytes(original)                 # fixed: error -> pass resolves the event
    assert main(run) == 0
    third = {k: v - first[k] - second[k] for k, v in counts(receivers).items()}
    assert third == {"slack": 0, "pd": 1, "dd_events": 1, "dd_series": 1}
    resolve = receivers["pagerduty"].at("/v2/enqueue")[-1]["json"]
    assert resolve["event_action"] == "resolve" and resolve["dedup_key"] == trigger["dedup_key"]

    assert main(["scan", "--config", str(config)]) == 3    # --fail-on any: datadog errors -> 3
    log_text = capsys.readouterr().err + caplog.text
    for secret in SECRETS:
        assert secret not in log_text
    for bundle in (tmp_path / "ev").iterdir():
        if bundle.is_dir() and bundle.name != "manual":
            for f in bundle.rglob("*"):
                if f.is_file():
                    text = f.read_text(errors="replace")
                    assert not any(s in text for s in SECRETS), f


def test_a_scan_that_cannot_run_is_alerted_and_a_dead_channel_never_fails_the_scan(
        tmp_path: Path, receivers: dict[str, Receiver], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, receivers, monkeypatch)
    text = config.read_text() + "store: s3://attest-no-such-bucket/x\nstore_options:\n" \
                                "  endpoint_url: http://127.0.0.1:9\n  region: us-east-1\n"
    config.write_text(text)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    assert main(["scan", "--config", str(config)]) == 3      # the store cannot be reached
    assert "attest: error: s3://attest-no-such-bucket/x: cannot reach the bucket" in capsys.readouterr().err
    pd = receivers["pagerduty"].at("/v2/enqueue")
    assert [e["json"]["dedup_key"] for e in pd] == ["attest:s3://attest-no-such-bucket/x:scan"]
    assert len(receivers["slack"].requests) == 1

    # Slack answers 500: logged, the scan's own exit code is unchanged, the others deliver
    receivers["slack"].statuses = [500]
    config.write_text(config.read_text().split("store:")[0])
    doc = tmp_path / "p.pdf"
    doc.write_text("policy\n")
    meta = add_document(tmp_path / "ev", CONTROL, doc, date.today() + timedelta(days=100))
    assert main(["scan", "--config", str(config), "--fail-on", "regression"]) == 0
    (tmp_path / "ev" / meta["path"]).write_text("changed\n")
    before = len(receivers["pagerduty"].requests)
    assert main(["scan", "--config", str(config), "--fail-on", "regression"]) == 1
    err = capsys.readouterr().err
    assert "alert slack: failed" in err and "alert pagerduty: sent" in err
    assert len(receivers["pagerduty"].requests) == before + 1


def test_alerts_config_mistakes_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = {
        "alerts:\n  datadog: {events: true}\n": "alerts to Datadog need the datadog: section",
        "alerts:\n  slack:\n    webhook_url: https://hooks.slack.com/services/T/B/literal\n":
            "secrets must be given as an ${ENV_VAR} reference",
        "alerts:\n  teams: {}\n": "alerts.teams: unknown key",
    }
    for text, message in cases.items():
        (tmp_path / "c.yaml").write_text(text)
        assert main(["scan", "--config", str(tmp_path / "c.yaml")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], (text, err)
