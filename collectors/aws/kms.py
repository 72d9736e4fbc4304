"""KMS keys of a region with their metadata and, where AWS can rotate them, rotation status."""
from __future__ import annotations

from typing import Any

from collectors.aws.session import Target


def rotatable(metadata: dict[str, Any]) -> bool:
    """Customer-managed, enabled, symmetric keys with AWS-generated key material."""
    return (metadata.get("KeyManager") == "CUSTOMER"
            and metadata.get("KeySpec", metadata.get("CustomerMasterKeySpec")) == "SYMMETRIC_DEFAULT"
            and metadata.get("KeyState") == "Enabled"
            and metadata.get("Origin", "AWS_KMS") == "AWS_KMS")


def keys(t: Target) -> dict[str, Any]:
    """``ListKeys`` (every page); each key gains the raw ``DescribeKey`` answer and, when
    :func:`rotatable`, the raw ``GetKeyRotationStatus`` answer."""
    listing = t.paginate("kms", "ListKeys") or {}
    for key in listing.get("Keys", []):
        key_id = key["KeyId"]
        described = t.call("kms", "DescribeKey", what=key_id, KeyId=key_id) or {}
        key["DescribeKey"] = described
        if rotatable(described.get("KeyMetadata", {})):
            key["GetKeyRotationStatus"] = t.call("kms", "GetKeyRotationStatus", what=key_id,
                                                 KeyId=key_id)
    return listing
