"""failed-calls.json (issue 9, item 1): every sealed bundle, shard and merged bundle lists each
call that failed for good, and why.

The real collectors read the demo fakes (GitHub, Okta, Datadog, Kubernetes) over real HTTP, with a
WSGI middleware in front of each app refusing chosen requests for good, as tests/test_faults.py
does; AWS reads moto through the denying proxy of tests/collectors/aws_fixtures.py. Each refusal
echoes the request's credentials in its message (a vendor that should not, but might): none may
reach the file. Nothing of an SDK is mocked.
"""
from __future__ import annotations

import importlib
import io
import json
import re
import threading
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from attest.calls import FAILED_CALLS
from attest.demo.http import LocalServer
from attest.manifest import read_manifest, verify
from attest.model import Evidence, EvidenceState
from tests.conftest import NOW

SAAS = ("github", "okta", "datadog", "kubernetes")
CREDENTIAL_HEADERS = ("HTTP_AUTHORIZATION", "HTTP_DD_API_KEY", "HTTP_DD_APPLICATION_KEY")


class Refusals:
    """WSGI middleware: a request (``METHOD path?query body``) matching one of ``rules`` gets that
    rule's answer, every time; the others go to ``app``. Each refusal quotes the request's
    credential headers in its message."""

    def __init__(self, app: Callable) -> None:
        self.app = app
        self.rules: list[tuple[str, int, Any]] = []
        self.refused: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        rules = list(self.rules)
        if not rules:
            return self.app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        ident = (f"{environ['REQUEST_METHOD']} {environ.get('PATH_INFO', '')}?"
                 f"{environ.get('QUERY_STRING', '')} {body.decode('utf-8', 'replace')}")
        for pattern, status, answer in rules:
            if re.search(pattern, ident):
                with self._lock:
                    self.refused[pattern] += 1
                echoed = "; ".join(f"{k[5:].title()}: {environ[k]}" for k in CREDENTIAL_HEADERS
                                   if k in environ)
                payload = answer if answer is not None else {
                    "message": f"refused by the test (request had {echoed})"}
                data = json.dumps(payload).encode()
                start_response(f"{status} Refused", [("Content-Type", "application/json"),
                                                     ("Content-Length", str(len(data)))])
                return [data]
        return self.app(environ, start_response)


def _entries(folder: Path) -> list[dict[str, Any]]:
    return json.loads((folder / FAILED_CALLS).read_text(encoding="utf-8"))


def _without_time(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in e.items() if k != "at"} for e in entries]


def _implied(records: list[Evidence]) -> Counter[str]:
    """How many failed calls the records that are not ``ok`` imply, per evidence name: one per
    resource a partial record could not read, else one per record whose own read failed (a
    record only carrying another's failure, "not read: ...", implies none)."""
    implied: Counter[str] = Counter()
    for r in records:
        if r.state.known or r.detail.startswith(("not read:", "the repositories could not")):
            continue
        implied[r.name] += len(r.unknown) or 1
    return implied


# --- the SaaS sources ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def fakes() -> Iterator[tuple[Any, dict[str, Refusals]]]:
    from attest.demo import start_demo
    refusals: dict[str, Refusals] = {}

    def refusing(name: str) -> type:
        class RefusingServer(LocalServer):
            def __init__(self, app: Callable, *args: Any, **kwargs: Any) -> None:
                refusals[name] = Refusals(app)
                super().__init__(refusals[name], *args, **kwargs)
        return RefusingServer

    with pytest.MonkeyPatch.context() as mp:
        for name in SAAS:
            mp.setattr(importlib.import_module(f"collectors.{name}.demo"), "LocalServer",
                       refusing(name))
        demo = start_demo(NOW, sources=SAAS)
    try:
        yield demo, refusals
    finally:
        demo.stop()


PERMANENT = {
    "github": [(r"^GET /orgs/[^/]+/members\?", 500, None),
               (r"^POST /graphql\? .*OrgRulesets", 200, {"data": None, "errors": [{
                   "type": "FORBIDDEN", "message": "Resource not accessible by integration"}]})],
    "okta": [(r"^GET /api/v1/policies\?.*type=PASSWORD", 403, None),
             (r"^GET /api/v1/users/[^/]+/factors", 503, None)],
    "datadog": [(r"^GET /api/v1/logs/config/indexes", 403, None)],
    "kubernetes": [(r"^GET /apis/networking\.k8s\.io/v1/networkpolicies", 500, None)],
}


@pytest.fixture
def refused(fakes) -> Iterator[Any]:
    """The fakes refusing the requests of :data:`PERMANENT` for good."""
    demo, refusals = fakes
    for name, rules in PERMANENT.items():
        refusals[name].rules = rules
    try:
        yield demo
    finally:
        for r in refusals.values():
            r.rules = []


