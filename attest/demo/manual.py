"""Demo documents for the manual controls: some current, one expiring, one expired, some missing."""
from __future__ import annotations

import tempfile
from datetime import datetime, timedelta
from pathlib import Path

from attest.manual import add_document, iter_documents

# control id -> (file name, days of validity left at the demo's "now"; negative = expired)
DOCUMENTS = {
    "manual.security_policies": ("Acme Rockets Information Security Policy v3.pdf", 240),
    "manual.access_reviews": ("Q3 access review - signed.pdf", 45),
    "manual.penetration_test": ("Pentest report - Orbital Security.pdf", 12),
    "manual.security_awareness_training": ("Training completion 2025.csv", -20),
}


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
