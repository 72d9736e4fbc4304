"""The S3 evidence store: bundles kept where not even an administrator can delete them early.

``store: s3://bucket/prefix`` in the config. A scan writes its bundle in the local output folder
first, then uploads it here: every file, then ``manifest.json``, then ``attestation.dsse.json``,
each object with its Object Lock retention when ``store_options.object_lock`` is set (otherwise
the bucket's default retention applies). The sealing step runs under a lock object created with
a conditional write (``If-None-Match: *``), so two scans never link to the same bundle.

Read commands (verify, report, history, diff, evaluate, export) take ``s3://bucket/prefix`` (a
store) or ``s3://bucket/prefix/<bundle>``: the objects they need are downloaded into a temporary
folder laid out like a local output folder, and the same code that checks a local folder runs on
it. ``verify`` also lists every object version: a delete marker or an overwritten object in the
store is a problem, and the Object Lock retention of every object is reported.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import socket
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from attest.errors import StoreError, UsageError
from attest.model import isoformat, sha256_bytes, utcnow

log = logging.getLogger("attest.store")

_URL = re.compile(r"^s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:/(.*))?$")
LOCK_KEY = ".attest.lock"
LOCK_TTL = timedelta(minutes=15)        # a lock older than this was left by a crashed scan
LOCK_WAIT = 600.0                       # seconds a scan waits for another scan's seal
MANUAL_PREFIX = "manual/"


class ObjectLockOption(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mode: Literal["GOVERNANCE", "COMPLIANCE"]
    days: int = Field(ge=1, le=36500)


class StoreOptions(BaseModel):
    """The ``store_options:`` config section."""
    model_config = ConfigDict(extra="forbid")
    region: str | None = None
    endpoint_url: str | None = Field(None, description="e.g. moto or a VPC endpoint")
    object_lock: ObjectLockOption | None = Field(
        None, description="retention set on every object; omit to use the bucket default")

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value and not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("expected a URL such as https://s3.us-east-1.amazonaws.com")
        return value


def is_store_url(target: Any) -> bool:
    return isinstance(target, str) and target.startswith("s3://")


def parse_store_url(url: str) -> tuple[str, str]:
    """(bucket, prefix without slashes) of ``s3://bucket/prefix``."""
    m = _URL.match(url.strip())
    if not m:
        raise UsageError(f"{url}: not an S3 store URL (expected s3://bucket/prefix, "
                         "with a valid bucket name)")
    return m.group(1), (m.group(2) or "").strip("/")


def split_bundle_url(url: str) -> tuple[str, str | None]:
    """(store URL, bundle name or None): ``s3://b/p/20261130T021500Z`` names one bundle."""
    from attest.store import BUNDLE_NAME
    bucket, prefix = parse_store_url(url)
    head, _, last = prefix.rpartition("/")
    if BUNDLE_NAME.match(last):
        return f"s3://{bucket}/{head}".rstrip("/"), last
    return f"s3://{bucket}/{prefix}".rstrip("/"), None


@dataclass
class StoreCheck:
    """What ``attest store check`` reports. A value of None means it could not be read."""
    url: str
    versioning: str | None = None
    object_lock: dict[str, Any] | None = None        # {"enabled": bool, "mode", "days"}
    encryption: str | None = None
    public_access_block: dict[str, bool] | None = None
    public: bool | None = None
    notes: list[str] = field(default_factory=list)   # what could not be read, and why

    @property
    def problems(self) -> list[str]:
        """Why the bucket is unsafe for evidence (a scan refuses it unless told otherwise)."""
        out = []
        if self.versioning != "Enabled":
            out.append("versioning is not enabled" if self.versioning is not None
                       else "versioning could not be read")
        if self.public is None:
            out.append("whether the bucket is public could not be read")
        elif self.public:
            out.append("the bucket is public")
        return out

    def lock_claim(self, options: StoreOptions) -> dict[str, Any] | None:
        """The retention every new object gets: the configured one, else the bucket default."""
        if options.object_lock:
            return {"mode": options.object_lock.mode, "days": options.object_lock.days,
                    "source": "store_options"}
        lock = self.object_lock or {}
        if lock.get("mode"):
            return {"mode": lock["mode"], "days": lock.get("days"), "source": "bucket default"}
        return None

    def to_json(self) -> dict[str, Any]:
        return {"url": self.url, "versioning": self.versioning, "object_lock": self.object_lock,
                "encryption": self.encryption, "public_access_block": self.public_access_block,
                "public": self.public, "problems": self.problems, "notes": self.notes}


