"""The HTML readiness report (jinja2, autoescape on)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape


def _env() -> Environment:
    return Environment(loader=PackageLoader("reports", "templates"),
                       autoescape=select_autoescape(default=True, default_for_string=True))


def render_report(results: dict[str, Any], history: list[Path]) -> str:
    return _env().get_template("report.html.j2").render(results=results)
