"""Demo documents for the manual controls: some current, one expiring, one expired, some missing."""
from __future__ import annotations

import tempfile
from datetime import datetime, timedelta
from pathlib import Path

from typing import TYPE_CHECKING

from attest.manual import add_document, iter_documents

if TYPE_CHECKING:
    from attest.demo import DemoSource

# control id -> (file name, days of validity left at the demo's "now"; negative = expired)
DOCUMENTS = {
    "manual.security_policies": ("Acme Rockets Information Security Policy v3.pdf", 240),
    "manual.access_reviews": ("Q3 access review - signed.pdf", 45),
    "manual.penetration_test": ("Pentest report - Orbital Security.pdf", 12),
    "manual.security_awareness_training": ("Training completion 2025.csv", -20),
}


def start_demo(now: datetime) -> "DemoSource":
    """Manual evidence needs no server: the demo stores its documents in the output folder."""
    from attest.demo import DemoSource
    return DemoSource(section=None, env={}, expected={},
                      prepare=lambda output_dir: seed_manual(output_dir, now))


def seed_manual(output_dir: Path, now: datetime) -> dict[str, str]:
    """Store the demo documents once per output folder; return {control id: expected status}."""
    expected = {cid: ("fail" if days < 0 else "pass") for cid, (_, days) in DOCUMENTS.items()}
    if any(True for _ in iter_documents(output_dir)):
        return expected
    with tempfile.TemporaryDirectory() as tmp:
        for cid, (name, days) in DOCUMENTS.items():
            doc = Path(tmp) / name
            doc.write_text(f"{name}\nDemo document for {cid} (fictional company Acme Rockets).\n",
                           encoding="utf-8")
            add_document(output_dir, cid, doc, (now + timedelta(days=days)).date(),
                         note="demo document")
    return expected


def demo_signing_key(output_dir: Path) -> tuple[Path, Path]:
    """(private, public) PEM files of the demo's throwaway Ed25519 signing key, made once per
    output folder. A real deployment signs with a KMS key instead (README: signing)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519
    private, public = output_dir / "demo-signing-key.pem", output_dir / "demo-signing-key.pub.pem"
    if not private.is_file():
        output_dir.mkdir(parents=True, exist_ok=True)
        key = ed25519.Ed25519PrivateKey.generate()
        private.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                              serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
        private.chmod(0o600)
        public.write_bytes(key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return private, public
