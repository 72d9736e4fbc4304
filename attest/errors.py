"""The exceptions attest raises, each with the exit code the CLI maps it to. (Evidence that could
not be collected is not an exception: it is recorded as evidence and makes the scan exit 3.)

    AttestError                  exit 2 unless a subclass says otherwise
    ├── ConfigError              exit 2  bad config file, key, type, value (file, line, key)
    ├── CatalogError             exit 2  the control catalog is inconsistent
    ├── UsageError               exit 2  bad command-line use (unknown bundle, bad date, ...)
    ├── IntegrityError           exit 1  a bundle or the hash chain does not verify (bundle, file)
    └── StoreError               exit 3  the S3 evidence store could not be read or written
                                         (exit 2 when it is refused as unsafe)
"""
from __future__ import annotations


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
