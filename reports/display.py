"""How the reports put text on the page: ids that wrap only where a reader expects, remediation
text split into steps, paragraphs and shell commands, gaps in days as ranges, and the verify
command of a bundle. Presentation only: no results are read or changed here.

Everything returned for HTML is either plain data for an autoescaping template or ``Markup``
built from ``escape``-d text, so a string that came from an API never becomes markup.
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Iterable

from markupsafe import Markup, escape

# A part of an id longer than this (between its break points) may break anywhere: a long ARN
# tail or a made-up bucket name must not push a table wider than a phone screen.
LONG_PART = 40


def _breakable(value: object, after: str, kind: str) -> Markup:
    text = str(value if value is not None else "")
    parts = re.split(f"(?<=[{re.escape(after)}])", text)
    longest = max((len(w) for p in parts for w in re.split(r"[\s-]", p)), default=0)
    css = f"{kind} long" if longest > LONG_PART else kind
    inner = Markup("<wbr>").join(escape(p) for p in parts if p)
    return Markup('<span class="{}">{}</span>').format(css, inner)


def ident(value: object) -> Markup:
    """A control id (``aws.cloudtrail.log_validation``): may wrap after a dot, never inside a
    word."""
    return _breakable(value, ".", "ident")


def resource(value: object) -> Markup:
    """A resource (an ARN, ``acme/api``, ``aws:123456789012:us-east-1``, an e-mail address): may
    wrap after ``:``, ``/`` and ``@``; only a part longer than ``LONG_PART`` breaks inside."""
    return _breakable(value, ":/@", "res")


def path(value: object) -> Markup:
    """A bundle-relative file path: may wrap after a ``/``."""
    return _breakable(value, "/", "res")


def code(value: object) -> Markup:
    """Inline code (a command in a sentence): wraps between words, never inside an option like
    ``--valid-until``; a word too long for a phone screen may still break."""
    words = str(value if value is not None else "").split(" ")
    return Markup(" ").join(Markup('<span class="nb">{}</span>').format(w) if len(w) <= LONG_PART
                            else escape(w) for w in words)


# --- remediation text -------------------------------------------------------------------------

Span = tuple[bool, str]          # (is code, text)


@dataclass
class Block:
    """One piece of remediation text: ``para`` (spans), ``steps`` (a list of span lists) or
    ``command`` (shell lines to copy, with a label such as ``CLI``)."""
    kind: str
    spans: list[Span] = field(default_factory=list)
    steps: list[list[Span]] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    label: str = ""


_STEP = re.compile(r"^(\d{1,2})[.)]\s+")
_INLINE_STEP = re.compile(r"(?:^|\s)(\d{1,2})[.)]\s+")
_COMMAND = re.compile(r"^(?:(?P<label>CLI|Shell|Command|Run):\s*|\$\s+)(?P<cmd>.*)$")
_BARE_COMMAND = re.compile(r"^(?:aws|gh|attest)\s+[a-z][a-z0-9-]*(?:\s|$)")
# a shell line ends here and the next line is a new one; anywhere else a line break in the
# catalog is only wrapping, and the command goes on
_SHELL_LINE_END = re.compile(r"(?:&&|\|\||;|\||\\)\s*$")


def code_spans(text: str) -> list[Span]:
    """Text split at backticks: ``run `attest scan` daily`` -> prose, code, prose."""
    pieces = text.split("`")
    if len(pieces) % 2 == 0:                 # an unpaired backtick: leave the text as it is
        return [(False, text)] if text else []
    return [(i % 2 == 1, p) for i, p in enumerate(pieces) if p]


def _inline_steps(text: str) -> tuple[str, list[str]]:
    """(lead-in, numbered steps) when the text is written as '... 1. do this 2. do that'."""
    parts = _INLINE_STEP.split(text.strip())
    numbers = parts[1::2]
    if len(numbers) < 2 or numbers != [str(i) for i in range(1, len(numbers) + 1)]:
        return text, []
    return parts[0].strip(), [p.strip() for p in parts[2::2]]


def _command_lines(lines: list[str]) -> list[str]:
    """Catalog lines of a command joined back into shell lines that paste as they read."""
    out: list[str] = []
    for line in (ln.strip() for ln in lines):
        if not line:
            continue
        if out and not _SHELL_LINE_END.search(out[-1]):
            out[-1] = f"{out[-1]} {line}"
        else:
            out.append(line)
    return out


def remediation_blocks(text: str) -> list[Block]:
    """Remediation text as the report shows it.

    Lines starting ``1.``, ``2.`` ... are steps (indented lines continue them); ``CLI: ...`` (or a
    line that starts with ``aws``/``gh``/``attest`` and a sub-command) starts a command, which
    runs on to the end of the paragraph; other lines are prose. A one-line text numbered inline
    ("Risk: ... 1. Open ... 2. Tick ...") becomes a lead-in and steps. Backticked spans are code.
    """
    raw: list[tuple[str, list[str], str]] = []     # (para / step / command, lines, label)
    for line in (text or "").splitlines():
        stripped = line.strip()
        indented = line[:1].isspace()
        kind = raw[-1][0] if raw else ""
        if not stripped:
            if kind:
                raw.append(("", [], ""))        # a blank line ends the block
            continue
        cmd = _COMMAND.match(stripped)
        if kind == "command":
            raw[-1][1].append(stripped)
        elif cmd:
            raw.append(("command", [cmd.group("cmd")], cmd.group("label") or ""))
        elif not indented and _BARE_COMMAND.match(stripped):
            raw.append(("command", [stripped], ""))
        elif _STEP.match(stripped) and not indented:
            raw.append(("step", [stripped], ""))
        elif kind == "para" or (kind == "step" and indented):
            raw[-1][1].append(stripped)
        else:
            raw.append(("para", [stripped], ""))
    blocks: list[Block] = []
    for kind, lines, label in raw:
        if kind == "command":
            blocks.append(Block("command", lines=_command_lines(lines), label=label))
        elif kind == "step":
            joined = "\n".join(lines)
            _, inline = _inline_steps(joined)       # "1. do this 2. do that" on one line
            bodies = inline or [_STEP.sub("", joined, count=1)]
            if not (blocks and blocks[-1].kind == "steps"):
                blocks.append(Block("steps"))
            blocks[-1].steps.extend(code_spans(b) for b in bodies)
        elif kind == "para":
            lead, steps = _inline_steps("\n".join(lines))
            if lead:
                blocks.append(Block("para", spans=code_spans(lead)))
            if steps:
                blocks.append(Block("steps", steps=[code_spans(s) for s in steps]))
    return blocks


# --- days ------------------------------------------------------------------------------------

def day_ranges(days: Iterable[str | date]) -> list[str]:
    """Days as runs: ``['2026-09-03 to 2026-09-07', '2026-09-10']`` for six missing days."""
    parsed = sorted({d if isinstance(d, date) else date.fromisoformat(str(d)) for d in days})
    runs: list[list[date]] = []
    for d in parsed:
        if runs and d - runs[-1][1] == timedelta(days=1):
            runs[-1][1] = d
        else:
            runs.append([d, d])
    return [a.isoformat() if a == b else f"{a.isoformat()} to {b.isoformat()}" for a, b in runs]


# --- verify command ---------------------------------------------------------------------------

PUBLIC_KEY_PLACEHOLDER = "PUBLIC_KEY.pem"


def verify_command(bundle_dir: str | None, signed: bool, public_key: str | None = None) -> str:
    """``attest verify`` for one bundle, runnable from any folder when ``bundle_dir`` is
    absolute; with ``--public-key`` when the bundle is signed (the placeholder when the key's
    file is not known)."""
    parts = ["attest", "verify", shlex.quote(bundle_dir or "BUNDLE_FOLDER")]
    if signed:
        parts += ["--public-key", shlex.quote(public_key) if public_key else PUBLIC_KEY_PLACEHOLDER]
    return " ".join(parts)
