"""Config errors are one line naming file, line and key, with exit code 2."""
from __future__ import annotations

from pathlib import Path

import pytest

from attest.cli import main
from attest.config import load_config
from attest.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "config.yaml"
    p.write_text(text, encoding="utf-8")
    return p


def test_defaults_without_a_file() -> None:
    cfg = load_config(None)
    assert cfg.model.output_dir == "evidence"
    assert cfg.model.aws is None and cfg.model.github is None


def test_shipped_example_config_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    from attest.config import ENV_REF      # every ${VAR} the file names, whatever its sources
    for var in ENV_REF.findall((ROOT / "config.yaml").read_text(encoding="utf-8")):
        monkeypatch.setenv(var, "x")
    cfg = load_config(ROOT / "config.yaml")
    assert cfg.model.controls["aws.rds.backups"]["min_days"] == 7


def test_unknown_key_names_file_line_and_key(tmp_path: Path) -> None:
    p = write(tmp_path, "output_dir: out\naws:\n  regions: all\n  regoins: [us-east-1]\n")
    with pytest.raises(ConfigError) as exc:
        load_config(p)
    assert str(exc.value) == f"{p}:4: aws.regoins: unknown key"


def test_wrong_type(tmp_path: Path) -> None:
    p = write(tmp_path, "aws:\n  accounts: 7\n")
    with pytest.raises(ConfigError) as exc:
        load_config(p)
    assert f"{p}:2: aws.accounts:" in str(exc.value)


def test_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["scan", "--config", str(tmp_path / "nope.yaml")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err == [f"attest: error: {tmp_path / 'nope.yaml'}: config file not found"]


def test_bad_yaml(tmp_path: Path) -> None:
    p = write(tmp_path, "aws:\n  regions: [us-east-1\n")
    with pytest.raises(ConfigError, match=r"config.yaml:\d+: invalid YAML"):
        load_config(p)


def test_unset_env_var_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ATTEST_TEST_UNSET", raising=False)
    p = write(tmp_path, "output_dir: ${ATTEST_TEST_UNSET}\n")
    with pytest.raises(ConfigError) as exc:
        load_config(p)
    assert str(exc.value) == f"{p}:1: output_dir: environment variable ATTEST_TEST_UNSET is not set"


def test_control_params_are_checked(tmp_path: Path) -> None:
    p = write(tmp_path, "controls:\n  aws.rds.backups:\n    min_days: seven\n")
    with pytest.raises(ConfigError, match=r":3: controls.aws.rds.backups.min_days: expected int"):
        load_config(p)
    p = write(tmp_path, "controls:\n  aws.rds.backups:\n    max_days: 7\n")
    with pytest.raises(ConfigError, match=r"unknown parameter \(known: min_days\)"):
        load_config(p)
    p = write(tmp_path, "controls:\n  aws.nope: {}\n")
    with pytest.raises(ConfigError, match=r":2: controls.aws.nope: unknown control id"):
        load_config(p)


def test_digest_is_stable_and_has_no_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATTEST_TEST_DIR", "out-a")
    p = write(tmp_path, "output_dir: ${ATTEST_TEST_DIR}\n")
    a = load_config(p)
    monkeypatch.setenv("ATTEST_TEST_DIR", "out-b")
    b = load_config(p)
    assert a.digest == b.digest  # the digest covers the file as written, never the values
    assert a.model.output_dir == "out-a"


def test_a_config_file_without_aws_skips_aws(tmp_path: Path) -> None:
    from attest.scan import plan_sources
    p = write(tmp_path, "output_dir: out\n")
    run, skipped = plan_sources(load_config(p))
    assert "aws" in skipped and "aws" not in run and "manual" in run
    run, skipped = plan_sources(load_config(write(tmp_path, "aws: {}\n")))
    assert "aws" in run
    run, skipped = plan_sources(load_config(None))  # no file at all: the default chain
    from attest.sources import source_names   # every source but AWS and manual needs a section
    assert "aws" in run and set(skipped) == set(source_names()) - {"aws", "manual"}


@pytest.mark.parametrize("value", ["us-east-1", "5", "[us-east-1, 7]", "[]"])
def test_regions_error_names_the_key(tmp_path: Path, value: str) -> None:
    p = write(tmp_path, f"aws:\n  regions: {value}\n")
    with pytest.raises(ConfigError) as exc:
        load_config(p)
    assert str(exc.value).startswith(f"{p}:2: aws.regions: expected 'all' or a list of region names")
