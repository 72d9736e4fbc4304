"""S3 buckets with their per-bucket settings, each read in the bucket's own region.

The bucket listing (``ListBuckets``, and ``GetBucketLocation`` for a bucket it gives no
``BucketRegion``) is read once per account and shared by the S3 evidence items; each item then
reads its own settings per bucket. A bucket whose reads fail is left out of the record and named
in ``unknown`` by its ARN (the record is ``partial``): the other buckets are still judged.
"""
from __future__ import annotations

from typing import Any, Callable

from collectors.aws.detail import DETAIL_WORKERS, finish, read_each
from collectors.aws.session import Target

BUCKET_WORKERS = DETAIL_WORKERS
LIST_MAX = 10000    # ListBuckets' largest page


def bucket_arn(bucket: dict[str, Any]) -> str:
    """The id the rules name a bucket with."""
    return bucket.get("BucketArn") or f"arn:aws:s3:::{bucket['Name']}"


def buckets(t: Target) -> dict[str, Any]:
    """Each bucket with the raw answers of ``GetBucketEncryption`` and ``GetPublicAccessBlock``
    (and ``GetBucketLocation``, when the listing gave no ``BucketRegion``). ``null`` for the
    first two means AWS said there is none (ServerSideEncryptionConfigurationNotFoundError,
    NoSuchPublicAccessBlockConfiguration)."""
    def read(bucket: dict[str, Any], region: str) -> dict[str, Any]:
        name = bucket["Name"]
        return {
            "GetBucketEncryption": t.call(
                "s3", "GetBucketEncryption", region=region, what=f"bucket {name}",
                absent=("ServerSideEncryptionConfigurationNotFoundError",), Bucket=name),
            "GetPublicAccessBlock": t.call(
                "s3", "GetPublicAccessBlock", region=region, what=f"bucket {name}",
                absent=("NoSuchPublicAccessBlockConfiguration",), Bucket=name)}
    return _each_bucket(t, read)


def bucket_policies(t: Target) -> dict[str, Any]:
    """Each bucket with the raw ``GetBucketPolicy`` (the policy as a JSON string) and
    ``GetBucketPolicyStatus`` answers; ``null`` for both when the bucket has no policy."""
    def read(bucket: dict[str, Any], region: str) -> dict[str, Any]:
        name = bucket["Name"]
        policy = t.call("s3", "GetBucketPolicy", region=region, what=f"bucket {name}",
                        absent=("NoSuchBucketPolicy",), Bucket=name)
        status = None if policy is None else t.call(
            "s3", "GetBucketPolicyStatus", region=region, what=f"bucket {name}",
            absent=("NoSuchBucketPolicy",), Bucket=name)
        return {"GetBucketPolicy": policy, "GetBucketPolicyStatus": status}
    return _each_bucket(t, read)


def bucket_acls(t: Target) -> dict[str, Any]:
    """Each bucket with the raw ``GetBucketAcl`` answer (owner and grants)."""
    def read(bucket: dict[str, Any], region: str) -> dict[str, Any]:
        return {"GetBucketAcl": t.call("s3", "GetBucketAcl", region=region,
                                       what=f"bucket {bucket['Name']}", Bucket=bucket["Name"])}
    return _each_bucket(t, read)


def bucket_versioning(t: Target) -> dict[str, Any]:
    """Each bucket with the raw ``GetBucketVersioning`` and ``GetObjectLockConfiguration``
    answers (``null``: no Object Lock configuration)."""
    def read(bucket: dict[str, Any], region: str) -> dict[str, Any]:
        name = bucket["Name"]
        return {
            "GetBucketVersioning": t.call("s3", "GetBucketVersioning", region=region,
                                          what=f"bucket {name}", Bucket=name),
            "GetObjectLockConfiguration": t.call(
                "s3", "GetObjectLockConfiguration", region=region, what=f"bucket {name}",
                absent=("ObjectLockConfigurationNotFoundError",), Bucket=name)}
    return _each_bucket(t, read)


def _each_bucket(t: Target, read: Callable[[dict[str, Any], str], dict[str, Any]]) -> dict[str, Any]:
    shared = t.account.once("s3.listing", lambda: _listing(Target(t.account, t.region,
                                                                  page_size=t.page_size)))
    t.requested.update(shared["actions"])
    located = shared["buckets"]
    details, unknown = read_each(
        located, lambda entry: {**entry[0], **read(entry[0], entry[1])},
        key=lambda entry: bucket_arn(entry[0]), workers=BUCKET_WORKERS)
    payload = {**shared["listing"], "Buckets": details}
    return finish(payload, {**shared["unknown"], **unknown}, "buckets")


def _listing(t: Target) -> dict[str, Any]:
    """``ListBuckets`` (every page) and each bucket's region (``BucketRegion`` when the listing
    gives it, else ``GetBucketLocation``); the IAM actions it used. AWS lists ``BucketRegion``
    only when the request has a parameter, hence ``MaxBuckets`` (its maximum)."""
    listing = t.paginate("s3", "ListBuckets", MaxBuckets=LIST_MAX) or {}
    items = listing.pop("Buckets", [])

    def locate(bucket: dict[str, Any]) -> tuple[dict[str, Any], str]:
        if bucket.get("BucketRegion"):
            return bucket, bucket["BucketRegion"]
        location = t.call("s3", "GetBucketLocation", what=f"bucket {bucket['Name']}",
                          Bucket=bucket["Name"]) or {}
        return {**bucket, "GetBucketLocation": location}, _region(location.get("LocationConstraint"))

    located, unknown = read_each(items, locate, key=bucket_arn, workers=BUCKET_WORKERS)
    return {"listing": listing, "buckets": located, "unknown": unknown,
            "actions": frozenset(t.requested)}


def _region(constraint: str | None) -> str:
    """GetBucketLocation's answer as a region: none means us-east-1, legacy "EU" eu-west-1."""
    if not constraint:
        return "us-east-1"
    return "eu-west-1" if constraint == "EU" else constraint