@dataclass
class Materialized:
    """A store (or part of it) downloaded into ``folder``, laid out like an output folder."""
    folder: Path
    locks: dict[str, tuple[str | None, datetime | None]]   # key (store-relative) -> (mode, until)


class S3Store:
    # how every store opens its boto3 session (the default credential chain); a seam for tests
    session_factory: Callable[[], Any] | None = None

    def __init__(self, url: str, options: StoreOptions | None = None, session: Any = None,
                 workers: int = 8) -> None:
        import boto3
        from botocore.config import Config as BotoConfig
        self.bucket, self.prefix = parse_store_url(url)
        self.url = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        self.options = options or StoreOptions()
        self.workers = workers
        session = session or (S3Store.session_factory or boto3.Session)()
        config: dict[str, Any] = {"retries": {"mode": "standard", "max_attempts": 5},
                                  "connect_timeout": 10, "read_timeout": 60,
                                  "max_pool_connections": max(10, workers)}
        if self.options.endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3"):
            config["s3"] = {"addressing_style": "path"}
        self.client = session.client("s3", region_name=self.options.region or session.region_name,
                                     endpoint_url=self.options.endpoint_url,
                                     config=BotoConfig(**config))

    # -- names -------------------------------------------------------------------------------
    def key(self, rel: str) -> str:
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def rel(self, key: str) -> str:
        return key[len(self.prefix) + 1:] if self.prefix else key

    def _call(self, what: str, fn: Callable[..., Any], **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError
        try:
            return fn(Bucket=self.bucket, **kwargs)
        except ClientError as exc:
            err = exc.response.get("Error", {})
            raise StoreError(f"{self.url}: {what} failed: {err.get('Code')}: "
                             f"{err.get('Message') or exc}") from None
        except BotoCoreError as exc:
            raise StoreError(f"{self.url}: {what} failed: {exc}") from None

    # -- reading -----------------------------------------------------------------------------
    def listing(self) -> dict[str, int]:
        """Every current object under the prefix (store-relative key -> size), the lock excluded."""
        out: dict[str, int] = {}
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"Prefix": self.key("")} if self.prefix else {}
            if token:
                kwargs["ContinuationToken"] = token
            page = self._call("ListObjectsV2", self.client.list_objects_v2, **kwargs)
            for obj in page.get("Contents", []):
                rel = self.rel(obj["Key"])
                if rel != LOCK_KEY:
                    out[rel] = obj["Size"]
            if not page.get("IsTruncated"):
                return out
            token = page.get("NextContinuationToken")

    def bundle_names(self, listing: dict[str, int] | None = None, *,
                     complete: bool = True) -> list[str]:
        """Bundles in the store, oldest first. ``complete``: only those with a manifest."""
        from attest.store import BUNDLE_NAME, bundle_sort_key
        listing = self.listing() if listing is None else listing
        names = set()
        for rel in listing:
            top, sep, rest = rel.partition("/")
            if sep and BUNDLE_NAME.match(top) and (not complete or rest == "manifest.json"):
                names.add(top)
        return sorted(names, key=bundle_sort_key)

    def read(self, rel: str) -> bytes | None:
        from botocore.exceptions import ClientError
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self.key(rel))["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise StoreError(f"{self.url}: GetObject {rel} failed: "
                             f"{exc.response.get('Error', {}).get('Code')}") from None

    def head(self) -> tuple[str, bytes] | None:
        """(name, manifest.json bytes) of the newest complete bundle in the store, or None."""
        names = self.bundle_names()
        if not names:
            return None
        data = self.read(f"{names[-1]}/manifest.json")
        return (names[-1], data) if data is not None else None

    def materialize(self, dest: Path, names: Iterable[str], *, only: Iterable[str] | None = None,
                    manual: bool = False, listing: dict[str, int] | None = None) -> Materialized:
        """Download the objects of ``names`` (only the files named in ``only``, if given) and,
        with ``manual``, the stored manual documents, into ``dest``."""
        listing = self.listing() if listing is None else listing
        wanted, only_set = set(names), set(only) if only is not None else None
        rels = []
        for rel in listing:
            top, _, rest = rel.partition("/")
            if (top in wanted and (only_set is None or rest in only_set)) or \
                    (manual and rel.startswith(MANUAL_PREFIX)):
                rels.append(rel)
        locks: dict[str, tuple[str | None, datetime | None]] = {}
        root = dest.resolve()

        def fetch(rel: str) -> None:
            target = (dest / rel).resolve()
            if not str(target).startswith(str(root) + os.sep):
                raise StoreError(f"{self.url}: refusing object key outside the folder: {rel}")
            answer = self._call(f"GetObject {rel}", self.client.get_object, Key=self.key(rel))
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(answer["Body"].read())
            locks[rel] = (answer.get("ObjectLockMode"), answer.get("ObjectLockRetainUntilDate"))

        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            list(pool.map(fetch, sorted(rels)))
        return Materialized(dest, locks)

    def version_problems(self) -> list[str]:
        """Objects deleted (a delete marker is their newest version) or overwritten with other
        content: what Object Lock keeps, but a plain listing would hide."""
        versions: dict[str, set[str]] = {}
        deleted: set[str] = set()
        marker_kw: dict[str, Any] = {}
        while True:
            kwargs: dict[str, Any] = {"Prefix": self.key("")} if self.prefix else {}
            page = self._call("ListObjectVersions", self.client.list_object_versions,
                              **kwargs, **marker_kw)
            for v in page.get("Versions", []):
                versions.setdefault(self.rel(v["Key"]), set()).add(v.get("ETag", ""))
            for m in page.get("DeleteMarkers", []):
                if m.get("IsLatest"):
                    deleted.add(self.rel(m["Key"]))
            if not page.get("IsTruncated"):
                break
            marker_kw = {"KeyMarker": page.get("NextKeyMarker"),
                         "VersionIdMarker": page.get("NextVersionIdMarker")}
        problems = []
        for rel in sorted(deleted - {LOCK_KEY}):
            problems.append(f"{_bundle_of(rel)}: {_file_of(rel)}: deleted from the store (a delete "
                            "marker hides it; its earlier versions are kept)")
        for rel, tags in sorted(versions.items()):
            if rel != LOCK_KEY and len(tags) > 1:
                problems.append(f"{_bundle_of(rel)}: {_file_of(rel)}: overwritten in the store "
                                f"({len(tags)} versions with different content)")
        return problems

    # -- checking ----------------------------------------------------------------------------
    def check(self) -> StoreCheck:
        from botocore.exceptions import BotoCoreError, ClientError
        result = StoreCheck(self.url)

        def ask(what: str, fn: Callable[..., Any], absent: tuple[str, ...] = ()) -> Any:
            try:
                return fn(Bucket=self.bucket)
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code in absent:
                    return {}
                if code in ("NoSuchBucket",):
                    raise StoreError(f"{self.url}: no such bucket") from None
                result.notes.append(f"{what}: {code or exc}")
            except BotoCoreError as exc:
                raise StoreError(f"{self.url}: cannot reach the bucket: {exc}") from None
            return None

        v = ask("s3:GetBucketVersioning", self.client.get_bucket_versioning)
        if v is not None:
            result.versioning = v.get("Status") or "Never enabled"
        lock = ask("s3:GetBucketObjectLockConfiguration", self.client.get_object_lock_configuration,
                   ("ObjectLockConfigurationNotFoundError",))
        if lock is not None:
            conf = lock.get("ObjectLockConfiguration", {})
            retention = conf.get("Rule", {}).get("DefaultRetention", {})
            days = retention.get("Days") or (retention.get("Years", 0) * 365) or None
            result.object_lock = {"enabled": conf.get("ObjectLockEnabled") == "Enabled",
                                  "mode": retention.get("Mode"), "days": days}
        enc = ask("s3:GetEncryptionConfiguration", self.client.get_bucket_encryption,
                  ("ServerSideEncryptionConfigurationNotFoundError",))
        if enc is not None:
            rules = enc.get("ServerSideEncryptionConfiguration", {}).get("Rules", [])
            algos = [r.get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm") for r in rules]
            result.encryption = ", ".join(a for a in algos if a) or "none"
        pab = ask("s3:GetBucketPublicAccessBlock", self.client.get_public_access_block,
                  ("NoSuchPublicAccessBlockConfiguration",))
        if pab is not None:
            result.public_access_block = pab.get("PublicAccessBlockConfiguration", {
                "BlockPublicAcls": False, "IgnorePublicAcls": False, "BlockPublicPolicy": False,
                "RestrictPublicBuckets": False})
        status = ask("s3:GetBucketPolicyStatus", self.client.get_bucket_policy_status,
                     ("NoSuchBucketPolicy",))
        acl = ask("s3:GetBucketAcl", self.client.get_bucket_acl)
        if status is not None and acl is not None:
            public_acl = any(g.get("Grantee", {}).get("URI", "").endswith(("/AllUsers",
                                                                           "/AuthenticatedUsers"))
                             for g in acl.get("Grants", []))
            blocked = result.public_access_block or {}
            if blocked.get("IgnorePublicAcls"):
                public_acl = False
            result.public = bool(status.get("PolicyStatus", {}).get("IsPublic")) or public_acl
        if self.options.object_lock and result.object_lock is not None \
                and not result.object_lock.get("enabled"):
            result.notes.append("store_options.object_lock is set, but the bucket does not have "
                                "Object Lock enabled: uploads would be refused")
        return result

    # -- writing -----------------------------------------------------------------------------
    def _retention(self, now: datetime) -> dict[str, Any]:
        lock = self.options.object_lock
        if lock is None:
            return {}
        return {"ObjectLockMode": lock.mode, "ObjectLockRetainUntilDate": now + timedelta(days=lock.days)}

    def put(self, rel: str, data: bytes, now: datetime | None = None) -> None:
        sha = sha256_bytes(data)
        self._call(f"PutObject {rel}", self.client.put_object, Key=self.key(rel), Body=data,
                   Metadata={"sha256": sha}, ChecksumAlgorithm="SHA256",
                   **self._retention(now or utcnow()))

    def upload_bundle(self, bundle: Path, listing: dict[str, int]) -> int:
        """Upload a sealed local bundle: its files, then manifest.json, then the attestation.
        Objects already in the store with the same size and sha256 are not written again."""
        from attest.manifest import MANIFEST
        from attest.signing import ATTESTATION
        files = sorted((p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file()),
                       key=lambda r: (r == MANIFEST, r == ATTESTATION, r))
        todo = [r for r in files if not self._already(f"{bundle.name}/{r}", bundle / r, listing)]
        now = utcnow()
        body = [r for r in todo if r not in (MANIFEST, ATTESTATION)]
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            list(pool.map(lambda r: self.put(f"{bundle.name}/{r}", (bundle / r).read_bytes(), now), body))
        for last in (MANIFEST, ATTESTATION):   # written last: a bundle counts once its manifest is in
            if last in todo:
                self.put(f"{bundle.name}/{last}", (bundle / last).read_bytes(), now)
        return len(todo)

    def _already(self, rel: str, path: Path, listing: dict[str, int]) -> bool:
        if listing.get(rel) != path.stat().st_size:
            return False
        from botocore.exceptions import ClientError
        try:
            meta = self.client.head_object(Bucket=self.bucket, Key=self.key(rel)).get("Metadata", {})
        except ClientError:
            return False
        return meta.get("sha256") == sha256_bytes(path.read_bytes())

    def upload_manual(self, manual_dir: Path, listing: dict[str, int]) -> int:
        """Stored manual documents (content-addressed, written once) go up beside the bundles."""
        if not manual_dir.is_dir():
            return 0
        count = 0
        for path in sorted(p for p in manual_dir.rglob("*") if p.is_file()):
            rel = MANUAL_PREFIX + path.relative_to(manual_dir).as_posix()
            if not self._already(rel, path, listing):
                self.put(rel, path.read_bytes())
                count += 1
        return count

    @contextlib.contextmanager
    def lock(self, owner: str, wait: float = LOCK_WAIT) -> Iterator[None]:
        """Hold the store's seal lock: an object created only if absent (``If-None-Match: *``).
        A lock older than LOCK_TTL was left by a scan that died, and is taken over."""
        from botocore.exceptions import ClientError
        deadline = time.monotonic() + wait
        now = utcnow()
        body = json.dumps({"owner": owner, "host": socket.gethostname(), "pid": os.getpid(),
                           "acquired_at": isoformat(now),
                           "expires_at": isoformat(now + LOCK_TTL)}).encode()
        while True:
            try:
                self.client.put_object(Bucket=self.bucket, Key=self.key(LOCK_KEY), Body=body,
                                       IfNoneMatch="*")
                break
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code not in ("PreconditionFailed", "ConditionalRequestConflict"):
                    raise StoreError(f"{self.url}: cannot take the store lock: {code}") from None
            held = self.read(LOCK_KEY)
            try:
                expires = datetime.fromisoformat(json.loads(held or b"{}")["expires_at"].replace("Z", "+00:00"))
            except (ValueError, KeyError, TypeError):
                expires = None
            if expires is not None and expires < utcnow():
                log.warning("%s: taking over a lock left by a scan that did not finish (%s)",
                            self.url, (held or b"").decode("utf-8", "replace"))
                self._call("DeleteObject lock", self.client.delete_object, Key=self.key(LOCK_KEY))
                continue
            if time.monotonic() > deadline:
                raise StoreError(f"{self.url}: another scan holds the store lock "
                                 f"({(held or b'').decode('utf-8', 'replace')})")
            time.sleep(0.5)
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                self.client.delete_object(Bucket=self.bucket, Key=self.key(LOCK_KEY))


def _bundle_of(rel: str) -> str:
    top, sep, _ = rel.partition("/")
    return top if sep else "(store)"


def _file_of(rel: str) -> str:
    top, sep, rest = rel.partition("/")
    return rest if sep else top


def open_store(url: str, config_arg: str | None = None) -> S3Store:
    """The store at ``url``, reached with the store_options of the config given by
    ``config_arg`` or ``$ATTEST_CONFIG`` (when it names this bucket), else the AWS environment."""
    options = None
    path = config_arg or os.environ.get("ATTEST_CONFIG")
    if path:
        from attest.config import load_config
        config = load_config(path)
        if config.model.store and parse_store_url(config.model.store)[0] == parse_store_url(url)[0]:
            options = config.model.store_options
    return S3Store(url, options)


@contextlib.contextmanager
def local_view(target: str | Path, config_arg: str | None = None, *,
               names: Callable[[list[str]], list[str]] | None = None,
               only: Iterable[str] | None = None, manual: bool = False) -> Iterator[Path]:
    """A local folder for ``target``: the folder itself, or, for ``s3://...``, a temporary copy
    of the store (or of one bundle) holding the bundles ``names`` picks from the store's list."""
    if not is_store_url(target):
        yield Path(target)
        return
    store_url, bundle = split_bundle_url(str(target))
    store = open_store(store_url, config_arg)
    listing = store.listing()
    every = store.bundle_names(listing, complete=False)
    if bundle is not None:
        if bundle not in every:
            raise UsageError(f"{target}: no such bundle in the store")
        chosen = [b for b in every if b <= bundle] if names else [bundle]
        chosen = names(chosen) if names else chosen
    else:
        chosen = names(every) if names else every
    with tempfile.TemporaryDirectory(prefix="attest-store-") as tmp:
        store.materialize(Path(tmp), chosen, only=only, manual=manual, listing=listing)
        yield Path(tmp) / bundle if bundle is not None else Path(tmp)


@dataclass
class SyncResult:
    head: tuple[str, str] | None                  # (name, manifest sha256) of the store's newest
    uploaded: list[str] = field(default_factory=list)
    kept_local: list[str] = field(default_factory=list)   # why a local bundle was not uploaded
    listing: dict[str, int] = field(default_factory=dict)


def sync(store: S3Store, out: Path) -> SyncResult:
    """Upload, oldest first, the local bundles the store is missing (a scan whose upload failed
    left them), as long as each continues the store's chain. Call it under the store's lock."""
    from attest.manifest import MANIFEST, read_manifest, verify_bundle
    from attest.signing import ATTESTATION
    from attest.store import bundle_sort_key, list_bundles
    listing = store.listing()
    names = store.bundle_names(listing)
    head: tuple[str, str] | None = None
    if names:
        data = store.read(f"{names[-1]}/{MANIFEST}")
        head = (names[-1], sha256_bytes(data)) if data is not None else None
    result = SyncResult(head=head, listing=listing)
    for bundle in list_bundles(out):
        def stored(rel: str) -> bool:
            path = bundle / rel
            return not path.is_file() or listing.get(f"{bundle.name}/{rel}") == path.stat().st_size
        if stored(MANIFEST) and stored(ATTESTATION):
            continue
        if bundle.name in names:   # its manifest is in, its signature is not: finish it
            store.upload_bundle(bundle, listing)
            result.uploaded.append(bundle.name)
            continue
        link = read_manifest(bundle).get("previous") or {}
        here = (link.get("bundle"), link.get("manifest_sha256"))
        if here != (head or (None, None)):
            if result.head is None or bundle_sort_key(bundle.name) > bundle_sort_key(result.head[0]):
                result.kept_local.append(
                    f"{bundle.name}: kept locally, not uploaded: it links to "
                    f"{link.get('bundle') or 'no earlier bundle'}, but the store's newest bundle is "
                    f"{head[0] if head else 'none'} (uploading it would fork the chain)")
            continue
        problems = verify_bundle(bundle)
        if problems:
            result.kept_local.append(f"{bundle.name}: kept locally, not uploaded: it does not "
                                     f"verify: {problems[0]}")
            continue
        store.upload_bundle(bundle, listing)
        result.uploaded.append(bundle.name)
        head = (bundle.name, sha256_bytes((bundle / MANIFEST).read_bytes()))
    result.head = head
    return result


def configured_store(config: Any) -> S3Store | None:
    """The S3 store a loaded config names (``store: s3://...``), or None for a local folder."""
    url = getattr(config.model, "store", None)
    return S3Store(url, config.model.store_options) if url else None


def verify_store(target: str, config_arg: str | None = None, *, allow_pruned: bool = False,
                 public_key: Any = None) -> tuple[list[str], list[str], list[str]]:
    """``attest verify s3://...``: (bundle names, problems, notes on Object Lock retention).

    Every object is downloaded and checked like a local folder; the store's version listing
    adds the deletions and overwrites that Object Lock kept but a plain listing would hide."""
    from attest.manifest import verify
    store_url, bundle = split_bundle_url(target)
    store = open_store(store_url, config_arg)
    listing = store.listing()
    every = store.bundle_names(listing, complete=False)
    if bundle is not None and bundle not in every:
        raise UsageError(f"{target}: no such bundle in the store")
    if not every:
        raise UsageError(f"{target}: no bundles found in the store")
    with tempfile.TemporaryDirectory(prefix="attest-verify-") as tmp:
        got = store.materialize(Path(tmp), [bundle] if bundle else every, listing=listing)
        bundles, problems = verify(Path(tmp) / bundle if bundle else Path(tmp),
                                   allow_pruned=allow_pruned, public_key=public_key)
        names = [b.name for b in bundles]
    if bundle is None:
        problems.extend(store.version_problems())
    return names, problems, lock_notes(got.locks)


def lock_notes(locks: dict[str, tuple[str | None, datetime | None]]) -> list[str]:
    """What Object Lock retains, in words: modes, the earliest retain-until date, and any
    object that is not retained at all."""
    if not locks:
        return []
    held = {k: v for k, v in locks.items() if v[0]}
    notes = []
    if held:
        modes = sorted({m for m, _ in held.values() if m})
        earliest = min(u for _, u in held.values() if u)
        notes.append(f"Object Lock: {len(held)} of {len(locks)} objects retained ({', '.join(modes)}); "
                     f"the earliest retention ends {isoformat(earliest)}")
    unlocked = sorted(set(locks) - set(held))
    if unlocked:
        notes.append(f"Object Lock: {len(unlocked)} object(s) have no retention and could be "
                     f"deleted or overwritten, e.g. {unlocked[0]}")
    return notes


# What the store calls, as IAM actions, by the resource they apply to. ``attest permissions
# store`` prints the policy; tests/test_store.py checks it equals what a scan and a verify call.
STORE_ACTIONS = {
    "bucket": ("s3:ListBucket", "s3:ListBucketVersions", "s3:GetBucketVersioning",
               "s3:GetBucketObjectLockConfiguration", "s3:GetEncryptionConfiguration",
               "s3:GetBucketPublicAccessBlock", "s3:GetBucketPolicyStatus", "s3:GetBucketAcl"),
    "objects": ("s3:PutObject", "s3:PutObjectRetention", "s3:GetObject", "s3:GetObjectRetention"),
    "lock": ("s3:DeleteObject",),
}
SIGNING_ACTIONS = ("kms:Sign", "kms:GetPublicKey")


def store_policy(url: str | None = None, kms_key_id: str | None = None) -> dict[str, Any]:
    """The IAM policy the store and the signing key need (separate from the read-only audit
    policy): the bucket's settings, the bundles under the prefix, deleting only the lock object."""
    bucket, prefix = parse_store_url(url) if url else ("BUCKET", "PREFIX")
    under = f"{prefix}/" if prefix else ""
    statements = [
        {"Sid": "AttestStoreBucketSettings", "Effect": "Allow", "Action": list(STORE_ACTIONS["bucket"]),
         "Resource": f"arn:aws:s3:::{bucket}"},
        {"Sid": "AttestStoreBundles", "Effect": "Allow", "Action": list(STORE_ACTIONS["objects"]),
         "Resource": f"arn:aws:s3:::{bucket}/{under}*"},
        {"Sid": "AttestStoreLockOnly", "Effect": "Allow", "Action": list(STORE_ACTIONS["lock"]),
         "Resource": f"arn:aws:s3:::{bucket}/{under}{LOCK_KEY}"},
    ]
    if kms_key_id is not None:
        statements.append({"Sid": "AttestSignManifests", "Effect": "Allow",
                           "Action": list(SIGNING_ACTIONS), "Resource": kms_key_id})
    return {"Version": "2012-10-17", "Statement": statements}
