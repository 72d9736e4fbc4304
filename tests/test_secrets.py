"""With known secrets planted in the environment and the credentials, nothing the scan writes
(bundle files, logs) contains any of them."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest

from attest.config import load_config
from attest.scan import run_scan
from tests.conftest import NOW

PLANTED = {
    "AWS_ACCESS_KEY_ID": "AKIAPLANTEDSECRET0001",
    "AWS_SECRET_ACCESS_KEY": "planted/aws/secret+key/0123456789abcdefXYZ",
    "AWS_SESSION_TOKEN": "planted-session-token-0123456789",
    "ATTEST_UNRELATED_SECRET": "planted-unrelated-secret-value",
}


def test_no_secret_reaches_any_written_file(demo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            caplog: pytest.LogCaptureFixture) -> None:
    for k, v in PLANTED.items():
        monkeypatch.setenv(k, v)  # moto accepts any credentials: these really sign every AWS call
    secrets = set(PLANTED.values())
    for source in demo.sources.values():
        secrets.update(v for k, v in source.env.items() if not k.startswith("AWS_"))
    assert len(secrets) > len(PLANTED), "the demo sources use tokens"
    caplog.set_level(logging.DEBUG)
    log_file = tmp_path / "scan.log"
    handler = logging.FileHandler(log_file)
    logging.getLogger().addHandler(handler)
    try:
        outcome = run_scan(load_config(None, overrides=demo.config), out_dir=tmp_path / "out",
                           now=NOW, demo=True)
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
    written = [p for p in (tmp_path / "out").rglob("*") if p.is_file()] + [log_file]
    assert len(written) > 20
    blobs = {p: p.read_bytes() for p in written}
    blobs[Path("<caplog>")] = caplog.text.encode()
    for path, data in blobs.items():
        for secret in secrets:
            assert secret.encode() not in data, f"{secret[:6]}... leaked into {path}"
    assert outcome.results.scan.sources["aws"].status == "collected"


def test_no_secret_reaches_the_auditor_export(demo, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import zipfile

    from attest.manual import add_document
    from reports.export import export_period

    for k, v in PLANTED.items():
        monkeypatch.setenv(k, v)
    secrets = set(PLANTED.values())
    for source in demo.sources.values():
        secrets.update(v for k, v in source.env.items() if not k.startswith("AWS_"))
    out = tmp_path / "out"
    policy = tmp_path / "policy.pdf"
    policy.write_bytes(b"%PDF security policy")
    add_document(out, "manual.security_policies", policy, NOW.date().replace(year=NOW.year + 1))
    run_scan(load_config(None, overrides=demo.config), out_dir=out, now=NOW, demo=True)
    path = export_period(out, NOW.date(), NOW.date(), tmp_path / "export.zip")
    with zipfile.ZipFile(path) as zf:
        members = {name: zf.read(name) for name in zf.namelist() if not name.endswith("/")}
    assert len(members) > 20 and any("/manual/" in name for name in members)
    for name, data in members.items():
        for secret in secrets:
            assert secret.encode() not in data, f"{secret[:6]}... leaked into {name}"
