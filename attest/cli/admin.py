"""``attest keys public``, ``attest store check`` and ``attest permissions``: setting attest up."""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from attest.cli.common import Parser, add_command, config_path, global_options, need_config
from attest.errors import UsageError


def register(sub: Any) -> None:
    k = sub.add_parser("keys", help="the signing key", description="the signing key",
                       parents=[global_options(config=True)])
    ksub = k.add_subparsers(dest="keys_command", metavar="COMMAND", required=True, parser_class=Parser,
                            help="what to do with the key")
    kp = add_command(ksub, "public", help="print the PEM public key to hand the auditor",
                     description="print the PEM public key of the signing key, to hand the auditor "
                                 "(needs --config with a signing: section)")
    kp.set_defaults(func=cmd_keys_public)

    st = sub.add_parser("store", help="the S3 evidence store", description="the S3 evidence store",
                        parents=[global_options(config=True)])
    stsub = st.add_subparsers(dest="store_command", metavar="COMMAND", required=True,
                              parser_class=Parser, help="what to do with the store")
    sc = add_command(stsub, "check", help="versioning, Object Lock, encryption and public access "
                                          "of the store's bucket",
                     description="the S3 store's versioning, Object Lock, default encryption and "
                                 "public access (exit 1 if unsafe; needs --config with store:)")
    sc.add_argument("--json", action="store_true", help="print JSON instead of text")
    sc.set_defaults(func=cmd_store_check)

    from attest.sources import sources
    with_policy = [name for name, source in sources().items() if source.permissions]
    pm = add_command(sub, "permissions", help="print the least-privilege policy a source (or the "
                                              "S3 store and signing key) needs",
                     description="print the least-privilege policy a source needs (aws: the "
                                 "read-only IAM policy; kubernetes: the read-only ClusterRole and "
                                 "its binding), or the S3 store and KMS signing key (store, "
                                 "filled in from --config)")
    pm.add_argument("source", metavar="SOURCE",
                    help=f"one of {', '.join(with_policy)}, or store: the S3 store's write "
                         "policy")
    pm.set_defaults(func=cmd_permissions)


def cmd_keys_public(args: argparse.Namespace) -> int:
    from attest.config import load_config
    from attest.signing import load_signer
    path = need_config(args, "attest keys public", "a signing: section")
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
    path = need_config(args, "attest store check", "store: s3://...")
    config = load_config(path)
    store = configured_store(config)
    if store is None:
        raise UsageError(f"{path}: no store: s3://... in the config (bundles stay in output_dir)")
    check = store.check()
    if args.json:
        print(json.dumps(check.to_json(), indent=2, default=str))
        return 1 if check.problems else 0
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


def cmd_permissions(args: argparse.Namespace) -> int:
    from attest.sources import load, sources
    if args.source == "store":
        from attest.s3store import store_policy
        path = config_path(args)
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
        raise UsageError(f"unknown source {args.source!r} (known: {', '.join(known)}, store)")
    document = load(known[args.source].permissions) if known[args.source].permissions else None
    if document is None:
        raise UsageError(f"{args.source}: no policy document; see the README for its credentials")
    sys.stdout.write(document())
    return 0