def _config(demo: Any, folder: Path) -> Any:
    """The demo's config as a file (so that no source runs without its section: AWS would)."""
    import yaml

    from attest.config import load_config
    folder.mkdir(parents=True, exist_ok=True)
    from attest.sources import load_collector, sources
    # fewer retries than the default 9 (in each section that has the key), so that the calls
    # refused for good fail in seconds
    retried = {name for name in demo.config if name in sources()
               and "max_retries" in load_collector(name).Config.model_fields}
    sections = {name: {**section, "max_retries": 3} if name in retried else section
                for name, section in demo.config.items()}
    (folder / "config.yaml").write_text(yaml.safe_dump({**sections, "output_dir": "out"}),
                                        encoding="utf-8")
    return load_config(folder / "config.yaml")


def _secrets(config: Any, demo: Any) -> list[str]:
    """Every credential the scan held: the config's secrets and the demo's tokens."""
    values = set(config.secrets()) | {v for s in demo.sources.values() for v in s.env.values()}
    assert len(values) >= 5, values   # GitHub, Okta, two Datadog keys, Kubernetes
    return sorted(values)


EXPECTED = {   # (source, call, status, evidence, state): how many entries
    ("github", "GET /orgs/{org}/members", 500, "github.members_2fa_disabled", "error"): 1,
    ("github", "POST /graphql", "FORBIDDEN", "github.org_rulesets", "denied"): 1,
    ("okta", "GET /api/v1/policies", 403, "okta.policies.password", "denied"): 1,
    ("datadog", "GET /api/v1/logs/config/indexes", 403, "datadog.log_indexes", "denied"): 1,
    ("kubernetes", "GET /apis/networking.k8s.io/v1/networkpolicies", 500,
     "kubernetes.network_policies", "error"): 1,
}


def test_every_call_refused_for_good_is_listed_once_with_its_status_and_no_secret(refused, tmp_path):
    from attest.calls import ordered
    from attest.scan import run_scan
    config = _config(refused, tmp_path)
    outcome = run_scan(config, now=NOW)
    bundle = outcome.bundle
    entries = _entries(bundle)
    records = outcome.records

    # one entry per call, naming the call, its status and the evidence it was for
    factors = next(r for r in records if r.name == "okta.factors")
    assert factors.state is EvidenceState.PARTIAL and len(factors.unknown) >= 2
    expected = Counter(EXPECTED)
    expected[("okta", "GET /api/v1/users/{id}/factors", 503, "okta.factors", "error")] = \
        len(factors.unknown)
    got = Counter((e["source"], e["call"], e["status"], e["evidence"], e["state"]) for e in entries)
    assert got == expected
    # as many as the records that could not be read imply, and none for what was read
    assert Counter(e["evidence"] for e in entries) == _implied(records)
    # each call as it was made: its path without the query, the tries the layer made
    by_call = {e["call"]: e for e in entries}
    assert by_call["GET /orgs/{org}/members"]["resource"] == "/orgs/acme-rockets/members"
    assert by_call["GET /orgs/{org}/members"]["attempts"] == config.model.github.max_retries + 1
    assert by_call["GET /apis/networking.k8s.io/v1/networkpolicies"]["attempts"] == \
        config.model.kubernetes.max_retries + 1
    assert by_call["GET /api/v1/policies"]["attempts"] == 1          # a denial is not retried
    assert by_call["POST /graphql"]["reason"].startswith("GraphQL: Resource not accessible")
    assert by_call["POST /graphql"]["resource"] == "/graphql (organization.rulesets)"
    factor_paths = sorted(e["resource"] for e in entries if e["evidence"] == "okta.factors")
    assert len(set(factor_paths)) == len(factor_paths)
    assert all(re.fullmatch(r"/api/v1/users/00u\w+/factors", p) for p in factor_paths)
    assert all("?" not in e["resource"] for e in entries)
    assert all(e["at"].startswith("20") and e["at"].endswith("Z") for e in entries)
    assert entries == ordered(entries)
    assert {e["scope"] for e in entries if e["source"] == "github"} == {"github:acme-rockets"}

    # no credential, though every refusal quoted them
    text = (bundle / FAILED_CALLS).read_text(encoding="utf-8")
    for secret in _secrets(config, refused):
        assert secret not in text
    assert text.count("[redacted]") >= len(entries) - 1   # the GraphQL error quoted none
    # nor anywhere else in the bundle: the refusals' messages reach evidence details and scan.log
    for path in bundle.rglob("*"):
        if path.is_file():
            data = path.read_text(encoding="utf-8", errors="replace")
            for secret in config.secrets():
                assert secret not in data, f"a secret reached {path.relative_to(bundle)}"

    # a bundle file like any other: pinned by the manifest, verified, and named by the report
    listed = {f["path"]: f for f in read_manifest(bundle)["files"]}
    assert FAILED_CALLS in listed and verify(bundle)[1] == []
    line = f"{len(entries)} calls failed for good (after retries): see <a href="
    assert line + '"failed-calls.json"' in (bundle / "report.html").read_text(encoding="utf-8")
    # and the report rebuilt from the bundle elsewhere says so too, linking the bundle's file
    from attest.cli import main
    assert main(["report", str(bundle), "--out", str(tmp_path / "r.html")]) == 0
    assert line + f'"{bundle.relative_to(tmp_path).as_posix()}/failed-calls.json"' in \
        (tmp_path / "r.html").read_text(encoding="utf-8")


