"""A lighter install: moto and the demo's servers are an extra, and a scan imports only the SDKs
of the sources it runs (importing the okta SDK alone takes seconds)."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_a_plain_install_carries_no_demo_server() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    plain = " ".join(project["dependencies"]).lower()
    for name in ("moto", "flask", "werkzeug", "graphql-core", "pytest"):
        assert name not in plain, f"{name} is a runtime dependency"
    assert any(d.startswith("moto") for d in project["optional-dependencies"]["demo"])


def run_isolated(code: str, tmp_path: Path) -> dict:
    """Run ``code`` in a fresh interpreter where moto cannot be imported; it prints JSON."""
    script = textwrap.dedent('''
        import json, sys
        class NoDemo:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("moto", "werkzeug", "flask"):
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        sys.meta_path.insert(0, NoDemo())
    ''') + textwrap.dedent(code)
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_scan_imports_only_the_sdks_of_the_sources_it_runs(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("output_dir: ev\n")   # no source section: manual only
    got = run_isolated('''
        from attest.cli import main
        code = main(["scan", "--config", "config.yaml", "--format", "json"])
        heavy = ["okta", "github", "datadog_api_client", "boto3", "botocore", "aiohttp", "moto"]
        print(json.dumps({"code": code, "loaded": [m for m in heavy if m in sys.modules]}))
    ''', tmp_path)
    assert got == {"code": 1, "loaded": []}


def test_the_demo_without_its_extra_says_how_to_install_it(tmp_path: Path) -> None:
    got = run_isolated('''
        import contextlib, io
        from attest.cli import main
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            code = main(["scan", "--demo"])
        print(json.dumps({"code": code, "err": err.getvalue()}))
    ''', tmp_path)
    assert got["code"] == 2
    assert "pip install 'attest[demo]'" in got["err"] and got["err"].count("\\n") <= 1
