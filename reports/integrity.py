"""What the export may claim about its bundles, exactly as strong as it is.

Three mechanisms, each proving something different:

* the hash chain proves the order of the bundles and that no bundle with a successor was edited
  (its successor's manifest pins the sha256 of its manifest, which pins every file);
* signatures prove which key sealed each bundle: editing any bundle, the newest included, and
  sealing it again needs the private key;
* Object Lock proves nothing was deleted or overwritten in the store before its retention date.

:func:`claims` states, for the bundles of a period, which of these hold and what that leaves
open, in plain words; the export's index.html, README.txt and chain.json all use it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Claim:
    mechanism: str
    status: str        # "verified", "present, not checked", "partial", "absent", "recorded"
    holds: bool        # the mechanism covers every bundle of the period
    text: str          # what it proves here (or why it does not)

    def to_json(self) -> dict[str, Any]:
        return {"mechanism": self.mechanism, "status": self.status, "covers_every_bundle": self.holds,
                "statement": self.text}


def claims(*, bundles: list[str], signed: list[str], key_id: str | None,
           stores: list[dict[str, Any]], verify_command: str) -> tuple[list[Claim], list[str]]:
    """(what each mechanism proves for these bundles, what is left open), oldest bundle first."""
    n, head = len(bundles), bundles[-1]
    out = [Claim("hash chain", "verified", True,
                 f"Every file of the {n} bundle(s) matched its manifest.json (sha256 and size), and "
                 "each manifest pins the sha256 of the one before it. This proves the order of the "
                 "bundles and that no bundle that has a successor here was edited, replaced or "
                 "removed without breaking a link. It cannot protect the newest bundle "
                 f"({head}): nothing after it pins its manifest.")]

    all_signed = len(signed) == n
    if all_signed and key_id:
        out.append(Claim("signatures", "verified", True,
                         f"Every bundle's manifest.json is signed (an in-toto Statement in a DSSE "
                         f"envelope, attestation.dsse.json), and every signature was checked with the "
                         f"public key {key_id[:16]}... (signing-public-key.pem). This proves which key "
                         "sealed each bundle: editing any bundle, the newest included, and sealing it "
                         "again needs that private key. Compare the key with the one the company "
                         "handed you directly, not only with the copy in this export."))
    elif all_signed:
        out.append(Claim("signatures", "present, not checked", False,
                         "Every bundle carries a signature (attestation.dsse.json), but this export "
                         "was made without the public key, so it did not check them. Check them "
                         f"with the key the company handed you: {verify_command} --public-key KEY.pem"))
    elif signed:
        unsigned = [b for b in bundles if b not in set(signed)]
        out.append(Claim("signatures", "partial", False,
                         f"Only {len(signed)} of the {n} bundles are signed; unsigned: "
                         f"{', '.join(unsigned[:5])}{' ...' if len(unsigned) > 5 else ''}. An unsigned "
                         "bundle proves nothing about who sealed it."))
    else:
        out.append(Claim("signatures", "absent", False,
                         "The bundles are not signed. Anyone with write access to the folder could "
                         "edit the newest bundle together with its manifest, and the hashes and the "
                         "chain would still verify."))

    locks = [(s or {}).get("object_lock") or {} for s in stores]
    urls = sorted({(s or {}).get("url") for s in stores if (s or {}).get("url")})
    locked = sum(1 for lock in locks if lock.get("mode"))
    if locked == n:
        modes = sorted({f"{lock['mode']} {lock.get('days')} days" for lock in locks})
        governance = any(lock["mode"] == "GOVERNANCE" for lock in locks)
        out.append(Claim("Object Lock", "recorded", True,
                         f"Every bundle's {'signed ' if all_signed else ''}manifest records that it "
                         f"was written to {', '.join(urls)} with Object Lock retention "
                         f"({', '.join(modes)}). Object Lock proves that nothing was deleted or "
                         "overwritten in the store before its retention date"
                         + ("; in GOVERNANCE mode a user allowed s3:BypassGovernanceRetention could "
                            "still do so" if governance else
                            ", not even by the account's root user (COMPLIANCE mode)")
                         + ". This export carries that claim; confirm it in the store, which reads "
                         f"every object's retention and version: attest verify {urls[0] if urls else 's3://...'} "
                         "--public-key KEY.pem"))
    elif locked:
        out.append(Claim("Object Lock", "partial", False,
                         f"Only {locked} of the {n} bundles were written to an Object-Locked store; "
                         "the others could have been deleted or overwritten."))
    else:
        out.append(Claim("Object Lock", "absent", False,
                         "The bundles were not kept in an Object-Locked store: nothing prevented a "
                         "bundle from being deleted or overwritten where it was kept."))

    sig_ok, lock_ok = out[1].holds, out[2].holds
    open_: list[str] = []
    if not sig_ok and not lock_ok:
        open_.append(f"The newest bundle ({head}) could have been edited together with its "
                     "manifest, or removed, and neither this export nor attest verify would show it.")
    elif sig_ok and not lock_ok:
        open_.append(f"The newest bundle ({head}) could have been removed without trace. It could "
                     "not have been edited without the signing key.")
    elif lock_ok and not sig_ok:
        open_.append("In the store, Object Lock kept every version until its retention date, so an "
                     "edit would show as a second version there. This export's copies are "
                     "checked only by their hashes: check the store itself, and the signatures.")
    else:
        open_.append("Within the period, an edit needs the signing key and a deletion is blocked by "
                     "Object Lock; the holder of the signing key could still seal altered bundles "
                     "that were never uploaded, which the store's version history would show.")
    open_.append("Bundles after the period's last day are not in this export: the period's newest "
                 f"bundle ({head}) is the head of the chain shown here (chain.json).")
    return out, open_
