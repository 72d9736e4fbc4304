"""The demo leads on: `attest scan --demo` says what its exit code means and which commands to run
next, and those commands, typed as shown in the same folder, work on ./attest-demo."""
from __future__ import annotations

import shlex
import zipfile
from pathlib import Path

import pytest

from attest.cli import main

NEXT = "next, in this folder:"


def suggested(err: str) -> list[list[str]]:
    """The commands the demo suggests, as argv lists (without the leading `attest`)."""
    lines = err.splitlines()
    start = lines.index(NEXT) + 1
    commands = []
    for line in lines[start:]:
        if not line.startswith("  attest "):
            break
        commands.append(shlex.split(line.split("  # ")[0])[1:])
    return commands


@pytest.fixture(scope="module")
def demo_folder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One demo scan, run plainly in a fresh folder; (folder, its stderr)."""
    folder = tmp_path_factory.mktemp("demo-cwd")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)
        mp.delenv("ATTEST_CONFIG", raising=False)
        capture = _Capture()
        with capture:
            code = main(["scan", "--demo"])
    assert code == 1, capture.err[-4000:]
    return folder, capture.err


class _Capture:
    """stderr of a module-scoped run (capsys is function-scoped)."""

    def __enter__(self) -> "_Capture":
        import io
        import sys
        self._old, self._buf = sys.stderr, io.StringIO()
        sys.stderr = self._buf
        return self

    def __exit__(self, *exc: object) -> None:
        import sys
        sys.stderr = self._old
        self.err = self._buf.getvalue()


def test_the_demo_says_what_its_exit_code_means(demo_folder) -> None:
    _, err = demo_folder
    assert "exit 1: some controls fail, as the demo intends" in err.splitlines()


def test_the_demo_suggests_the_next_commands(demo_folder) -> None:
    _, err = demo_folder
    commands = suggested(err)
    assert [c[0] for c in commands] == ["verify", "report", "history", "export", "evidence"]
    assert commands[0][:4] == ["verify", "attest-demo", "--public-key",
                               "attest-demo/demo-signing-key.pub.pem"]
    assert not any("--dir" in c for c in commands), "plain commands, in the same folder"


def test_each_suggested_command_works_as_typed(demo_folder, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    folder, err = demo_folder
    monkeypatch.chdir(folder)
    monkeypatch.delenv("ATTEST_CONFIG", raising=False)
    (folder / "FILE").write_text("the pentest report\n", encoding="utf-8")
    for argv in suggested(err):
        code = main(argv)
        captured = capsys.readouterr()
        assert code == 0, f"attest {shlex.join(argv)}: {captured.err}"
        if argv[0] != "verify":   # verify names the folder itself
            assert "using the demo's bundles in ./attest-demo" in captured.err, argv
        if argv[0] == "verify":
            assert "every bundle is signed by the given public key" in captured.out
    assert "Acme" in (folder / "attest-report.html").read_text(encoding="utf-8")
    [export] = folder.glob("attest-export-*.zip")
    assert zipfile.is_zipfile(export)
    assert list((folder / "attest-demo" / "manual" / "manual.penetration_test").glob("*/FILE"))
    assert not (folder / "evidence").exists(), "nothing went to the default ./evidence"


def test_evaluate_and_diff_find_the_demo_folder_too(demo_folder, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    folder, _ = demo_folder
    monkeypatch.chdir(folder)
    monkeypatch.delenv("ATTEST_CONFIG", raising=False)
    assert main(["evaluate"]) == 1
    assert "same statuses as the stored results" in capsys.readouterr().out


def test_the_demo_folder_is_not_used_when_a_config_or_evidence_says_otherwise(
        demo_folder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    import shutil
    folder, _ = demo_folder
    cwd = tmp_path / "cwd"
    shutil.copytree(folder / "attest-demo", cwd / "attest-demo")
    monkeypatch.chdir(cwd)
    (cwd / "c.yaml").write_text("output_dir: ev\n", encoding="utf-8")
    monkeypatch.setenv("ATTEST_CONFIG", "c.yaml")       # a config: its output_dir
    assert main(["history"]) == 2
    assert "ev: no such folder, so no bundles yet" in capsys.readouterr().err
    monkeypatch.delenv("ATTEST_CONFIG")
    (cwd / "evidence").mkdir()                         # ./evidence exists: it is the default
    assert main(["history"]) == 2
    assert "evidence: no bundles found" in capsys.readouterr().err


def test_the_suggestions_name_the_folder_when_plain_commands_would_not_find_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from attest.cli.scan import demo_next_steps
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ATTEST_CONFIG", raising=False)
    text = demo_next_steps(Path("elsewhere"), Path("elsewhere/demo-signing-key.pub.pem"),
                           "20261122T020000Z")
    assert "attest report --dir elsewhere" in text and "attest history --dir elsewhere" in text
    (tmp_path / "evidence").mkdir()
    text = demo_next_steps(Path("attest-demo"), Path("attest-demo/k.pem"), "20261122T020000Z")
    assert "attest history --dir attest-demo" in text
    assert "attest export --from 2026-11-22 --to 2026-11-22 --dir attest-demo" in text
