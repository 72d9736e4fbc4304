"""The source registry: which sources attest knows, and what each one is.

A source is one package, ``collectors/<name>/``: ``source.py`` (its config model and its
:class:`Source` entry, importing no SDK), ``collector.py``, its API client code, and ``demo``
(the local fake and the seeded estate). Its controls are ``controls/catalog/<name>.yaml`` and
``controls/rules/<name>*.py``. The one list of sources is the ``attest.sources`` entry-point
group (``pyproject.toml``), so a third-party package can add a source; config sections, rule
loading, the demo, the architecture test's SDK list and the README's tables all derive from it.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

ENTRY_POINTS = "attest.sources"
WITHOUT_CONFIG_FILE = "without_config_file"
CONTROLS_DIR = Path(__file__).resolve().parent.parent / "controls"


@dataclass(frozen=True)
class Source:
    """What attest needs to know of a source before importing any of its SDKs."""
    name: str                          # config key, evidence-name prefix, control-id prefix
    title: str                         # for people: "AWS", "GitHub"
    config: Any                        # the pydantic model of its config section
    collector: str                     # "module:Class", imported only when the source runs
    produces: tuple[str, ...]          # every evidence name the collector may yield
    sdks: tuple[str, ...] = ()         # top-level modules of the SDKs it calls (rules never may)
    demo: str | None = None            # "module:start_demo" for `attest scan --demo`
    permissions: str | None = None     # "module:function" printing its least-privilege policy
    enabled_without_config: bool | str = False  # True, False or WITHOUT_CONFIG_FILE
    reads_with: str = ""               # the SDK, in words, for the README's table
    order: int = 100                   # place in listings
    catalog: Path | None = None        # default controls/catalog/<name>.yaml
    rules: tuple[str, ...] | None = None  # default every controls.rules.<name>, <name>_* module
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def catalog_path(self) -> Path:
        return self.catalog or CONTROLS_DIR / "catalog" / f"{self.name}.yaml"

    @property
    def rule_modules(self) -> tuple[str, ...]:
        if self.rules is not None:
            return self.rules
        folder = CONTROLS_DIR / "rules"
        names = sorted(p.stem for p in folder.glob("*.py")
                       if p.stem == self.name or p.stem.startswith(f"{self.name}_"))
        return tuple(f"controls.rules.{n}" for n in names)

    def load_collector(self) -> Any:
        return _load(self.collector)


def _load(target: str) -> Any:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


@lru_cache(maxsize=1)
def sources() -> dict[str, Source]:
    """Every registered source, in listing order."""
    from importlib.metadata import entry_points
    found: dict[str, Source] = {}
    for ep in entry_points(group=ENTRY_POINTS):
        source = ep.load()
        if not isinstance(source, Source) or source.name != ep.name:
            raise RuntimeError(f"entry point {ep.name} = {ep.value} is not the Source named {ep.name}")
        found[source.name] = source
    if not found:
        raise RuntimeError("no attest sources are registered: install attest (pip install -e .) "
                           "so its entry points exist")
    return dict(sorted(found.items(), key=lambda kv: (kv[1].order, kv[0])))


def source_names() -> tuple[str, ...]:
    return tuple(sources())


def load_collector(name: str) -> Any:
    return sources()[name].load_collector()


def load(target: str) -> Any:
    """The object a ``module:attr`` string of a Source names (demo, permissions)."""
    return _load(target)


def markdown_table() -> str:
    """The README's table of sources, generated from the registry (tests keep the README in step)."""
    from controls import load_catalog
    counts: dict[str, int] = {}
    for control in load_catalog():
        counts[control.source] = counts.get(control.source, 0) + 1
    rows = ["| source | reads with | config section | without its section | controls |",
            "|---|---|---|---|---|"]
    for name, s in sources().items():
        runs = ("runs" if s.enabled_without_config is True else
                "runs only when there is no config file" if s.enabled_without_config == WITHOUT_CONFIG_FILE
                else "skipped")
        rows.append(f"| {s.title} | {s.reads_with} | `{name}:` | {runs} | {counts.get(name, 0)} |")
    return "\n".join(rows)
