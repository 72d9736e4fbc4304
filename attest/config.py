"""Load and validate ``config.yaml``.

The top level is built from parts: ``output_dir``, ``controls`` (per-control parameters checked
against the catalog), ``exceptions_file``, and one optional section per source whose model is the
collector's own ``Config`` (so a new source adds no code here). Secrets are given only as
``${ENV_VAR}`` references; every problem is one line naming the file, line and key.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError, create_model, field_validator

from attest.errors import ConfigError, UsageError, plain_message
from attest.model import canonical_json, sha256_bytes
from attest.alerts import AlertsConfig
from attest.s3store import StoreOptions
from attest.signing import SigningConfig
from attest.sources import sources

ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class CoreConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    output_dir: str = "evidence"
    exceptions_file: str | None = "exceptions.yaml"
    controls: dict[str, dict[str, Any]] = {}
    store: str | None = None                  # s3://bucket/prefix; None: the local output_dir
    store_options: StoreOptions = StoreOptions()
    signing: SigningConfig | None = None
    alerts: AlertsConfig | None = None

    @field_validator("store")
    @classmethod
    def _store(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from attest.s3store import parse_store_url
        try:
            bucket, prefix = parse_store_url(value)
        except UsageError:
            raise ValueError("expected s3://bucket/prefix with a valid bucket name") from None
        return f"s3://{bucket}/{prefix}".rstrip("/")


def config_model() -> type[BaseModel]:
    fields: dict[str, Any] = {}
    for name, source in sources().items():
        fields[name] = (source.config | None, None)
    return create_model("AttestConfig", __base__=CoreConfig, **fields)


@dataclass
class LoadedConfig:
    model: Any                 # the validated AttestConfig
    path: Path | None          # None: no file, defaults
    digest: str                # sha256 of the config as written (secrets are only references)
    raw: dict[str, Any]

    def section(self, source: str) -> Any:
        return getattr(self.model, source, None)

    def secrets(self) -> list[str]:
        """The value of every secret the config holds (tokens, keys), to keep them out of
        anything attest writes besides the requests themselves."""
        out = []
        for loc in _secret_paths(self.model):
            value: Any = self.model
            for part in loc:
                value = value[part] if isinstance(part, int) else getattr(value, part)
            out.append(value.get_secret_value())
        return out

    @property
    def output_dir(self) -> Path:
        out = Path(self.model.output_dir)
        if not out.is_absolute() and self.path is not None:
            out = self.path.parent / out
        return out


def line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """The 1-based line of the YAML node at ``loc`` (as deep as it exists)."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == str(part):
                    line, node = key.start_mark.line + 1, value
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def _interpolate(value: Any, loc: tuple[Any, ...], problems: list[tuple[tuple, str]]) -> Any:
    if isinstance(value, dict):
        return {k: _interpolate(v, loc + (k,), problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, loc + (i,), problems) for i, v in enumerate(value)]
    if isinstance(value, str):
        def sub(m: re.Match[str]) -> str:
            var = m.group(1)
            if var not in os.environ:
                problems.append((loc, f"environment variable {var} is not set"))
                return ""
            if not os.environ[var]:
                problems.append((loc, f"environment variable {var} is empty"))
            return os.environ[var]
        return ENV_REF.sub(sub, value)
    return value


