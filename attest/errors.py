"""The exceptions attest raises, each with the exit code the CLI maps it to. (Evidence that could
not be collected is not an exception: it is recorded as evidence and makes the scan exit 3.)

    AttestError                  exit 2 unless a subclass says otherwise
    ├── ConfigError              exit 2  bad config file, key, type, value (file, line, key)
    ├── CatalogError             exit 2  the control catalog is inconsistent
    ├── UsageError               exit 2  bad command-line use (unknown bundle, bad date, ...)
    ├── IntegrityError           exit 1  a bundle or the hash chain does not verify (bundle, file)
    └── StoreError               exit 3  the S3 evidence store could not be read or written
                                         (exit 2 when it is refused as unsafe)

:func:`plain_message` words a pydantic validation error for people: every config, exceptions
file and catalog error goes through it, so no message speaks pydantic ("Input should be ...").
"""
from __future__ import annotations

from typing import Any


class AttestError(Exception):
    exit_code = 2

    def __init__(self, *args: object, exit_code: int | None = None) -> None:
        super().__init__(*args)
        if exit_code is not None:
            self.exit_code = exit_code


class ConfigError(AttestError):
    exit_code = 2

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 key: str | None = None) -> None:
        where = ""
        if file:
            where = f"{file}"
            if line:
                where += f":{line}"
            where += ": "
        if key:
            where += f"{key}: "
        super().__init__(where + message)
        self.file, self.line, self.key = file, line, key


class CatalogError(AttestError):
    exit_code = 2


class UsageError(AttestError):
    exit_code = 2


class IntegrityError(AttestError):
    exit_code = 1

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [message]


class StoreError(AttestError):
    exit_code = 3


# pydantic's error types in plain words; the ones with numbers or choices are in plain_message()
PLAIN = {
    "missing": "required key is missing",
    "extra_forbidden": "unknown key",
    "string_type": "expected text",
    "int_type": "expected a whole number", "int_parsing": "expected a whole number",
    "int_from_float": "expected a whole number",
    "float_type": "expected a number", "float_parsing": "expected a number",
    "bool_type": "expected true or false", "bool_parsing": "expected true or false",
    "list_type": "expected a list", "tuple_type": "expected a list", "set_type": "expected a list",
    "dict_type": "expected a mapping of keys", "model_type": "expected a mapping of keys",
    "model_attributes_type": "expected a mapping of keys",
    "date_type": "expected a date YYYY-MM-DD", "date_parsing": "expected a date YYYY-MM-DD",
    "date_from_datetime_parsing": "expected a date YYYY-MM-DD",
    "date_from_datetime_inexact": "expected a date YYYY-MM-DD",
    "datetime_type": "expected a date and time", "datetime_parsing": "expected a date and time",
    "datetime_from_date_parsing": "expected a date and time",
    "url_type": "expected a URL", "url_parsing": "expected a URL", "url_scheme": "expected a URL",
    "none_required": "expected nothing (null)",
    "string_unicode": "expected text",
}


def plain_message(err: dict[str, Any]) -> str:
    """One pydantic error (an item of ``ValidationError.errors()``) as a person would say it,
    never in pydantic's words ("Input should be ...", "Field required")."""
    kind, ctx, msg = err["type"], err.get("ctx") or {}, err["msg"]
    if kind in PLAIN:
        return PLAIN[kind]
    if kind in ("literal_error", "enum"):
        return f"expected {ctx.get('expected', 'one of the allowed values')}"
    limits = {"string_too_short": ("must have at least", "min_length", "character"),
              "string_too_long": ("must have at most", "max_length", "character"),
              "too_short": ("needs at least", "min_length", "item"),
              "too_long": ("may have at most", "max_length", "item")}
    if kind in limits and limits[kind][1] in ctx:
        words, key, unit = limits[kind]
        n = ctx[key]
        return f"{words} {n} {unit}{'' if n == 1 else 's'}"
    bounds = {"greater_than_equal": ("ge", "must be at least"), "greater_than": ("gt", "must be more than"),
              "less_than_equal": ("le", "must be at most"), "less_than": ("lt", "must be less than")}
    if kind in bounds and bounds[kind][0] in ctx:
        return f"{bounds[kind][1]} {ctx[bounds[kind][0]]}"
    if kind == "string_pattern_mismatch":
        return f"does not have the expected form ({ctx.get('pattern', '')})"
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            return msg.removeprefix(prefix)
    if msg.startswith("Input should be "):
        return "expected " + msg.removeprefix("Input should be ")
    return msg
