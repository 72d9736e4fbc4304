"""``attest evidence add`` and ``attest evidence list``: the manual evidence store."""
from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path
from typing import Any

from attest.cli.common import Parser, add_command, add_dir, global_options, output_dir, parse_day
from attest.errors import UsageError


def register(sub: Any) -> None:
    ev = sub.add_parser("evidence", help="manual evidence (policies, training records, pentests...)",
                        description="manual evidence (policies, training records, pentests...)",
                        parents=[global_options(config=True)])
    evsub = ev.add_subparsers(dest="evidence_command", metavar="COMMAND", required=True,
                              parser_class=Parser, help="add or list")
    add = add_command(evsub, "add", help="store a document as evidence for a manual control",
                      description="store a document for a manual control")
    add.add_argument("control_id", metavar="CONTROL_ID",
                     help="a manual control, e.g. manual.penetration_test "
                          "(see `attest controls --source manual`)")
    add.add_argument("file", metavar="FILE", help="the document to store (any format)")
    add.add_argument("--valid-until", required=True, metavar="DATE",
                     help="YYYY-MM-DD: when this evidence expires")
    add.add_argument("--note", default="", help="a short description (e.g. who approved it)")
    add.add_argument("--allow-expired", action="store_true",
                     help="store a document whose validity has already ended (kept for the record)")
    add_dir(add, store=False)
    add.set_defaults(func=cmd_evidence_add)
    ls = add_command(evsub, "list", help="list stored manual evidence and its validity",
                     description="stored documents and their validity")
    add_dir(ls, store=False)
    ls.set_defaults(func=cmd_evidence_list)


def cmd_evidence_add(args: argparse.Namespace) -> int:
    from attest.manual import add_document
    from controls import catalog_by_id
    valid_until = parse_day(args.valid_until, "--valid-until")
    control = catalog_by_id().get(args.control_id)
    if control is None:
        raise UsageError(f"{args.control_id}: unknown control id (see `attest controls --source "
                         "manual`)")
    if control.kind != "manual":
        raise UsageError(f"{args.control_id}: not a manual control; its evidence is collected "
                         "from APIs (see `attest controls --source manual`)")
    file = Path(args.file)
    if file.is_dir():
        raise UsageError(f"{file}: is a folder; give the document's file")
    if not file.is_file():
        raise UsageError(f"{file}: no such file")
    if valid_until < date.today() and not args.allow_expired:
        raise UsageError(f"--valid-until {valid_until} is in the past: this document would count as "
                         "expired at once (add --allow-expired to store it anyway)")
    meta = add_document(output_dir(args, write=True), args.control_id, file, valid_until, args.note)
    print(f"stored {meta['filename']} for {meta['control']} (sha256 {meta['sha256']}, "
          f"valid until {meta['valid_until']})")
    return 0


def cmd_evidence_list(args: argparse.Namespace) -> int:
    from attest.manual import iter_documents
    docs = list(iter_documents(output_dir(args, write=False)))
    if not docs:
        print("no manual evidence stored")
    for m in docs:
        ok = "" if m["sha256_ok"] else "  HASH MISMATCH"
        print(f"{m['control']}\t{m['filename']}\tvalid until {m['valid_until']}\t{m['sha256']}{ok}")
    return 0