def _secret_paths(model: BaseModel, loc: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Locations of every SecretStr field that is set in a validated model."""
    out = []
    for name, _ in type(model).model_fields.items():
        value = getattr(model, name)
        if isinstance(value, SecretStr):
            out.append(loc + (name,))
        elif isinstance(value, BaseModel):
            out.extend(_secret_paths(value, loc + (name,)))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, BaseModel):
                    out.extend(_secret_paths(item, loc + (name, i)))
    return out


def _get(data: Any, loc: tuple[Any, ...]) -> Any:
    for part in loc:
        data = data[part]
    return data


def read_yaml(path: Path) -> tuple[Any, yaml.Node | None]:
    """(data, node tree for line numbers) of a YAML file; ConfigError naming the line if invalid."""
    if path.is_dir():
        raise ConfigError("is a folder; give a YAML file", file=str(path))
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", file=str(path)) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text (byte 0x{raw[exc.start]:02x}); save the file as UTF-8",
                          file=str(path), line=raw[:exc.start].count(b"\n") + 1) from None
    try:
        return yaml.safe_load(text), yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError(f"invalid YAML: {getattr(exc, 'problem', exc)}", file=str(path),
                          line=mark.line + 1 if mark else None) from None


def _location(err: dict[str, Any], prefix: tuple[Any, ...]) -> tuple[Any, ...]:
    # drop pydantic's union-member tags ("literal['all']", "list[str]") from the location
    return prefix + tuple(x for x in err["loc"] if not (isinstance(x, str) and "[" in x))


def validation_error(exc: ValidationError, *, file: str, node: yaml.Node | None,
                     prefix: tuple[Any, ...] = (), entry: int | None = None) -> ConfigError:
    """The first pydantic error as a one-line ConfigError with file, line and dotted key, in plain
    English (:func:`attest.errors.plain_message`). An unknown key is named first (a
    typo explains the errors after it). ``entry``: the 1-based number of the list entry
    ``prefix`` points at (the key is then shown as ``entry N: key``)."""
    errors = exc.errors()
    err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = _location(err, prefix)
    # a union reports one error per member at the same place: "expected 'all' or a list"
    same = [plain_message(e) for e in errors if _location(e, prefix) == loc and e is not err
            and e["type"] != "extra_forbidden"]
    msg = plain_message(err)
    if same and msg.startswith("expected ") and all(m.startswith("expected ") for m in same):
        msg += "".join(f" or {m.removeprefix('expected ')}" for m in same)
    if err["type"] not in ("extra_forbidden", "missing") and "input" in err \
            and not isinstance(err["input"], (dict, list)):
        shown = err["input"] if not _looks_secret(loc) else "***"
        msg = f"{msg} (got {shown!r})"
    key = ".".join(map(str, loc))
    if entry is not None:
        rest = ".".join(map(str, loc[len(prefix):]))
        key = f"entry {entry}" + (f": {rest}" if rest else "")
    return ConfigError(msg, file=file, line=line_of(node, loc), key=key)


def load_config(path: str | Path | None, overrides: dict[str, Any] | None = None) -> LoadedConfig:
    """Read, interpolate and validate a config file (None: all defaults)."""
    node = None
    name = str(path) if path else "<defaults>"
    if path is None:
        raw: dict[str, Any] = {}
    else:
        p = Path(path)
        if not p.exists():
            raise ConfigError("config file not found", file=name)
        raw, node = read_yaml(p)
        if raw is None:
            raise ConfigError("the file is empty; give at least one section (see config.yaml in "
                              "the attest repository for every key)", file=name)
        if not isinstance(raw, dict):
            kind = "a list" if isinstance(raw, list) else f"a single value ({raw!r})"
            raise ConfigError(f"the top level is {kind}; expected a mapping of keys such as "
                              "output_dir: and aws:", file=name, line=1)
    raw = {**raw, **(overrides or {})}
    problems: list[tuple[tuple, str]] = []
    data = _interpolate(raw, (), problems)
    try:
        model = config_model().model_validate(data)
    except ValidationError as exc:
        # an unknown key comes first (`tokn: ${GITHUB_TOKEN}`: the typo, not the variable)
        if not problems or any(e["type"] == "extra_forbidden" for e in exc.errors()):
            raise validation_error(exc, file=name, node=node) from None
    if problems:  # an unset or empty variable, before any error it causes
        loc, msg = problems[0]
        raise ConfigError(msg, file=name, line=line_of(node, loc), key=".".join(map(str, loc)))
    for loc in _secret_paths(model):
        written = _get(raw, loc) if _has(raw, loc) else None
        if written is not None and not ENV_REF.fullmatch(str(written).strip()):
            raise ConfigError("secrets must be given as an ${ENV_VAR} reference, not a literal value",
                              file=name, line=line_of(node, loc), key=".".join(map(str, loc)))
    _check_control_params(model, node, name)
    if model.alerts is not None and model.alerts.datadog is not None and \
            getattr(model, "datadog", None) is None:
        raise ConfigError("alerts to Datadog need the datadog: section (its site and api_key)",
                          file=name, line=line_of(node, ("alerts", "datadog")), key="alerts.datadog")
    return LoadedConfig(model=model, path=Path(path) if path else None,
                        digest=sha256_bytes(canonical_json(raw)), raw=raw)


def _has(data: Any, loc: tuple[Any, ...]) -> bool:
    try:
        _get(data, loc)
        return True
    except (KeyError, IndexError, TypeError):
        return False


def _looks_secret(loc: tuple[Any, ...]) -> bool:
    return any(isinstance(p, str) and re.search(r"token|key|secret|password", p, re.I) for p in loc)


def _check_control_params(model: Any, node: yaml.Node | None, name: str) -> None:
    from controls import catalog_by_id
    catalog = catalog_by_id()
    for cid, params in model.controls.items():
        if cid not in catalog:
            raise ConfigError("unknown control id", file=name, line=line_of(node, ("controls", cid)),
                              key=f"controls.{cid}")
        if not isinstance(params, dict):
            raise ConfigError("expected a mapping of parameters", file=name,
                              line=line_of(node, ("controls", cid)), key=f"controls.{cid}")
        for pname, value in params.items():
            spec = catalog[cid].params.get(pname)
            loc = ("controls", cid, pname)
            if spec is None:
                known = ", ".join(catalog[cid].params) or "none"
                raise ConfigError(f"unknown parameter (known: {known})", file=name,
                                  line=line_of(node, loc), key=f"controls.{cid}.{pname}")
            problem = spec.check(value)
            if problem:
                raise ConfigError(problem, file=name, line=line_of(node, loc),
                                  key=f"controls.{cid}.{pname}")


def config_file(config_arg: str | None) -> str | None:
    """The config file a command uses: ``--config``, else ``$ATTEST_CONFIG`` (set but empty, as
    ``ATTEST_CONFIG=$UNSET_VAR`` makes it, counts as unset), else None."""
    return config_arg or os.environ.get("ATTEST_CONFIG") or None


def output_dir_for(dir_arg: str | None, config_arg: str | None) -> Path:
    """The output folder a command works on: ``--dir``, else the config's (``--config`` or
    ``$ATTEST_CONFIG``; with neither, the default ``./evidence``)."""
    if dir_arg:
        return Path(dir_arg)
    return load_config(config_file(config_arg)).output_dir


def location_for(dir_arg: str | None, config_arg: str | None) -> str | Path:
    """Where a command reads the chain of bundles: ``--dir`` (a folder or ``s3://...``), else
    the config's S3 store when it names one, else its output folder."""
    if dir_arg:
        return dir_arg if dir_arg.startswith("s3://") else Path(dir_arg)
    config = load_config(config_file(config_arg))
    return config.model.store or config.output_dir
