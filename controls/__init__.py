"""Stage 3: the control catalog (data) and the rules that judge evidence (pure functions).

The catalog lives in ``controls/catalog/*.yaml``, one file per source; each entry is a
:class:`Control`.

``population`` says what a control's findings cover. ``current`` (the default): the resources that
exist now, so a resource missing from a later scan is gone. ``windowed``: events in a look-back
window that moves with each scan (github.changes_reviewed judges the pull requests merged since the
previous good read), so an event missing from a later scan left the window: it was judged once and
is not judged again. ``attest diff`` and the report's changes panel tell the two apart. ``load_catalog()`` validates it against ``criteria.yaml``, the rule registry and
the collectors' declared evidence names.
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from attest.errors import CatalogError, plain_message

HERE = Path(__file__).parent
CATALOG_DIR = HERE / "catalog"

PARAM_TYPES = {"int": int, "float": (int, float), "bool": bool, "str": str, "list": list,
               "dict": dict}


class Param(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["int", "float", "bool", "str", "list", "dict"]
    default: Any = None
    min: float | None = None
    description: str = ""

    def check(self, value: Any) -> str | None:
        """Return a problem with ``value``, or None."""
        expected = PARAM_TYPES[self.type]
        if value is None and self.default is None:
            return None
        if isinstance(value, bool) and self.type in ("int", "float"):
            return f"expected {self.type}, got bool"
        if not isinstance(value, expected):
            return f"expected {self.type}, got {type(value).__name__}"
        if self.min is not None and value < self.min:
            return f"must be >= {self.min:g}"
        return None


class Control(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(pattern=r"^[a-z0-9_]+(\.[a-z0-9_]+)+$")
    title: str = Field(min_length=3)
    criteria: list[str] = Field(min_length=1)
    severity: Literal["low", "medium", "high", "critical"]
    kind: Literal["automated", "manual"] = "automated"
    evidence: list[str] = Field(default_factory=list)
    params: dict[str, Param] = Field(default_factory=dict)
    description: str = Field(min_length=10)
    remediation: str = Field(min_length=10)
    examples: dict[Literal["pass", "fail"], str] = Field(default_factory=dict)
    population: Literal["current", "windowed"] = "current"

    @property
    def source(self) -> str:
        return self.id.split(".", 1)[0]

    @field_validator("criteria")
    @classmethod
    def _known_criteria(cls, value: list[str]) -> list[str]:
        unknown = [c for c in value if c not in criteria()]
        if unknown:
            raise ValueError(f"unknown SOC 2 criteria {unknown}")
        return value

    def param_values(self, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        values = {name: p.default for name, p in self.params.items()}
        values.update(overrides or {})
        return values


def _load_yaml(text: str) -> Any:
    """``yaml.safe_load``, with libyaml's C parser when PyYAML has it (the catalog is read by
    every command: the pure-Python parser takes a third of a second over it)."""
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506


@lru_cache(maxsize=1)
def criteria() -> dict[str, str]:
    return _load_yaml((HERE / "criteria.yaml").read_text(encoding="utf-8"))


def criteria_family(criterion: str) -> str:
    """'CC6.1' -> 'CC6', 'A1.2' -> 'A1'."""
    return criterion.split(".", 1)[0]


@lru_cache(maxsize=1)
def load_catalog() -> tuple[Control, ...]:
    controls: list[Control] = []
    seen: dict[str, str] = {}
    from attest.sources import sources
    for path in [source.catalog_path for source in sources().values()]:
        if not path.is_file():
            raise CatalogError(f"{path.name}: the catalog file of a registered source is missing")
        entries = _load_yaml(path.read_text(encoding="utf-8")) or []
        if not isinstance(entries, list):
            raise CatalogError(f"{path.name}: the catalog file must be a list of controls")
        for i, entry in enumerate(entries):
            try:
                control = Control.model_validate(entry)
            except ValidationError as exc:
                err = exc.errors()[0]
                loc = ".".join(str(x) for x in err["loc"])
                cid = entry.get("id", f"#{i}") if isinstance(entry, dict) else f"#{i}"
                raise CatalogError(f"{path.name}: {cid}: {loc}: {plain_message(err)}") from None
            if control.id in seen:
                raise CatalogError(f"{path.name}: duplicate control id {control.id} "
                                   f"(also in {seen[control.id]})")
            seen[control.id] = path.name
            controls.append(control)
    return tuple(controls)


def catalog_by_id() -> dict[str, Control]:
    return {c.id: c for c in load_catalog()}


def select(controls: tuple[Control, ...] | list[Control], *, source: str | None = None,
           criterion: str | None = None) -> list[Control]:
    """Filter controls by source (``aws``) and/or criterion (``CC6.1`` or a family ``CC6``)."""
    out = []
    criterion = criterion.upper() if criterion else criterion
    source = source.lower() if source else source
    for c in controls:
        if source and c.source != source:
            continue
        if criterion and not any(k == criterion or re.fullmatch(re.escape(criterion) + r"\.\d+", k)
                                 for k in c.criteria):
            continue
        out.append(c)
    return out
