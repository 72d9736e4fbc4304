"""An endpoint that never answers: every source fails within a bounded number of tries, with one
log line per source (not one per region or per call), and the report says "unreachable"."""
from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from attest.cli import main
from attest.store import list_bundles


@pytest.fixture
def dead_url():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))          # bound, never listening: connections are refused
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


def test_unreachable_sources_are_one_line_each_and_unreachable_in_the_report(
        dead_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1", "GH": "ghp_x", "OK": "00x",
                        "DDA": "a", "DDB": "b", "K8": "k8s-token",
                        "PD": "pd"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    (tmp_path / "c.yaml").write_text(f"""output_dir: ev
aws: {{endpoint_url: "{dead_url}", regions: [us-east-1, eu-west-1, ap-south-1]}}
github: {{org: acme, base_url: "{dead_url}", token: "${{GH}}", max_retries: 1}}
okta: {{org_url: "{dead_url}", token: "${{OK}}"}}
datadog: {{host: "{dead_url}", api_key: "${{DDA}}", app_key: "${{DDB}}"}}
kubernetes: {{clusters: [{{server: "{dead_url}", token: "${{K8}}"}}]}}
pagerduty: {{base_url: "{dead_url.replace('http://', 'https://')}", token: "${{PD}}"}}
""")
    assert main(["scan", "--config", str(tmp_path / "c.yaml"), "--format", "json"]) == 3
    captured = capsys.readouterr()
    results = json.loads(captured.out)
    for source in ("aws", "github", "okta", "datadog", "kubernetes", "pagerduty"):
        info = results["scan"]["sources"][source]
        assert info["status"] == "unreachable", (source, info)
        lines = [line for line in captured.err.splitlines() if f" {source}" in line
                 and ("WARNING" in line or "ERROR" in line)]
        assert len(lines) == 1, (source, lines)
        assert f"{source}: unreachable" in lines[0]
    for c in results["controls"]:
        if c["source"] != "manual":
            assert c["status"] == "error", c["id"]
    html = (list_bundles(tmp_path / "ev")[-1] / "report.html").read_text()
    assert 'class="src unreachable"' in html
