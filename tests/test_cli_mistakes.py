"""Every ordinary mistake a hurried user makes is one line on stderr naming the problem (file,
line, key or path) and exit code 2: never a traceback, never "internal error" (exit 4), never
pydantic's words. Table-driven; each row is run through ``attest.cli.main`` in a folder of its own.
Also: a closed stdout (``| head``) and Ctrl-C, in real processes."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from attest.cli import main
from attest.sources import source_names
from tests.conftest import NOW

ROOT = Path(__file__).resolve().parents[1]
LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ [A-Z]+ |\{)")
PYDANTIC = ("Input should be", "validation error for", "type=", "Field required", "Value error,",
            "Extra inputs", "String should", "Assertion failed", "pydantic")
DAY = NOW.date().isoformat()

# files every row finds in its folder (besides ev/<bundle> and adir/); a source, where there is
# one, points at a closed local port, so that no row could reach the internet even if it scanned
FILES = {
    "c.yaml": "output_dir: ev\n",
    "afile": "not a folder\n",
    "pentest.pdf": "%PDF-1.4 a pentest report\n",
    "gh.yaml": "output_dir: ev\ngithub:\n  org: acme\n  token: ${GITHUB_TOKEN}\n"
               "  base_url: http://127.0.0.1:9\n",
    "typo.yaml": "output_dir: ev\ngithub:\n  org: acme\n  tokn: ${GITHUB_TOKEN}\n"
                 "  base_url: http://127.0.0.1:9\n",
    "latin1.yaml": b"output_dir: ev\n# r\xe9sum\xe9\n",
    "empty.yaml": "",
    "private.pem": "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n",
    "list.yaml": "- output_dir: ev\n- aws: {}\n",
    "types.yaml": "output_dir: 5\n",
    "section.yaml": "aws: yes\n",
    "regions.yaml": "aws:\n  regions: us-east-1\n  endpoint_url: http://127.0.0.1:9\n",
    "lock.yaml": "store_options:\n  object_lock: {mode: FOREVER, days: 0}\n",
    "exc-config.yaml": "output_dir: ev\nexceptions_file: exc.yaml\n",
    "exc.yaml": ("- control: aws.s3.encrypted\n  resource: '*'\n  reason: legacy bucket\n"
                 "  approved_by: Jane Doe\n  expires: 2027-01-31\n"
                 "- control: aws.s3.encrypted\n  resource: '*'\n  reason: ok\n"
                 "  approved_by: Jane Doe\n  expires: 2027-01-31\n"),
    "exc-control-config.yaml": "output_dir: ev\nexceptions_file: exc-control.yaml\n",
    "exc-control.yaml": ("- control: aws.s3.encryptd\n  resource: '*'\n  reason: legacy bucket\n"
                         "  approved_by: Jane Doe\n  expires: 2027-01-31\n"),
}

# (id, argv, environment, the one stderr line after "attest: error: "; "..." ends a prefix)
CASES = [
    # an output folder where a file is, a file where a folder is, missing or unwritable parents
    ("scan --dir FILE", ["scan", "--config", "c.yaml", "--dir", "afile"], {},
     "--dir afile: is a file; give a folder"),
    ("scan --out FILE (alias)", ["scan", "--config", "c.yaml", "--out", "afile"], {},
     "--dir afile: is a file; give a folder"),
    ("scan --demo --dir FILE", ["scan", "--demo", "--dir", "afile"], {},
     "--dir afile: is a file; give a folder"),
    ("scan --dir under a file", ["scan", "--config", "c.yaml", "--dir", "afile/ev"], {},
     "--dir afile/ev: afile is a file, not a folder"),
    ("scan --dir unwritable", ["scan", "--config", "c.yaml", "--dir", "/proc/attest-ev"], {},
     "--dir /proc/attest-ev: cannot write in /proc: ..."),
    ("scan --dir s3://", ["scan", "--config", "c.yaml", "--dir", "s3://bucket/prefix"], {},
     "--dir s3://bucket/prefix: a scan writes to a local folder; name the S3 store with store: in "
     "the config"),
    ("scan: output_dir is a file", ["scan", "--config", "afile-out.yaml"], {},
     "afile-out.yaml: output_dir afile: is a file; give a folder"),
    ("report --out DIR", ["report", "{bundle}", "--out", "adir"], {},
     "--out adir: is a folder; give a file name"),
    ("report --out missing parent", ["report", "{bundle}", "--out", "nope/report.html"], {},
     "--out nope/report.html: the folder nope does not exist"),
    ("report --out under a file", ["report", "{bundle}", "--out", "afile/report.html"], {},
     "--out afile/report.html: afile is a file, not a folder"),
    ("report --out unwritable", ["report", "{bundle}", "--out", "/proc/report.html"], {},
     "--out /proc/report.html: cannot write in /proc: ..."),
    ("report --out inside a bundle", ["report", "{bundle}", "--out", "{bundle}/r.html"], {},
     "--out {bundle}/r.html: refusing to write inside the bundle {name} (a sealed bundle is never "
     "written again)"),
    ("export --out DIR", ["export", "--from", DAY, "--to", DAY, "--dir", "ev", "--out", "adir"], {},
     "--out adir: is a folder; give a file name"),
    ("export --out missing parent", ["export", "--from", DAY, "--to", DAY, "--dir", "ev", "--out",
                                     "nope/x.zip"], {},
     "--out nope/x.zip: the folder nope does not exist"),
    ("evaluate --out DIR", ["evaluate", "{bundle}", "--out", "adir"], {},
     "--out adir: is a folder; give a file name"),
    ("evaluate --out s3://", ["evaluate", "{bundle}", "--out", "s3://bucket/x.json"], {},
     "--out s3://bucket/x.json: must be a local file (only a scan writes to the store)"),
    # paths of the wrong kind
    ("verify FILE", ["verify", "afile"], {},
     "TARGET afile: is a file; give a bundle folder, a folder of bundles, or s3://bucket/prefix"),
    ("verify missing", ["verify", "nope"], {}, "TARGET nope: no such bundle or folder"),
    ("verify a folder without bundles", ["verify", "adir"], {},
     "adir: no bundles found (a bundle is a folder with manifest.json)"),
    ("verify TARGET and --dir", ["verify", "ev", "--dir", "ev"], {}, "give TARGET or --dir, not both"),
    ("verify --public-key missing", ["verify", "ev", "--public-key", "nope.pem"], {},
     "nope.pem: public key file not found"),
    ("verify --public-key a private key", ["verify", "ev", "--public-key", "private.pem"], {},
     "private.pem: a private key; give the public key (`attest keys public` prints it)"),
    ("verify --public-key not a key", ["verify", "ev", "--public-key", "afile"], {},
     "afile: not a PEM public key (expected a file that starts with -----BEGIN PUBLIC KEY-----)"),
    ("report FILE", ["report", "afile"], {},
     "TARGET afile: is a file; give a bundle folder, a folder of bundles, or s3://bucket/prefix"),
    ("report a folder without bundles", ["report", "adir"], {},
     "adir: no bundles found (a bundle is a folder with manifest.json)"),
    ("evaluate FILE", ["evaluate", "afile"], {},
     "BUNDLE afile: is a file; give a bundle folder, a folder of bundles, or s3://bucket/prefix"),
    ("evaluate a folder that is no bundle", ["evaluate", "adir"], {},
     "adir: not a bundle (no manifest.json); give a bundle folder such as "
     "evidence/20260101T020000Z"),
    ("evaluate a folder of bundles", ["evaluate", "ev"], {},
     "ev: a folder of bundles; give one bundle (e.g. {bundle}), or --dir ev for its newest"),
    ("diff a folder that is no bundle", ["diff", "adir", "{bundle}"], {},
     "OLD adir: not a bundle (no results.json); give a bundle folder such as "
     "evidence/20260101T020000Z"),
    ("diff a file that is no results", ["diff", "{bundle}", "afile"], {},
     "NEW afile: not a results file (not JSON); give a bundle folder or its results.json"),
    ("diff missing", ["diff", "nope", "{bundle}"], {}, "OLD nope: no such bundle or results file"),
    ("diff OLD only", ["diff", "{bundle}"], {},
     "give both OLD and NEW (or neither: the two newest bundles of --dir)"),
    ("diff one bundle in --dir", ["diff", "--dir", "ev"], {}, "ev: fewer than two bundles to compare"),
    ("history --dir FILE", ["history", "--dir", "afile"], {},
     "--dir afile: is a file; give the folder that holds the bundles"),
    ("history --dir missing", ["history", "--dir", "nope"], {}, "--dir nope: no such folder"),
    ("history with nothing scanned", ["history"], {},
     "evidence: no such folder, so no bundles yet (run `attest scan`, or give --dir DIR)"),
    ("evidence add missing file", ["evidence", "add", "manual.penetration_test", "nope.pdf",
                                   "--valid-until", "2099-01-01", "--config", "c.yaml"], {},
     "nope.pdf: no such file"),
    ("evidence add a folder", ["evidence", "add", "manual.penetration_test", "adir",
                               "--valid-until", "2099-01-01", "--config", "c.yaml"], {},
     "adir: is a folder; give the document's file"),
    ("evidence add unknown control", ["evidence", "add", "manual.pentest", "pentest.pdf",
                                      "--valid-until", "2099-01-01", "--config", "c.yaml"], {},
     "manual.pentest: unknown control id (see `attest controls --source manual`)"),
    ("evidence add API control", ["evidence", "add", "aws.s3.encrypted", "pentest.pdf",
                                  "--valid-until", "2099-01-01", "--config", "c.yaml"], {},
     "aws.s3.encrypted: not a manual control; its evidence is collected from APIs (see `attest "
     "controls --source manual`)"),
    ("evidence add bad date", ["evidence", "add", "manual.penetration_test", "pentest.pdf",
                               "--valid-until", "31/12/2099", "--config", "c.yaml"], {},
     "--valid-until 31/12/2099: not a date; expected YYYY-MM-DD (e.g. 2026-01-31)"),
    ("evidence add --dir FILE", ["evidence", "add", "manual.penetration_test", "pentest.pdf",
                                 "--valid-until", "2099-01-01", "--dir", "afile"], {},
     "--dir afile: is a file; give a folder"),
    ("export --from 2026-13-01", ["export", "--from", "2026-13-01", "--to", "2026-12-01", "--dir",
                                  "ev"], {},
     "--from 2026-13-01: not a date; expected YYYY-MM-DD (e.g. 2026-01-31)"),
    ("export --from after --to", ["export", "--from", "2026-12-02", "--to", "2026-12-01", "--dir",
                                  "ev"], {}, "--from 2026-12-02 is after --to 2026-12-01"),
    ("export without --to", ["export", "--from", DAY], {},
     "attest export: the following arguments are required: --to (see `attest export --help`)"),
    ("export a period without scans", ["export", "--from", "2020-01-01", "--to", "2020-01-31",
                                       "--dir", "ev"], {},
     "ev: no bundles with a scan between 2020-01-01 and 2020-01-31"),
    ("sample an unknown population", ["sample", "nope", "--from", DAY, "--to", DAY, "--size", "3",
                                      "--seed", "s", "--dir", "ev"], {},
     "nope: unknown population (known: changes, incidents, access, aws_access)"),
    ("sample a bad date", ["sample", "changes", "--from", DAY, "--to", "2026-02-30", "--size", "3",
                           "--seed", "s", "--dir", "ev"], {},
     "--to 2026-02-30: not a date; expected YYYY-MM-DD (e.g. 2026-01-31)"),
    ("sample a size that is no number", ["sample", "changes", "--from", DAY, "--to", DAY,
                                         "--size", "ten", "--seed", "s"], {},
     "attest sample: argument --size: invalid int value: 'ten' (see `attest sample --help`)"),
    ("sample a period without scans", ["sample", "changes", "--from", "2020-01-01", "--to",
                                       "2020-01-31", "--size", "3", "--seed", "s", "--dir", "ev"],
     {}, "ev: no bundles with a scan between 2020-01-01 and 2020-01-31"),
    ("sample an empty population", ["sample", "changes", "--from", DAY, "--to", DAY, "--size", "3",
                                    "--seed", "s", "--dir", "ev"], {},
     f"the changes population of {DAY} to {DAY} has no items, nothing to sample ..."),
    ("keys public without config", ["keys", "public"], {},
     "attest keys public: give --config FILE (or set ATTEST_CONFIG) with a signing: section"),
    ("keys public, no signing section", ["keys", "public", "--config", "c.yaml"], {},
     "c.yaml: no signing: section (kms_key_id or private_key_path)"),
    ("store check without config", ["store", "check"], {},
     "attest store check: give --config FILE (or set ATTEST_CONFIG) with store: s3://..."),
    # config files
    ("scan --config DIR", ["scan", "--config", "adir"], {}, "adir: is a folder; give a YAML file"),
    ("config missing", ["scan", "--config", "nope.yaml"], {}, "nope.yaml: config file not found"),
    ("config missing via $ATTEST_CONFIG", ["history"], {"ATTEST_CONFIG": "nope.yaml"},
     "nope.yaml: config file not found"),
    ("merge from a folder that does not exist", ["merge", "--dir", "nope"], {},
     "--dir nope: no such folder, so no shards to merge"),
    ("an empty $ATTEST_CONFIG counts as unset", ["history"], {"ATTEST_CONFIG": ""},
     "evidence: no such folder, so no bundles yet (run `attest scan`, or give --dir DIR)"),
    ("config not UTF-8", ["scan", "--config", "latin1.yaml"], {},
     "latin1.yaml:2: not UTF-8 text (byte 0xe9); save the file as UTF-8"),
    ("config empty", ["scan", "--config", "empty.yaml"], {},
     "empty.yaml: the file is empty; give at least one section (see config.yaml in the attest "
     "repository for every key)"),
    ("config a YAML list", ["scan", "--config", "list.yaml"], {},
     "list.yaml:1: the top level is a list; expected a mapping of keys such as output_dir: and aws:"),
    ("empty secret", ["scan", "--config", "gh.yaml"], {"GITHUB_TOKEN": ""},
     "gh.yaml:4: github.token: environment variable GITHUB_TOKEN is empty"),
    ("unset secret", ["scan", "--config", "gh.yaml"], {"GITHUB_TOKEN": None},
     "gh.yaml:4: github.token: environment variable GITHUB_TOKEN is not set"),
    ("typo'd key holding an unset variable", ["scan", "--config", "typo.yaml"],
     {"GITHUB_TOKEN": None}, "typo.yaml:4: github.tokn: unknown key"),
    ("wrong type", ["scan", "--config", "types.yaml"], {},
     "types.yaml:1: output_dir: expected text (got 5)"),
    ("a section that is no mapping", ["scan", "--config", "section.yaml"], {},
     "section.yaml:1: aws: expected a mapping of keys (got True)"),
    ("regions not a list", ["scan", "--config", "regions.yaml"], {},
     "regions.yaml:2: aws.regions: expected 'all' or a list of region names ..."),
    ("a value out of its choices", ["keys", "public", "--config", "lock.yaml"], {},
     "lock.yaml:2: store_options.object_lock.mode: expected 'GOVERNANCE' or 'COMPLIANCE' "
     "(got 'FOREVER')"),
    ("exceptions entry counted from 1", ["scan", "--config", "exc-config.yaml"], {},
     "exc.yaml:8: entry 2: reason: must have at least 3 characters (got 'ok')"),
    ("exceptions unknown control", ["scan", "--config", "exc-control-config.yaml"], {},
     "exc-control.yaml:1: entry 1: control: unknown control id 'aws.s3.encryptd' (see `attest "
     "controls`)"),
    # the command line itself
    ("--config on a command that reads none", ["--config", "c.yaml", "controls"], {},
     "attest controls reads no config; drop --config"),
    ("an unknown flag", ["history", "--json", "--all"], {},
     "attest history: unrecognized arguments: --all (see `attest history --help`)"),
    ("an unknown command", ["frobnicate"], {},
     "attest: argument COMMAND: invalid choice: 'frobnicate' ..."),
    ("an unknown source", ["controls", "--source", "azure"], {},
     f"--source azure: unknown source (known: {', '.join(sorted(source_names()))})"),
    ("a bad choice", ["scan", "--format", "yaml"], {},
     "attest scan: argument --format: invalid choice: 'yaml' (choose from 'table', 'json', 'csv', "
     "'junit') (see `attest scan --help`)"),
]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real bundle (a scan of no source but the manual store: local, quick, offline)."""
    from attest.config import load_config
    from attest.scan import run_scan
    root = tmp_path_factory.mktemp("bundle")
    (root / "c.yaml").write_text("output_dir: ev\n", encoding="utf-8")
    return run_scan(load_config(root / "c.yaml"), out_dir=root / "ev", now=NOW).bundle


