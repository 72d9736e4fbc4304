"""``attest verify`` and ``attest evaluate``: check a bundle's integrity, re-judge its evidence."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from attest.cli.common import (add_command, add_dir, bundle_location, config_path, one_target,
                               output_file, write_file)
from attest.errors import UsageError


def register(sub: Any) -> None:
    v = add_command(sub, "verify", help="recompute every hash of a bundle (or all in a folder) and the chain",
                    description="recompute every hash, the chain and (with --public-key) every "
                                "signature; names any changed, missing or added file, a missing or "
                                "bad signature, a missing manifest, a broken or cut chain, and in a "
                                "store a deleted or overwritten object")
    v.add_argument("target", nargs="?", metavar="TARGET",
                   help="a bundle folder, a folder of bundles, an S3 store s3://bucket/prefix or "
                        "one bundle in it (default: --dir)")
    add_dir(v)
    v.add_argument("--public-key", metavar="FILE",
                   help="PEM public key: every bundle must be signed by it")
    v.add_argument("--allow-pruned", action="store_true",
                   help="accept that bundles older than the oldest one present were deleted")
    v.set_defaults(func=cmd_verify)

    e = add_command(sub, "evaluate", help="re-run the controls on a bundle's stored evidence, offline",
                    description="re-run the controls on a bundle's stored evidence, offline")
    e.add_argument("bundle", nargs="?", metavar="BUNDLE",
                   help="a bundle folder or s3://bucket/prefix/<bundle> (default: the newest "
                        "bundle of --dir)")
    add_dir(e)
    e.add_argument("--out", metavar="FILE",
                   help="write the fresh results JSON to this file (never into a bundle)")
    e.set_defaults(func=cmd_evaluate)
    for action in e._actions:
        if action.dest == "config":
            action.help = ("take control parameters and exceptions from this config instead of "
                           "the bundle's (default: the bundle's own)")


def cmd_verify(args: argparse.Namespace) -> int:
    from attest.manifest import verify
    from attest.s3store import is_store_url, verify_store
    from attest.signing import load_public_key
    where = one_target(args, args.target, "TARGET")
    key = load_public_key(args.public_key) if args.public_key else None
    if is_store_url(str(where)):
        names, problems, notes = verify_store(str(where), config_path(args), public_key=key,
                                              allow_pruned=args.allow_pruned)
    else:
        bundles, problems = verify(where, allow_pruned=args.allow_pruned, public_key=key)
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


def cmd_evaluate(args: argparse.Namespace) -> int:
    from attest.s3store import local_view
    out = output_file(args.out) if args.out else None
    if args.bundle:
        with local_view(one_target(args, args.bundle, "BUNDLE"), config_path(args)) as bundle:
            return _evaluate(args, bundle, out)
    with local_view(bundle_location(args), config_path(args), names=lambda n: n[-1:]) as folder:
        from attest.store import list_bundles
        bundles = list_bundles(folder)
        if not bundles:
            raise UsageError(f"{args.dir or folder}: no bundles found (a bundle is a folder with "
                             "manifest.json)")
        return _evaluate(args, bundles[-1], out)


def _evaluate(args: argparse.Namespace, bundle: Path, out: Path | None) -> int:
    from attest.engine import evaluate
    from attest.exceptions import ExceptionSet, load_exceptions
    from attest.manifest import verify_bundle
    from attest.results import build_results
    from attest.scan import exit_code_for
    from attest.store import is_bundle, load_evidence, read_results
    from controls import load_catalog

    from attest.cli.scan import print_results
    if not is_bundle(bundle):
        from attest.store import list_bundles
        inside = list_bundles(bundle)
        if inside:
            raise UsageError(f"{bundle}: a folder of bundles; give one bundle (e.g. "
                             f"{bundle / inside[-1].name}), or --dir {bundle} for its newest")
        raise UsageError(f"{bundle}: not a bundle (no manifest.json); give a bundle folder such as "
                         "evidence/20260101T020000Z")
    problems = verify_bundle(bundle)
    if problems:
        raise UsageError(f"{bundle}: does not verify, refusing to evaluate: {problems[0]}")
    stored = read_results(bundle)
    if args.config:
        from attest.config import load_config
        config = load_config(args.config)
        params, exceptions = config.model.controls, load_exceptions(config)
    else:
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
    if out is not None:   # written first: a closed stdout must not lose it
        write_file(out, fresh.to_bytes())
    print_results(fresh, "table")
    for cid, old, new in changed:
        print(f"changed: {cid}: {old} -> {new}")
    if not changed:
        print("same statuses as the stored results")
    return exit_code_for(fresh)
