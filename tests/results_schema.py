"""Every results.json a test writes must fit the shipped schema (attest/schemas/results.schema.json).

Used by the autouse fixtures in ``tests/conftest.py``; :func:`schema_problem` is the validator
(``jsonschema``, the schema's own draft, with format checks) and :func:`problems_under` walks a
folder for ``results.json`` files, skipping those already validated unchanged.
"""
from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from attest.results import RESULTS, SCHEMA_PATH


@lru_cache(maxsize=1)
def _validator() -> Any:
    import jsonschema
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def schema_problem(path: Path) -> str | None:
    """None when ``path`` fits the shipped results schema, else one line: the file, where in it,
    and the most relevant error (jsonschema's ``best_match``)."""
    from jsonschema.exceptions import best_match
    try:
        data = json.loads(Path(path).read_bytes())
    except ValueError as exc:
        return f"{path}: not JSON: {exc}"
    error = best_match(_validator().iter_errors(data))
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
    return f"{path}: {where}: {error.message}"


_checked: dict[str, tuple[int, int]] = {}   # path -> (mtime_ns, size) of a file that fitted


def problems_under(root: Path) -> list[str]:
    """Every results.json under ``root`` that does not fit the schema (one line each)."""
    problems = []
    for folder, _, files in os.walk(root):
        if RESULTS not in files:
            continue
        path = os.path.join(folder, RESULTS)
        try:
            stat = os.stat(path)
        except OSError:   # removed meanwhile
            continue
        if _checked.get(path) == (stat.st_mtime_ns, stat.st_size):
            continue
        problem = schema_problem(Path(path))
        if problem is None:
            _checked[path] = (stat.st_mtime_ns, stat.st_size)
        else:
            problems.append(problem)
    return problems
