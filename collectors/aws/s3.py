"""S3 buckets with their per-bucket settings, each read in the bucket's own region."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from collectors.aws.session import Target

BUCKET_WORKERS = 8


def buckets(t: Target) -> dict[str, Any]:
    """``ListBuckets`` (every page); each bucket gains the raw answers of ``GetBucketLocation``,
    ``GetBucketEncryption`` and ``GetPublicAccessBlock``. ``null`` for the last two means AWS
    said there is none (ServerSideEncryptionConfigurationNotFoundError,
    NoSuchPublicAccessBlockConfiguration)."""
    listing = t.paginate("s3", "ListBuckets") or {}
    items = listing.get("Buckets", [])
    if items:
        with ThreadPoolExecutor(min(BUCKET_WORKERS, len(items))) as pool:
            listing["Buckets"] = list(pool.map(lambda b: _bucket(t, b), items))
    return listing


def _bucket(t: Target, bucket: dict[str, Any]) -> dict[str, Any]:
    name = bucket["Name"]
    location = t.call("s3", "GetBucketLocation", what=f"bucket {name}", Bucket=name) or {}
    region = bucket.get("BucketRegion") or _region(location.get("LocationConstraint"))
    encryption = t.call("s3", "GetBucketEncryption", region=region, what=f"bucket {name}",
                        absent=("ServerSideEncryptionConfigurationNotFoundError",), Bucket=name)
    block = t.call("s3", "GetPublicAccessBlock", region=region, what=f"bucket {name}",
                   absent=("NoSuchPublicAccessBlockConfiguration",), Bucket=name)
    return {**bucket, "GetBucketLocation": location, "GetBucketEncryption": encryption,
            "GetPublicAccessBlock": block}


def _region(constraint: str | None) -> str:
    """GetBucketLocation's answer as a region: none means us-east-1, legacy "EU" eu-west-1."""
    if not constraint:
        return "us-east-1"
    return "eu-west-1" if constraint == "EU" else constraint
