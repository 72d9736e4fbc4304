"""Bundle manifests and their hash chain, and ``verify``.

``manifest.json`` lists every other file of the bundle with its sha256 and size, the tool
version, the scan time, a digest of the config (secrets are only ``${ENV}`` references there),
and the sha256 of the previous bundle's ``manifest.json``: the bundles of a period form a chain.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from attest.errors import UsageError
from attest.signing import ATTESTATION, check_attestation
from attest.store import BUNDLE_NAME, is_bundle, list_bundles

MANIFEST = "manifest.json"
FORMAT = "attest-bundle/1"
UNLISTED = frozenset({MANIFEST, ATTESTATION})  # the manifest, and the signature over it


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def manifest_sha256(bundle: Path) -> str:
    return file_sha256(bundle / MANIFEST)


def build_manifest(files: dict[str, tuple[str, int]], *, scan_id: str, created_at: str,
                   tool_version: str, config_digest: str, previous: tuple[str, str] | None,
                   store: dict[str, Any] | None = None) -> dict[str, Any]:
    """``files``: every file of the bundle but the manifest, path -> (sha256, size), as written.
    ``previous``: (bundle name, sha256 of its manifest.json) of the bundle this one follows.
    ``store``: where the bundle is kept beyond this folder (an S3 store and its Object Lock)."""
    manifest = {
        "format": FORMAT, "scan_id": scan_id, "created_at": created_at, "tool_version": tool_version,
        "config_digest": config_digest,
        "previous": {"bundle": previous[0], "manifest_sha256": previous[1]} if previous else None,
        "files": [{"path": rel, "sha256": sha, "size": size}
                  for rel, (sha, size) in sorted(files.items()) if rel not in UNLISTED],
    }
    if store:
        manifest["store"] = store
    return manifest


def read_manifest(bundle: Path) -> dict[str, Any]:
    return json.loads((bundle / MANIFEST).read_text(encoding="utf-8"))


def verify_bundle(bundle: Path, public_key: Any = None) -> list[str]:
    """Problems with one bundle's files (empty list: every hash, size and file matches), and
    with its signature: with ``public_key`` the bundle must be signed by that key."""
    problems: list[str] = []
    try:
        manifest = read_manifest(bundle)
    except (OSError, ValueError) as exc:
        return [f"{bundle.name}: manifest.json unreadable: {exc}"]
    listed = {f["path"]: f for f in manifest.get("files", [])}
    present = {p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file()}
    present -= UNLISTED
    for rel in sorted(listed.keys() - present):
        problems.append(f"{bundle.name}: {rel}: missing")
    for rel in sorted(present - listed.keys()):
        problems.append(f"{bundle.name}: {rel}: not in the manifest (added)")
    for rel in sorted(listed.keys() & present):
        entry, path = listed[rel], bundle / rel
        if path.stat().st_size != entry["size"] or file_sha256(path) != entry["sha256"]:
            problems.append(f"{bundle.name}: {rel}: changed (sha256 does not match the manifest)")
    problems.extend(check_attestation(bundle, manifest_sha256(bundle), public_key))
    return problems


def verify_chain(bundles: list[Path]) -> list[str]:
    """Problems with the chain linking ``bundles`` (oldest first).

    The first bundle may point at a predecessor that is not in the list (a period cut from a
    longer history); every later one must point at the bundle just before it, by name and hash."""
    problems = []
    for prev, cur in zip(bundles, bundles[1:]):
        try:
            link = read_manifest(cur).get("previous")
        except (OSError, ValueError):
            continue  # reported by verify_bundle
        if not link:
            problems.append(f"{cur.name}: manifest.json: chain broken: no link to {prev.name}")
        elif link.get("bundle") != prev.name:
            problems.append(f"{cur.name}: manifest.json: chain broken: links to {link.get('bundle')}, "
                            f"but the bundle before it is {prev.name}")
        elif link.get("manifest_sha256") != manifest_sha256(prev):
            problems.append(f"{cur.name}: manifest.json: chain broken: {prev.name}/manifest.json "
                            "changed since it was linked")
    return problems


def resolve_bundles(target: str | Path) -> list[Path]:
    """A bundle folder, or an output folder holding bundles."""
    path = Path(target)
    if is_bundle(path):
        return [path]
    if not path.is_dir():
        raise UsageError(f"{path}: no such bundle or directory")
    bundles = list_bundles(path)
    if not bundles:
        raise UsageError(f"{path}: no bundles found (a bundle is a folder with manifest.json)")
    return bundles


def verify(target: str | Path, *, allow_pruned: bool = False,
           public_key: Any = None) -> tuple[list[Path], list[str]]:
    """Verify a bundle or every bundle of a directory and their chain: (bundles, problems).

    For a directory, the chain must also be whole at its start: the oldest bundle links to no
    earlier one (it is the first scan), unless ``allow_pruned`` (old bundles deleted on purpose).
    A folder named like a bundle but without a manifest is a problem too."""
    bundles = resolve_bundles(target)
    problems: list[str] = []
    folder = Path(target)
    if not is_bundle(folder):
        for p in sorted(folder.iterdir()):
            if p.is_dir() and BUNDLE_NAME.match(p.name) and not (p / MANIFEST).is_file():
                problems.append(f"{p.name}: manifest.json: missing (an incomplete or altered bundle)")
        try:
            first_link = read_manifest(bundles[0]).get("previous")
        except (OSError, ValueError):
            first_link = None  # reported by verify_bundle
        if first_link and not allow_pruned:
            problems.append(f"{bundles[0].name}: manifest.json: chain broken: links to "
                            f"{first_link.get('bundle')}, which is not in the folder "
                            "(use --allow-pruned if older bundles were deleted on purpose)")
    for b in bundles:
        problems.extend(verify_bundle(b, public_key))
    problems.extend(verify_chain(bundles))
    return bundles, problems