def one_error_line(err: str) -> list[str]:
    """stderr without log lines."""
    return [line for line in err.splitlines() if line.strip() and not LOG_LINE.match(line)]


@pytest.mark.parametrize("argv,env,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_mistake_is_one_line_and_exit_2(argv: list[str], env: dict[str, str | None],
                                          expected: str, bundle: Path, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    if "/proc" in " ".join(argv) and not Path("/proc/self").exists():
        pytest.skip("no /proc here")
    import shutil
    for name, content in {**FILES, "afile-out.yaml": "output_dir: afile\n"}.items():
        path = tmp_path / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    (tmp_path / "adir").mkdir()
    shutil.copytree(bundle, tmp_path / "ev" / bundle.name)
    rel = f"ev/{bundle.name}"
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ATTEST_CONFIG", raising=False)
    monkeypatch.setenv("GITHUB_TOKEN", "x")
    for var, value in env.items():
        if value is None:
            monkeypatch.delenv(var, raising=False)
        else:
            monkeypatch.setenv(var, value)
    before = sorted(p.relative_to(tmp_path) for p in (tmp_path / "ev").rglob("*"))

    code = main([a.replace("{bundle}", rel) for a in argv])

    err = capsys.readouterr().err
    lines = one_error_line(err)
    assert code == 2, err
    assert len(lines) == 1, err
    want = "attest: error: " + expected.replace("{bundle}", rel).replace("{name}", bundle.name)
    if want.endswith("..."):
        assert lines[0].startswith(want[:-3]), lines[0]
    else:
        assert lines[0] == want
    assert not any(word in err for word in PYDANTIC) and "Traceback" not in err
    # nothing already collected was touched
    assert sorted(p.relative_to(tmp_path) for p in (tmp_path / "ev").rglob("*")) == before


BAD_CONFIGS = [
    "output_dir: [a, b]\n", "exceptions_file: {a: 1}\n", "controls: [1]\n",
    "controls:\n  aws.rds.backups:\n    min_days: -3\n", "aws:\n  accounts: 7\n",
    "aws:\n  regions: []\n", "aws:\n  bogus: 1\n", "github: {org: 5, token: x}\n", "github: {}\n",
    "okta: {}\n", "okta: {org_url: 5}\n", "datadog: {site: 5}\n", "store: http://x\n",
    "store_options: 5\n", "store_options: {object_lock: {days: many}}\n", "signing: {}\n",
    "signing: {kms_key_id: 5, private_key_path: x}\n", "alerts: {slack: 5}\n",
    "alerts: {slack: {webhook_url: 5}}\n", "alerts: {pagerduty: {}}\n", "alerts: {on: [x]}\n",
]


@pytest.mark.parametrize("text", BAD_CONFIGS)
def test_no_config_error_speaks_pydantic(text: str, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from attest.config import load_config
    from attest.errors import ConfigError
    monkeypatch.setenv("GITHUB_TOKEN", "x")
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    message = str(exc.value)
    assert message.startswith(f"{path}:") and "\n" not in message
    assert not any(word in message for word in PYDANTIC), message


def test_plain_message_covers_the_common_pydantic_errors() -> None:
    from datetime import date
    from typing import Literal

    from pydantic import BaseModel, ConfigDict, Field, ValidationError

    from attest.errors import plain_message

    class M(BaseModel):
        model_config = ConfigDict(extra="forbid")
        text: str = "x"
        number: int = 1
        flag: bool = True
        items: list[str] = []
        mapping: dict[str, int] = {}
        choice: Literal["a", "b"] = "a"
        day: date | None = None
        name: str = Field("abc", min_length=3)
        count: int = Field(1, ge=1)
        required: str

    for bad, expected in [({"text": 5}, "expected text"), ({"number": "x"}, "expected a whole number"),
                          ({"number": 1.5}, "expected a whole number"),
                          ({"flag": "maybe"}, "expected true or false"),
                          ({"items": "x"}, "expected a list"),
                          ({"mapping": [1]}, "expected a mapping of keys"),
                          ({"choice": "c"}, "expected 'a' or 'b'"),
                          ({"day": "2026-13-01"}, "expected a date YYYY-MM-DD"),
                          ({"name": "a"}, "must have at least 3 characters"),
                          ({"count": 0}, "must be at least 1"), ({"extra": 1}, "unknown key")]:
        with pytest.raises(ValidationError) as exc:
            M.model_validate({"required": "r", **bad})
        assert plain_message(exc.value.errors()[0]) == expected
    with pytest.raises(ValidationError) as exc:
        M.model_validate({})
    assert plain_message(exc.value.errors()[0]) == "required key is missing"


# --- real processes: a closed pipe, Ctrl-C ------------------------------------------------------

def attest_process(args: list[str], cwd: Path, env_extra: dict[str, str] | None = None,
                   **kw) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "ATTEST_CONFIG"}
    env["PYTHONPATH"] = str(ROOT)
    env.update(env_extra or {})
    return subprocess.Popen([sys.executable, "-m", "attest", *args], cwd=cwd, env=env, **kw)


@pytest.mark.parametrize("args", [["controls", "--format", "json"], ["history", "--json"],
                                  ["scan", "--demo", "--format", "json"]],
                         ids=["controls", "history", "scan --demo"])
def test_a_closed_stdout_is_a_quiet_exit_141(args: list[str], bundle: Path, tmp_path: Path) -> None:
    """The reader goes away before attest writes (`| head -c 0`): exit 141, as a process ended
    by SIGPIPE in a shell, with no traceback and no "internal error"; a scan's bundle is kept."""
    import shutil
    shutil.copytree(bundle, tmp_path / "evidence" / bundle.name)
    proc = attest_process(args, tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()                       # the reader is gone before the first write
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=300) == 141, err
    lines = one_error_line(err)
    assert "Traceback" not in err and "internal error" not in err and "Exception" not in err
    if args[0] == "scan":
        bundles = [p for p in (tmp_path / "attest-demo").iterdir() if p.name[:1].isdigit()]
        assert len(bundles) == 1 and (bundles[0] / "manifest.json").is_file()
        assert f"bundle: attest-demo/{bundles[0].name}" in lines
        assert any(line.startswith("exit 141: stdout was closed") for line in lines)
    else:
        assert lines == []


def test_head_in_a_shell_pipe_is_quiet(bundle: Path, tmp_path: Path) -> None:
    """`attest controls --format json | head -1` as typed: the first line, nothing on stderr."""
    env = {k: v for k, v in os.environ.items() if k != "ATTEST_CONFIG"}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(f"{sys.executable} -m attest controls --format json | head -1",
                          shell=True, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.stdout == "[\n" and done.stderr == ""


def test_ctrl_c_during_a_scan_is_one_line_and_exit_130(tmp_path: Path) -> None:
    proc = attest_process(["scan", "--demo"], tmp_path, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    seen = []
    for line in proc.stderr:                  # wait until collectors run
        seen.append(line)
        if "scan started" in line:
            break
    proc.send_signal(signal.SIGINT)
    rest = proc.stderr.read()
    assert proc.wait(timeout=120) == 130, "".join(seen) + rest
    assert one_error_line("".join(seen) + rest) == ["attest: interrupted; no bundle was written"]
    assert not [p for p in (tmp_path / "attest-demo").iterdir() if p.name[:1].isdigit()]


def test_sigterm_during_a_scan_stops_at_once_and_keeps_the_evidence(tmp_path: Path) -> None:
    """What Kubernetes and CI runners send: handled like Ctrl-C. Reads in flight (here every
    fake answers after 2 s) are abandoned, the evidence already collected is kept in a hidden
    .incomplete folder, one line says so, exit 130."""
    import time
    proc = attest_process(["scan", "--demo"], tmp_path, {"ATTEST_DEMO_LATENCY_MS": "2000"},
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seen = []
    for line in proc.stderr:                  # AWS (moto, no added latency) has been collected
        seen.append(line)
        if "aws: " in line and "evidence records" in line:
            break
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    rest = proc.stderr.read()
    assert proc.wait(timeout=60) == 130, "".join(seen) + rest
    waited = time.monotonic() - t0
    assert waited < 2, f"waited {waited:.1f}s for reads in flight"   # a GitHub read takes >= 2 s each
    lines = one_error_line("".join(seen) + rest)
    assert len(lines) == 1 and lines[0].startswith("attest: stopped (SIGTERM); no bundle was written; the ")
    folder = tmp_path / "attest-demo"
    kept = [p for p in folder.iterdir() if p.name.endswith(".incomplete")]
    assert len(kept) == 1 and str(kept[0].name) in lines[0]
    assert list((kept[0] / "evidence" / "aws").rglob("*.json"))
    assert not [p for p in folder.iterdir() if p.name.endswith(".partial") or p.name[:1].isdigit()]
