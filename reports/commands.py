"""CLI commands that read bundles: report, diff, export, and manual evidence.

Each command's work lives in the module it drives; this file only declares the arguments.
"""
from __future__ import annotations

import argparse
import importlib
from typing import Any


def _lazy(target: str) -> Any:
    module, _, fn = target.partition(":")

    def run(args: argparse.Namespace) -> int:
        return getattr(importlib.import_module(module), fn)(args)
    return run


def _folder_args(parser: argparse.ArgumentParser, store: bool = True) -> None:
    if store:
        parser.add_argument("--dir", help="output folder or S3 store (s3://bucket/prefix) holding the "
                                          "bundles (default: the config's store, else its output_dir)")
    else:
        parser.add_argument("--dir", help="output folder (default: the config's output_dir)")
    parser.add_argument("--config", help="config file (for output_dir, store and store_options; "
                                         "default $ATTEST_CONFIG)")


def register(sub: Any) -> None:
    r = sub.add_parser("report", help="(re)build the HTML readiness report of a bundle")
    r.add_argument("target", help="a bundle, or an output folder or S3 store (its newest bundle)")
    r.add_argument("--out", help="where to write the HTML (default: ./attest-report.html)")
    r.add_argument("--config", help="config whose store_options reach an S3 store (default $ATTEST_CONFIG)")
    r.set_defaults(func=_lazy("reports.html:cmd_report"))

    h = sub.add_parser("history", help="the scans kept in the output folder, one line each")
    _folder_args(h)
    h.add_argument("--json", action="store_true", help="print JSON instead of a table")
    h.set_defaults(func=_lazy("reports.history:cmd_history"))

    d = sub.add_parser("diff", help="what changed between two bundles")
    d.add_argument("old", help="the older bundle (a folder or s3://bucket/prefix/<bundle>)")
    d.add_argument("new", help="the newer bundle")
    d.add_argument("--config", help="config whose store_options reach an S3 store (default $ATTEST_CONFIG)")
    d.add_argument("--json", action="store_true", help="print JSON instead of a table")
    d.set_defaults(func=_lazy("reports.diff:cmd_diff"))

    e = sub.add_parser("export", help="auditor evidence export for a review period")
    e.add_argument("--from", dest="start", required=True, help="first day, YYYY-MM-DD (UTC)")
    e.add_argument("--to", dest="end", required=True, help="last day, YYYY-MM-DD (UTC)")
    e.add_argument("--out", help="zip file to write (default: attest-export-FROM-TO.zip)")
    e.add_argument("--public-key", help="PEM public key: every bundle must be signed by it, and the "
                                        "key goes into the export (default: the config's signing key)")
    _folder_args(e)
    e.set_defaults(func=_lazy("reports.export:cmd_export"))

    ev = sub.add_parser("evidence", help="manual evidence (policies, training records, pentests...)")
    evsub = ev.add_subparsers(dest="evidence_command", required=True)
    add = evsub.add_parser("add", help="store a document as evidence for a manual control")
    add.add_argument("control_id")
    add.add_argument("file")
    add.add_argument("--valid-until", required=True, help="YYYY-MM-DD: when this evidence expires")
    add.add_argument("--note", default="", help="a short description (e.g. who approved it)")
    add.add_argument("--allow-expired", action="store_true",
                     help="store a document whose validity has already ended (kept for the record)")
    _folder_args(add, store=False)
    add.set_defaults(func=_lazy("attest.manual:cmd_evidence_add"))
    ls = evsub.add_parser("list", help="list stored manual evidence and its validity")
    _folder_args(ls, store=False)
    ls.set_defaults(func=_lazy("attest.manual:cmd_evidence_list"))
