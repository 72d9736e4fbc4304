"""The README's control table and config reference stay true to the code."""
from __future__ import annotations

import re
from pathlib import Path

import yaml

from attest.cli import main
from controls import load_catalog

ROOT = Path(__file__).resolve().parents[1]


def test_readme_control_table_matches_catalog(capsys) -> None:
    assert main(["controls", "--format", "markdown"]) == 0
    expected = capsys.readouterr().out.strip()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- controls:start -->\n(.*?)\n<!-- controls:end -->", readme, re.S)
    assert block, "README lacks the controls block"
    assert block.group(1).strip() == expected, (
        "README control table is stale; replace the block with `attest controls --format markdown`")


def test_every_catalog_control_is_listed_by_attest_controls(capsys) -> None:
    assert main(["controls", "--format", "json"]) == 0
    import json
    listed = {c["id"]: c["criteria"] for c in json.loads(capsys.readouterr().out)}
    assert listed == {c.id: c.criteria for c in load_catalog()}


def test_config_yaml_names_every_source_section() -> None:
    from attest.sources import source_names
    data = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    for source in source_names():
        if source != "manual":
            assert source in data, f"config.yaml has no {source} section"


def test_config_yaml_is_a_valid_config(monkeypatch, tmp_path) -> None:
    """The reference config.yaml loads as it is (its ${ENV} references set)."""
    from attest.config import ENV_REF, load_config
    text = (ROOT / "config.yaml").read_text(encoding="utf-8")
    for name in ENV_REF.findall(text):
        monkeypatch.setenv(name, "x")
    config = load_config(ROOT / "config.yaml")
    assert config.model.store is None and config.model.signing is None
    assert config.model.store_options.object_lock is None


def test_readme_sources_table_is_the_registry() -> None:
    from attest.sources import markdown_table
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- sources-table:start -->\n(.*?)\n<!-- sources-table:end -->", readme, re.S)
    assert block and block.group(1).strip() == markdown_table(), "README sources table is stale"


def test_readme_command_table_matches_the_parser() -> None:
    """The README's command table is generated from the parser (usage and description of every
    command); regenerate it with `attest.cli.commands_markdown()` when a command changes."""
    from attest.cli import commands_markdown
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- commands:start -->\n(.*?)\n<!-- commands:end -->", readme, re.S)
    assert block, "README lacks the commands block"
    assert block.group(1).strip() == commands_markdown(), (
        "README command table is stale; replace the block with "
        "`python -c 'from attest.cli import commands_markdown; print(commands_markdown())'`")


def test_readme_exit_codes_match_attest_help() -> None:
    from attest.cli import EXIT_CODES
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Exit codes", 1)[1].split("\n## ", 1)[0]
    assert [int(c) for c in re.findall(r"^\| (\d+) \|", section, re.M)] == list(EXIT_CODES)
