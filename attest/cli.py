"""The ``attest`` command line. The only module that exits the process.

Exit codes: 0 every control passes; 1 some control fails (or, for verify/export, a bundle does not
verify); 2 bad usage or config; 3 some evidence could not be collected or judged; 4 internal error.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from attest import __version__
from attest.errors import AttestError, UsageError
from attest.sources import source_names

if TYPE_CHECKING:
    from attest.results import Results

log = logging.getLogger("attest")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        raise UsageError(message)


def _setup_logging(verbose: bool, fmt: str = "text") -> None:
    from attest.logs import setup
    setup(verbose, fmt)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="attest", description="SOC 2 evidence collector and readiness scanner")
    p.add_argument("--version", action="version", version=f"attest {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.add_argument("--log-format", choices=["text", "json"], default="text",
                   help="log lines on stderr: text, or one JSON object a line (scan id, source, "
                        "scope, call, duration, outcome)")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    s = sub.add_parser("scan", help="collect evidence, evaluate controls, write a bundle")
    s.add_argument("--config", help="config file (default: $ATTEST_CONFIG, else defaults: the "
                                    "default AWS credential chain in all enabled regions)")
    s.add_argument("--out", help="output directory for bundles (overrides output_dir)")
    s.add_argument("--demo", action="store_true",
                   help="scan a fictional company on local servers: no credentials, no network")
    s.add_argument("--format", choices=["table", "json", "csv", "junit"], default="table",
                   help="what to print on stdout (default: a summary table)")
    s.add_argument("--allow-unsafe-store", action="store_true",
                   help="scan even when the S3 store is not versioned or is public")
    s.add_argument("--fail-on", choices=["any", "regression"], default="any",
                   help="any (default): exit 1 when a control fails, 3 when evidence is missing; "
                        "regression: exit 1 only when a control that passed on the previous scan "
                        "now fails or errors (3 still when the bundle could not be stored)")

    c = sub.add_parser("controls", help="list the control catalog")
    c.add_argument("--source", help=f"only this source ({', '.join(source_names())})")
    c.add_argument("--criterion", help="only controls mapped to this criterion (CC6.1) or family (CC6)")
    c.add_argument("--format", choices=["table", "json", "markdown"], default="table")

    v = sub.add_parser("verify", help="recompute every hash of a bundle (or all in a dir) and the chain")
    v.add_argument("target", help="a bundle folder, an output folder of bundles, or an S3 store "
                                  "s3://bucket/prefix (or one bundle in it)")
    v.add_argument("--allow-pruned", action="store_true",
                   help="accept that bundles older than the oldest one present were deleted")
    v.add_argument("--public-key", help="PEM public key: every bundle must be signed by it")
    v.add_argument("--config", help="config whose store_options reach the S3 store "
                                    "(default $ATTEST_CONFIG)")

    e = sub.add_parser("evaluate", help="re-run the controls on a bundle's stored evidence, offline")
    e.add_argument("bundle", help="a bundle folder, or s3://bucket/prefix/<bundle>")
    e.add_argument("--out", help="write the fresh results JSON here (never into a bundle)")
    e.add_argument("--config", help="take control parameters from this config instead of the bundle's")

    k = sub.add_parser("keys", help="the signing key")
    ksub = k.add_subparsers(dest="keys_command", required=True, parser_class=_Parser)
    kp = ksub.add_parser("public", help="print the PEM public key to hand the auditor")
    kp.add_argument("--config", help="config with the signing: section (default $ATTEST_CONFIG)")
    kp.set_defaults(func=cmd_keys_public)

    st = sub.add_parser("store", help="the S3 evidence store")
    stsub = st.add_subparsers(dest="store_command", required=True, parser_class=_Parser)
    sc = stsub.add_parser("check", help="versioning, Object Lock, encryption and public access "
                                        "of the store's bucket")
    sc.add_argument("--config", help="config with store: s3://... (default $ATTEST_CONFIG)")
    sc.add_argument("--json", action="store_true", help="print JSON instead of text")
    sc.set_defaults(func=cmd_store_check)

    pm = sub.add_parser("permissions", help="print the least-privilege policy a source (or the "
                                            "S3 store and signing key) needs")
    pm.add_argument("source", help="e.g. aws; or store: the S3 store's write policy")
    pm.add_argument("--config", help="for store: fill in the bucket, prefix and KMS key of this "
                                     "config (default $ATTEST_CONFIG)")

    from reports import commands  # report, history, diff, export, evidence: declared there
    commands.register(sub)
    return p


GLOBAL_FLAGS = {"-v": 0, "--verbose": 0, "--log-format": 1}


def _globals_first(argv: Sequence[str]) -> list[str]:
    """Global flags may follow the subcommand (``attest scan --log-format json``): move them to
    the front, where argparse reads them."""
    front, rest = [], []
    args = list(argv)
    i = 0
    while i < len(args):
        flag, _, value = args[i].partition("=")
        if args[i] == "--":
            rest.extend(args[i:])
            break
        if flag in GLOBAL_FLAGS:
            take = 0 if value or args[i].count("=") else GLOBAL_FLAGS[flag]
            front.extend(args[i:i + 1 + take])
            i += 1 + take
            continue
        rest.append(args[i])
        i += 1
    return front + rest


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(_globals_first(sys.argv[1:] if argv is None else argv))
        _setup_logging(args.verbose, args.log_format)
        return int(args.func(args) if hasattr(args, "func") else COMMANDS[args.command](args))
    except AttestError as exc:
        print(f"attest: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("attest: interrupted; no bundle was written", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: one line for the nightly log, the traceback with -v
        log.debug("internal error", exc_info=True)
        print(f"attest: internal error: {type(exc).__name__}: {exc} (run with -v for details)",
              file=sys.stderr)
        return 4


def cmd_scan(args: argparse.Namespace) -> int:
    from attest.config import load_config
    from attest.model import utcnow
    from attest.progress import progress_reporter
    from attest.scan import run_scan
    config_path = args.config or os.environ.get("ATTEST_CONFIG")
    now = utcnow()
    demo = None
    if args.demo:
        from attest.demo import start_demo
        out = Path(args.out or "attest-demo")
        if out.exists() and not out.is_dir():
            raise UsageError(f"{out}: output path exists and is not a directory")
        from collectors.manual.demo import demo_signing_key
        demo = start_demo(now)   # first: without the demo extra, nothing is written
        key, public_key = demo_signing_key(out)
        config = load_config(config_path, overrides={
            **demo.config, "signing": {"private_key_path": str(key.resolve())}})
        demo.prepare(out)
    else:
        config = load_config(config_path)
        out = Path(args.out) if args.out else config.output_dir
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out}: output path exists and is not a directory")
    exceptions = _load_exceptions(config)
    where = config.model.store or str(out.resolve())
    try:
        with progress_reporter() as step:
            outcome = run_scan(config, out_dir=out, progress=step, demo=bool(demo),
                               exceptions=exceptions, allow_unsafe_store=args.allow_unsafe_store)
    except KeyboardInterrupt:
        raise
    except Exception as exc:   # the scan could not run: the alert channels hear of it
        _alert(config, None, None, where, scan_failure=f"{type(exc).__name__}: {exc}"
               if not isinstance(exc, AttestError) else str(exc))
        raise
    finally:
        if demo:
            demo.stop()
    _alert(config, outcome.results, outcome.previous, where,
           scan_failure=f"the bundle could not be uploaded: {outcome.store_error}"
           if outcome.store_error else None)
    _print_results(outcome.results, args.format)
    print(f"bundle: {outcome.bundle}\nreport: {outcome.bundle / 'report.html'}", file=sys.stderr)
    if outcome.store_error:
        print(f"attest: error: the bundle was not uploaded to {outcome.store} (kept in "
              f"{outcome.bundle}; the next scan uploads it): {outcome.store_error}", file=sys.stderr)
    elif outcome.store:
        print(f"store: {outcome.store}/{outcome.bundle.name}/", file=sys.stderr)
    if demo:
        print(f"verify: attest verify {out} --public-key {public_key}  (the demo signs with a "
              "throwaway key; see README: signing)", file=sys.stderr)
    if args.fail_on == "regression":
        from attest.alerts import regressions
        if outcome.store_error:
            return 3
        regressed = regressions(outcome.previous, outcome.results)
        for change in regressed:
            print(f"regression: {change.id}: {change.before} -> {change.after}", file=sys.stderr)
        return 1 if regressed else 0
    return outcome.exit_code


def _alert(config: Any, current: Any, previous: Any, store: str, scan_failure: str | None) -> None:
    """Tell the configured alert channels; a channel that fails is logged, never fatal."""
    if config.model.alerts is None:
        return
    from attest.alerts import send_alerts
    outcomes = send_alerts(config.model.alerts, current=current, previous=previous, store=store,
                           datadog=config.section("datadog"), scan_failure=scan_failure, log=log)
    for channel, outcome in outcomes.items():
        log.info("alert %s: %s", channel, outcome)


def _load_exceptions(config: Any) -> Any:
    from attest.exceptions import load_exceptions
    return load_exceptions(config)


def _print_results(results: "Results", fmt: str) -> None:
    if fmt == "json":
        sys.stdout.write(json.dumps(results.to_json(), indent=2, ensure_ascii=False) + "\n")
        return
    if fmt in ("csv", "junit"):
        from reports import formats
        sys.stdout.write(formats.FORMATS[fmt](results))
        return
    from rich.console import Console
    from rich.table import Table
    table = Table(title=f"attest scan {results.scan.bundle}  readiness "
                        f"{results.summary.readiness}%")
    for col in ("control", "criteria", "status", "failing / errors"):
        table.add_column(col)
    colors = {"pass": "green", "fail": "red", "error": "yellow", "excepted": "cyan"}
    for c in results.controls:
        bad = len(c.failing())
        st = c.status.value
        table.add_row(c.id, ", ".join(c.criteria),
                      f"[{colors.get(st, 'dim')}]{st}[/]", str(bad) if bad else "")
    Console(soft_wrap=True, width=max(100, Console().width)).print(table)
    print(" ".join(f"{k.value}={v}" for k, v in results.summary.counts.items() if v))


def cmd_controls(args: argparse.Namespace) -> int:
    from controls import load_catalog, select
    chosen = select(load_catalog(), source=args.source, criterion=args.criterion)
    if not chosen:
        raise UsageError("no control matches that filter")
    if args.format == "json":
        print(json.dumps([c.model_dump(mode="json") for c in chosen], indent=2))
    elif args.format == "markdown":
        print("| id | criteria | severity | checks |\n|---|---|---|---|")
        for c in chosen:
            print(f"| `{c.id}` | {', '.join(c.criteria)} | {c.severity} | {c.title} |")
    else:
        from rich.console import Console
        from rich.table import Table
        table = Table(title=f"{len(chosen)} controls")
        for col in ("id", "criteria", "severity", "title"):
            table.add_column(col, overflow="fold")
        for c in chosen:
            table.add_row(c.id, ", ".join(c.criteria), c.severity, c.title)
        Console(width=max(120, Console().width)).print(table)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from attest.manifest import verify
    from attest.s3store import is_store_url, verify_store
    from attest.signing import load_public_key
    key = load_public_key(args.public_key) if args.public_key else None
    if is_store_url(args.target):
        names, problems, notes = verify_store(args.target, args.config, public_key=key,
                                              allow_pruned=args.allow_pruned)
    else:
        bundles, problems = verify(args.target, allow_pruned=args.allow_pruned, public_key=key)
        names, notes = [b.name for b in bundles], []
    for p in problems:
        print(f"FAIL {p}")
    if problems:
        print(f"attest: verify failed: {len(problems)} problem(s) in {len(names)} bundle(s)",
              file=sys.stderr)
        return 1
    signed = (f"every bundle is signed by the given public key ({key.keyid[:16]}...)" if key else
              "signatures not checked (give --public-key FILE; `attest keys public` prints it)")
    print(f"OK: {len(names)} bundle(s) verified, every file hash and the chain match; {signed}")
    for note in notes:
        print(note)
    return 0


def cmd_keys_public(args: argparse.Namespace) -> int:
    from attest.config import load_config
    from attest.signing import load_signer
    path = args.config or os.environ.get("ATTEST_CONFIG")
    if not path:
        raise UsageError("attest keys public: give --config FILE (or set ATTEST_CONFIG) with a "
                         "signing: section")
    config = load_config(path)
    if config.model.signing is None:
        raise UsageError(f"{path}: no signing: section (kms_key_id or private_key_path)")
    aws = config.section("aws")
    signer = load_signer(config.model.signing, base_dir=config.path.parent if config.path else None,
                         endpoint_url=getattr(aws, "endpoint_url", None))
    sys.stdout.write(signer.public_pem)
    return 0


def cmd_store_check(args: argparse.Namespace) -> int:
    from attest.config import load_config
    from attest.s3store import configured_store
    path = args.config or os.environ.get("ATTEST_CONFIG")
    if not path:
        raise UsageError("attest store check: give --config FILE (or set ATTEST_CONFIG) with store: s3://...")
    config = load_config(path)
    store = configured_store(config)
    if store is None:
        raise UsageError(f"{path}: no store: s3://... in the config (bundles stay in output_dir)")
    check = store.check()
    if args.json:
        print(json.dumps(check.to_json(), indent=2, default=str))
    else:
        lock = check.object_lock
        pab = check.public_access_block
        claim = check.lock_claim(store.options)
        print(f"store:               {check.url}")
        print(f"versioning:          {check.versioning or 'unknown'}")
        print("object lock:         " + ("unknown" if lock is None else "not enabled"
              if not lock.get("enabled") else f"enabled, default retention "
              f"{lock.get('mode') or 'none'}{' ' + str(lock['days']) + ' days' if lock.get('days') else ''}"))
        print("retention on upload: " + (f"{claim['mode']} {claim['days']} days ({claim['source']})"
                                         if claim else "none: objects could be deleted"))
        print(f"default encryption:  {check.encryption or 'unknown'}")
        print("public access block: " + ("unknown" if pab is None else
                                         ", ".join(f"{k} {'on' if v else 'OFF'}" for k, v in pab.items())))
        print("public:              " + ("unknown" if check.public is None else "YES" if check.public else "no"))
        for note in check.notes:
            print(f"note: {note}")
        for problem in check.problems:
            print(f"UNSAFE: {problem}")
        if not check.problems:
            print("OK: a scan will write to this store")
    return 1 if check.problems else 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from attest.s3store import local_view
    from attest.store import writable_output
    out = writable_output(args.out) if args.out else None
    with local_view(args.bundle, args.config) as bundle:
        return _evaluate(args, bundle, out)


def _evaluate(args: argparse.Namespace, bundle: Path, out: Path | None) -> int:
    from attest.engine import evaluate
    from attest.manifest import verify_bundle
    from attest.results import build_results
    from attest.scan import exit_code_for
    from attest.store import is_bundle, load_evidence, read_results
    from controls import load_catalog
    if not is_bundle(bundle):
        raise UsageError(f"{bundle}: not a bundle (no manifest.json)")
    problems = verify_bundle(bundle)
    if problems:
        raise UsageError(f"{bundle}: does not verify, refusing to evaluate: {problems[0]}")
    stored = read_results(bundle)
    if args.config:
        from attest.config import load_config
        config = load_config(args.config)
        params, exceptions = config.model.controls, _load_exceptions(config)
    else:
        from attest.exceptions import ExceptionSet
        params, exceptions = stored.scan.params, ExceptionSet.from_results(stored)
    skipped = {s: v.detail or "skipped" for s, v in stored.scan.sources.items()
               if v.status == "skipped"}
    now = stored.scan.started_at
    results = evaluate(load_catalog(), load_evidence(bundle), params, now, skipped, exceptions)
    scan = stored.scan.model_copy(update={"re_evaluated_from": bundle.name})
    fresh = build_results(results, scan, exceptions.to_json(now) if exceptions is not None else None)
    before = stored.statuses()
    changed = [(c.id, before.get(c.id), c.status) for c in fresh.controls
               if before.get(c.id) != c.status]
    _print_results(fresh, "table")
    for cid, old, new in changed:
        print(f"changed: {cid}: {old} -> {new}")
    if not changed:
        print("same statuses as the stored results")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(fresh.to_bytes())
    return exit_code_for(fresh)


def cmd_permissions(args: argparse.Namespace) -> int:
    from attest.sources import load, sources
    if args.source == "store":
        from attest.s3store import store_policy
        path = args.config or os.environ.get("ATTEST_CONFIG")
        url = kms = None
        if path:
            from attest.config import load_config
            model = load_config(path).model
            url, kms = model.store, model.signing.kms_key_id if model.signing else None
        sys.stdout.write(json.dumps(store_policy(url, kms or "arn:aws:kms:REGION:ACCOUNT:key/KEY-ID"),
                                    indent=2) + "\n")
        return 0
    known = sources()
    if args.source not in known:
        raise UsageError(f"unknown source {args.source!r} (known: store, {', '.join(known)})")
    document = load(known[args.source].permissions) if known[args.source].permissions else None
    if document is None:
        raise UsageError(f"{args.source}: no policy document; see the README for its credentials")
    sys.stdout.write(document())
    return 0


COMMANDS = {"scan": cmd_scan, "controls": cmd_controls, "verify": cmd_verify, "evaluate": cmd_evaluate,
            "permissions": cmd_permissions}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