def test_shards_keep_their_failed_calls_and_the_merge_carries_them(refused, tmp_path):
    from attest.scan import run_merge, run_shard
    from attest.shards import ShardSpec, find_shards
    config = _config(refused, tmp_path)
    out = config.output_dir
    shards = [run_shard(config, ShardSpec(i, 2), now=NOW) for i in range(2)]
    per_shard = [_entries(s.folder) for s in shards]
    assert all((s.folder / FAILED_CALLS).is_file() for s in shards)
    assert all(per_shard) and sum(len(e) for e in per_shard) >= len(EXPECTED)
    # each shard lists the failed calls of the sources it collected, and only those
    for shard, entries in zip(shards, per_shard):
        covered = {u.split(":")[0] for u in shard.manifest["units"]["covered"]}
        assert {e["source"] for e in entries} <= covered
        listed = {f["path"] for f in shard.manifest["files"]}
        assert FAILED_CALLS in listed
    (night,) = find_shards(out).values()
    outcome = run_merge(config, night, out_dir=out)
    merged = _entries(outcome.bundle)
    assert _without_time(merged) == sorted(
        _without_time([e for entries in per_shard for e in entries]),
        key=lambda e: tuple(str(e.get(k) if e.get(k) is not None else "")
                            for k in ("source", "scope", "evidence", "call", "resource", "status")))
    assert Counter(e["evidence"] for e in merged) == _implied(outcome.records)
    for shard, entries in zip(shards, per_shard):   # each shard's own file, byte for byte
        kept = outcome.bundle / "shards" / shard.folder.name / FAILED_CALLS
        assert json.loads(kept.read_text(encoding="utf-8")) == entries
    assert verify(out)[1] == []
    text = (outcome.bundle / FAILED_CALLS).read_text(encoding="utf-8")
    for secret in _secrets(config, refused):
        assert secret not in text


# --- AWS, on moto ----------------------------------------------------------------------------

def test_an_aws_call_denied_for_good_is_listed_and_an_absent_answer_is_not(moto, tmp_path):
    import yaml

    from attest.config import load_config
    from attest.scan import run_scan
    from collectors.aws.demo import ACCOUNT, ENV, client
    from tests.collectors.aws_fixtures import DenyingProxy
    home, eu = "us-east-1", "eu-west-1"
    s3 = client(moto, "s3")
    for name in ("acme-a", "acme-b", "acme-c"):
        s3.create_bucket(Bucket=name)
    for name in ("acme-a", "acme-b"):
        s3.put_bucket_policy(Bucket=name, Policy=json.dumps({
            "Version": "2012-10-17", "Statement": [{
                "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                "Resource": f"arn:aws:s3:::{name}/*",
                "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}))
    # acme-c has no policy: NoSuchBucketPolicy, a fact (absent), not a failure

    def deny(region: str, service: str, body: bytes, path: str) -> bool:
        return (service == "s3" and path.startswith("/acme-b?policy")) or \
            (service == "guardduty" and region == eu)

    with DenyingProxy(moto, deny, with_path=True) as url:
        (tmp_path / "config.yaml").write_text(yaml.safe_dump({
            "output_dir": "out", "aws": {"endpoint_url": url, "regions": [home, eu]}}))
        config = load_config(tmp_path / "config.yaml")
        outcome = run_scan(config, now=NOW)
    entries = _entries(outcome.bundle)
    policies = [e for e in entries if e["evidence"] == "aws.s3.bucket_policies"]
    assert _without_time(policies) == [{
        "source": "aws", "scope": f"aws:{ACCOUNT}:{home}", "call": "s3:GetBucketPolicy",
        "resource": f"bucket acme-b in {home}", "status": "AccessDenied", "attempts": 1,
        "reason": "Access Denied", "state": "denied", "evidence": "aws.s3.bucket_policies"}]
    # the region that refuses: each of its GuardDuty reads, there and only there
    guardduty = [e for e in entries if e["call"].startswith("guardduty:")]
    assert guardduty and {(e["scope"], e["status"], e["state"]) for e in guardduty} == \
        {(f"aws:{ACCOUNT}:{eu}", "AccessDeniedException", "denied")}
    assert {e["call"] for e in entries} <= {"s3:GetBucketPolicy"} | {e["call"] for e in guardduty}
    # the region's two GuardDuty items share one ListDetectors call (read once per region):
    # one entry, named for the item that read it first; both records are denied
    implied, got = _implied(outcome.records), Counter(e["evidence"] for e in entries)
    names = ("aws.guardduty.detectors", "aws.guardduty.findings")
    assert sum(implied.pop(n, 0) for n in names) == 2 and sum(got.pop(n, 0) for n in names) == 1
    assert [e["call"] for e in guardduty] == ["guardduty:ListDetectors"]
    assert got == implied
    text = (outcome.bundle / FAILED_CALLS).read_text(encoding="utf-8")
    assert ENV["AWS_SECRET_ACCESS_KEY"] not in text and ENV["AWS_ACCESS_KEY_ID"] not in text
    assert verify(outcome.bundle)[1] == []
