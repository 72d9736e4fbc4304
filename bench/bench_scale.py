"""Benchmark: a full scan of a large company (AWS, GitHub, Okta, Datadog) on moto and the local
fakes, every answer 50 ms late, at the vendors' rate limits (issue 9, item 7). Run by hand, never
as a timed unit test:

    .venv/bin/python bench/bench_scale.py --scale 100 [--scale 10 ...] [--latency-ms 50]
        [--aws-members N] [--aws-regions N] [--no-aws] [--okta-rate-limit 600] [--okta-share S]
        [--out bench/results/scale.md] [--json RAW.json]
    .venv/bin/python bench/bench_scale.py --merge A.json B.json ... [--out bench/results/scale.md]

The estate at ``--scale 1`` (full size); ``--scale N`` divides every count by N (at least 1):

* AWS: an AWS Organization in moto. Its management account (moto's default, 123456789012) is
  seeded in every region the scan reads with what ``bench/bench_aws.py`` seeds per region
  (``bench_aws.seed_large``: about 75 resources a region, 116 account-wide: IAM, buckets, a
  trail). 20 member accounts (``--aws-members``; default 20 / N) are created with moto's
  Organizations, each with the role attest assumes (``attest-audit``) and a small estate: one of
  each kind (``seed_large`` at 1/1000, about 50 resources) in its first two regions. The scan's
  ``aws:`` section names the organization (``organization.role_name: attest-audit``) and
  ``regions: all``: attest's own discovery, moto's DescribeRegions less the opt-in regions not
  opted in, which is 20 regions of the aws partition (and 2 China and 2 GovCloud regions that
  attest records "service not offered" without a call). Every account is read in every one of
  those regions (attest has no per-account region list); only the management account has
  resources in all of them. ``--aws-regions N`` reads and seeds only the first N (us-east-1
  first). attest's defaults stand: 4 accounts at once (``max_accounts``), 8 reads in each
  (``max_workers``). ``--no-aws`` leaves AWS out.
* GitHub 3000 repositories (300 members, a Dependabot alert per 20 repositories, a merged pull
  request per 10), Okta 20,000 users with one or two factors each (plus the demo's policies),
  Datadog 5000 monitors.

What a run does, per ``--scale``:

1. Starts two server processes. One builds the GitHub, Okta and Datadog worlds and serves them
   with the fakes (``attest.demo.http.LocalServer``), each answer delayed by ``--latency-ms``;
   the fakes send their rate-limit headers: GitHub 5000 calls an hour, Okta ``--okta-rate-limit``
   (600) a calendar minute over every ``/api/v1`` call, Datadog 1000 per 10 s. The other runs
   moto (with the demo's answers for what moto lacks, ``collectors/aws/demo_gaps.py``) behind a
   WSGI layer (:class:`AwsFront`) that delays every answer by ``--latency-ms`` and records it;
   both are switched on after seeding, which is not measured.
2. Runs ``attest scan --config CONFIG`` (the four sources, the whole catalog) as a subprocess
   under ``/usr/bin/time -v``: wall time, CPU and the scan process's peak RSS. Each source's
   wall time comes from the bundle's scan.log (``<source>: N evidence records ... in X s``).
   The servers' CPU during the scan and their peak RSS are reported beside it.
3. Then the servers report every request they answered: by source, by endpoint family and by
   HTTP status. A family is ``METHOD /path`` with ids and names replaced (``GET
   /api/v1/users/{id}/factors``, ``GET /repos/{owner}/{repo}/vulnerability-alerts``, ``POST
   /graphql``); for AWS ``service:Action``, from the X-Amz-Target header (JSON APIs), the
   ``Action`` parameter (query APIs) or the botocore operation whose method and URI the request
   matches (REST APIs: S3, EKS, GuardDuty, Backup...).
4. Per source, two lower bounds on its time: ``calls x latency / 16`` (16: the concurrency a
   source may reasonably use), and the whole windows a fixed-window rate limit forces a client
   to wait at the share of the limit attest uses: ``(ceil(calls / (limit x share)) - 1) x
   window``: GitHub 5000/hour at share 1 and Datadog 1000/10 s at share 1 (attest has no share
   setting for either), Okta's limit a minute at ``okta.rate_limit_share`` (default 0.5, or
   ``--okta-share``), counted over the ``/api/v1`` calls as the fake counts them. AWS has none:
   moto has no limits, and AWS throttles with token buckets, not fixed windows. The Okta fake's
   windows are calendar minutes, so a scan that starts late in a minute can finish up to one
   window under the rate bound.
5. Writes the figures, the verdicts, the exact commands, the machine and the versions to
   ``--out`` (markdown) and the raw figures to ``--json`` after each scale. ``--merge`` writes
   ``--out`` from the ``--json`` files of earlier runs, with the verdicts recomputed.

Targets (issue 9, on the project's 2-core machine), each printed ``ok`` or ``MISS``; the exit code
is 1 if one is missed (``--merge`` too):

* each source's wall time <= 1.3 x its larger bound + 5 s (start-up), at every scale run;
* the scan's peak RSS < 300 MB, at ``--scale 1`` only;
* time linear in estate size, with two scales or more: each source's calls per unit of estate
  (AWS: per account-region, an account read in one region; GitHub: per repository; Okta: per
  user; Datadog: per monitor) at the largest estate are no more than 1.3 x those at the smallest,
  so calls grow no faster than the estate; time follows the calls through the first target.
  Seconds per call are printed beside them (they jump where rate-limit windows start).
"""
from __future__ import annotations

import argparse
import io
import json
import math
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs

import bench_aws   # beside this file: python puts bench/ first on sys.path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FULL = {"github repositories": 3000, "github members": 300, "okta users": 20000,
        "datadog monitors": 5000}
AWS_MEMBERS = 20               # member accounts of the organization at full size (--scale N: 20 / N)
MEMBER_SCALE = 1000            # bench_aws.seed_large's divisor for a member: one of each kind
MEMBER_REGIONS = 2             # a member's resources are in its first two regions
ROLE = "attest-audit"          # the role attest assumes in every account
SOURCES = ("aws", "github", "okta", "datadog")
TARGET_RSS_MB = 300.0
CONCURRENCY = 16               # the concurrency a source may reasonably use (the latency bound)
SLACK = 1.3                    # a source's time may be 1.3 x its larger bound ...
STARTUP_S = 5.0                # ... plus 5 s of start-up
OKTA_RATE_LIMIT = 600          # calls a minute, X-Rate-Limit-Limit
GH_TOKEN = "bench-gh-token"


def sizes(scale: int) -> dict[str, int]:
    return {k: max(1, v // scale) for k, v in FULL.items()}


def members(scale: int, given: int | None) -> int:
    """The organization's member accounts: ``--aws-members``, else 20 / scale (at least 1)."""
    return given if given is not None else max(1, AWS_MEMBERS // scale)


# --- the worlds (fakes server process) -------------------------------------------------------

def github_world(n: dict[str, int], now: datetime):
    from collectors.github.demo.world import (OWNER, Alert, Member, Protection, Pull, Repo,
                                              Review, World)
    repos = []
    for i in range(n["github repositories"]):
        kind = i % 4
        repos.append(Repo(f"service-{i:05d}", private=i % 7 != 0,
                          protection=Protection() if kind in (0, 1) else
                          Protection(allow_force_pushes=True, status_checks=None) if kind == 2 else None,
                          security_updates=i % 5 != 0, secret_scanning=i % 9 != 0,
                          archived=i % 50 == 49))
    members = [Member(f"dev-{i:05d}", two_factor=i % 100 != 0) for i in range(n["github members"])]
    alerts = [Alert(i + 1, repos[i * 20].name, ("low", "medium", "high", "critical")[i % 4],
                    now - timedelta(days=i % 60)) for i in range(len(repos) // 20)]
    day = timedelta(days=1)
    pulls = [Pull(repos[i * 10].name, 100 + i, members[i % len(members)].login, now - (i % 25 + 1) * day,
                  [Review(members[(i + 1) % len(members)].login, now - (i % 25 + 1) * day - timedelta(hours=1))]
                  if i % 8 else []) for i in range(len(repos) // 10)]
    return World(org="bigco", now=now, tokens={GH_TOKEN: OWNER}, members=members, repos=repos,
                 alerts=alerts, pulls=pulls)


def okta_world(n: dict[str, int], now: datetime, rate_limit: int = OKTA_RATE_LIMIT):
    from collectors.okta.demo import OktaWorld, READ_SCOPES, factor, seed_acme, user
    world = OktaWorld(rate_limit=rate_limit)
    seed_acme(world, now)                 # the demo's policies (and its 8 users)
    kinds = ("push", "webauthn", "token:software:totp", "sms", "question")
    for i in range(n["okta users"]):
        facs = [factor(kinds[i % 5])] + ([factor(kinds[(i + 2) % 5])] if i % 3 else [])
        world.add_user(user(f"user{i:05d}@bigco.example", first="User", last=f"N{i}",
                            activated=now - timedelta(days=30 + i % 900),
                            last_login=now - timedelta(days=i % 120)), facs)
    world.tokens["bench-okta-token"] = READ_SCOPES
    return world


def datadog_world(n: dict[str, int], now: datetime):
    from collectors.datadog.demo import DatadogWorld, acme_world, monitor
    base = acme_world(now)
    monitors = [monitor(50000000 + i, f"[prod] service-{i:05d} error rate",
                        query=f"sum(last_5m):sum:trace.http.request.errors{{service:svc-{i}}}.as_count() > 10",
                        message=f"Errors on svc-{i}. @pagerduty-team-{i % 40}" if i % 25 else "Check it.",
                        tags=[f"team:t{i % 40}", "env:prod"],
                        silenced={"*": None} if i % 200 == 7 else None)
                for i in range(n["datadog monitors"])]
    return DatadogWorld(api_key="bench-dd-api", app_key="bench-dd-app", monitors=monitors,
                        downtimes=base.downtimes, indexes=base.indexes)


# --- endpoint families -------------------------------------------------------------------------

_ID = re.compile(r"/(?=[^/]*\d)[^/]{8,}(?=/|$)")     # a path segment that looks like an id
_HTTP_FAMILIES = {
    "github": [(re.compile(r"^/repos/[^/]+/[^/]+/branches/[^/]+"), "/repos/{owner}/{repo}/branches/{branch}"),
               (re.compile(r"^/repos/[^/]+/[^/]+"), "/repos/{owner}/{repo}"),
               (re.compile(r"^/orgs/[^/]+"), "/orgs/{org}"),
               (re.compile(r"^/app/installations/[^/]+"), "/app/installations/{id}")],
    "okta": [(re.compile(r"^/api/v1/(users|policies|groups|apps)/[^/]+"), r"/api/v1/\1/{id}")],
}


def http_family(source: str, method: str, path: str) -> str:
    """``METHOD /path`` with the ids and names in the path replaced by ``{...}``."""
    for pattern, replacement in _HTTP_FAMILIES.get(source, []):
        path, hits = pattern.subn(replacement, path, count=1)
        if hits:
            break
    return f"{method} {_ID.sub('/{id}', path)}"


def tally(entries: list[tuple[str, int]]) -> dict[str, Any]:
    """(family, status) pairs -> calls, statuses, and the same per family (most calls first)."""
    families: dict[str, dict[str, Any]] = {}
    statuses: dict[str, int] = {}
    for name, status in entries:
        f = families.setdefault(name, {"calls": 0, "statuses": {}})
        f["calls"] += 1
        f["statuses"][str(status)] = f["statuses"].get(str(status), 0) + 1
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    ordered = dict(sorted(families.items(), key=lambda kv: (-kv[1]["calls"], kv[0])))
    return {"calls": len(entries), "statuses": statuses, "families": ordered}


def peak_rss_mb() -> float:
    """This process's peak RSS so far (Linux VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def serve(scale: int, latency: float, okta_rate_limit: int) -> None:
    """Fakes server mode: build and serve the worlds; print the URLs as one JSON line; when stdin
    closes, print the requests each fake answered (by endpoint family) as one JSON line and exit."""
    from attest.demo.http import LocalServer
    from collectors.datadog.demo import FakeDatadog
    from collectors.github.demo import FakeGithub
    from collectors.okta.demo import FakeOkta
    now = datetime.now(timezone.utc)
    n = sizes(scale)
    t0 = time.perf_counter()
    servers = {"github": LocalServer(FakeGithub(github_world(n, now)), latency=latency),
               "okta": LocalServer(FakeOkta(okta_world(n, now, okta_rate_limit)), latency=latency),
               "datadog": LocalServer(FakeDatadog(datadog_world(n, now)), latency=latency)}
    urls = {name: s.start() for name, s in servers.items()}
    print(json.dumps({"urls": urls, "sizes": n, "seed_s": round(time.perf_counter() - t0, 1)}),
          flush=True)
    sys.stdin.read()
    counts: dict[str, Any] = {}
    for name, s in servers.items():
        s.stop()
        entries = list(s.log.entries)
        counts[name] = tally([(http_family(name, e["method"], e["path"]), e["status"]) for e in entries])
        if name == "okta":       # the calls the fake's rate limit counts
            counts[name]["rate-limited calls"] = sum(e["path"].startswith("/api/v1/") for e in entries)
    counts["server peak RSS (MB)"] = round(peak_rss_mb())
    print(json.dumps(counts), flush=True)


# --- AWS: moto behind a latency and counting layer (AWS server process) -------------------------

_CREDENTIAL = re.compile(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/([a-z0-9-]+)/aws4_request")
_FORM_FIELD = re.compile(rb"(?:^|&)(Action|Version)=([^&]*)")
_SERVICE_NAMES = {"monitoring": "cloudwatch", "access-analyzer": "accessanalyzer"}


class AwsFront:
    """WSGI in front of moto: sleeps ``latency`` before every answer (once switched on) and keeps
    (signing service, method, path, query, X-Amz-Target, Action, Version, status) of each request."""

    def __init__(self, app: Callable) -> None:
        self.app = app
        self.latency = 0.0
        self.counting = False
        self.entries: list[tuple] = []
        self._lock = threading.Lock()

    def switch_on(self, latency: float) -> None:
        self.latency, self.counting = latency, True

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        if self.latency:
            time.sleep(self.latency)
        if not self.counting:
            return self.app(environ, start_response)
        signed = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
        form: dict[bytes, bytes] = {}
        if (environ.get("REQUEST_METHOD") == "POST"
                and "x-www-form-urlencoded" in environ.get("CONTENT_TYPE", "")):
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            environ["wsgi.input"] = io.BytesIO(body)       # moto reads it again
            form = dict(_FORM_FIELD.findall(body))
        query = environ.get("QUERY_STRING", "")
        if not form and "Action=" in query:
            form = {k.encode(): v[0].encode() for k, v in parse_qs(query).items()
                    if k in ("Action", "Version")}
        status: dict[str, str] = {}

        def sr(s: str, headers: list, exc_info: Any = None) -> Any:
            status["status"] = s
            return start_response(s, headers, exc_info)

        result = self.app(environ, sr)
        entry = (signed.group(2) if signed else "unsigned", environ.get("REQUEST_METHOD", ""),
                 environ.get("PATH_INFO", ""), query, environ.get("HTTP_X_AMZ_TARGET", ""),
                 form.get(b"Action", b"").decode(), form.get(b"Version", b"").decode(),
                 int(status.get("status", "0 ").split()[0]))
        with self._lock:
            self.entries.append(entry)
        return result

    def report(self) -> dict[str, Any]:
        with self._lock:
            entries = list(self.entries)
        rest = _RestOperations()
        return tally([(aws_family(rest, *e[:7]), e[7]) for e in entries])


def aws_family(rest: "_RestOperations", service: str, method: str, path: str, query: str,
               target: str, action: str, version: str) -> str:
    """``service:Action``: from X-Amz-Target (JSON APIs), the Action parameter (query APIs), or
    the botocore operation whose HTTP method and URI the request matches (REST APIs)."""
    if service == "elasticloadbalancing":
        service = "elbv2" if version == "2015-12-01" else "elb"
    elif service == "s3" and path.startswith("/v20180820/"):
        service = "s3control"
    service = _SERVICE_NAMES.get(service, service)
    if target:
        return f"{service}:{target.rsplit('.', 1)[-1]}"
    if action:
        return f"{service}:{action}"
    operation = rest.match(service, method, path, query)
    return f"{service}:{operation}" if operation else f"{service}:{method} {_ID.sub('/{id}', path)}"


# (HTTP method, path pattern, query keys it needs, (literal characters, not S3 Express), name)
_Op = tuple[str, "re.Pattern[str]", tuple[str, ...], tuple[int, bool], str]


class _RestOperations:
    """The HTTP method and URI template of every operation of a REST service (botocore's models)."""

    def __init__(self) -> None:
        self._ops: dict[str, list[_Op]] = {}

    def _load(self, service: str) -> list[_Op]:
        import botocore.session
        ops = []
        try:
            model = botocore.session.get_session().get_service_model(service)
        except Exception:  # noqa: BLE001 - an unknown service: no operation names
            return ops
        for name in model.operation_names:
            operation = model.operation_model(name)
            # ListBuckets and ListDirectoryBuckets (S3 Express, another host) share "GET /"
            plain = not any(p.name == "UseS3ExpressControlEndpoint" and name.startswith("List")
                            for p in operation.static_context_parameters)
            http = operation.http
            uri_path, _, uri_query = http.get("requestUri", "/").partition("?")
            pattern = "".join(r".+" if part.endswith("+}") else r"[^/]+" if part.startswith("{")
                              else re.escape(part) for part in re.split(r"(\{[^}]+\})", uri_path))
            needs = tuple(q for q in uri_query.split("&") if q)     # "acl", "x-id=ListBuckets"
            literal = len(re.sub(r"\{[^}]+\}", "", uri_path))
            ops.append((http.get("method", "GET"), re.compile(pattern.rstrip("/") + "/?"), needs,
                        (literal, plain), name))
        return ops

    def match(self, service: str, method: str, path: str, query: str) -> str | None:
        if service not in self._ops:
            self._ops[service] = self._load(service)
        pairs = [q for q in query.split("&") if q]
        given = {q.split("=", 1)[0] for q in pairs} | {q for q in pairs if "=" in q}
        found = [(len(needs), literal, name) for m, pattern, needs, literal, name in self._ops[service]
                 if m == method and pattern.fullmatch(path) and given.issuperset(needs)]
        return max(found)[2] if found else None


class AwsServer:
    """moto (+ the demo's gaps and EKS versions) behind :class:`AwsFront`, on a free port."""

    def __init__(self) -> None:
        from moto.moto_server.werkzeug_app import (DomainDispatcherApplication,
                                                   MotoRequestHandler, create_backend_app)
        from werkzeug.serving import make_server

        from attest.demo.http import POLL_S
        from collectors.aws.demo import GAPS, cluster_versions_app
        moto = DomainDispatcherApplication(create_backend_app)
        self.front = AwsFront(cluster_versions_app(GAPS.wrap(moto)))
        self._server = make_server("127.0.0.1", 0, self.front, threaded=True,
                                   request_handler=MotoRequestHandler)
        self._server.block_on_close = False
        self._thread = threading.Thread(target=self._server.serve_forever, args=(POLL_S,), daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_port}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def enabled_regions(url: str) -> list[str]:
    """The regions attest reads with ``regions: all`` that belong to the aws partition (the others
    are recorded "service not offered" without a call): us-east-1 first, then by name."""
    import boto3

    from collectors.aws.demo import client
    listed = client(url, "ec2").describe_regions()["Regions"]
    aws_partition = set(boto3.Session().get_available_regions("ec2"))
    names = sorted(r["RegionName"] for r in listed
                   if r.get("OptInStatus") != "not-opted-in" and r["RegionName"] in aws_partition)
    return sorted(names, key=lambda r: r != "us-east-1")


def seed_organization(url: str, now: datetime, scale: int, members: int, regions: list[str]
                      ) -> dict[str, Any]:
    """The management account in ``regions`` (bench_aws.seed_large at ``scale``), the organization,
    and ``members`` member accounts with the role and a small estate each."""
    from collectors.aws.demo import ACCOUNT, client
    trust = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "sts:AssumeRole",
        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}}]})
    management = bench_aws.seed_large(url, now, regions, scale=scale)
    client(url, "iam").create_role(RoleName=ROLE, AssumeRolePolicyDocument=trust)
    org = client(url, "organizations")
    org.create_organization(FeatureSet="ALL")
    sts = client(url, "sts")
    member_counts: dict[str, int] = {}
    for k in range(members):
        account = org.create_account(AccountName=f"member-{k:02d}", Email=f"aws+m{k:02d}@bigco.example"
                                     )["CreateAccountStatus"]["AccountId"]
        creds = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/OrganizationAccountAccessRole",
                                RoleSessionName="bench-seed")["Credentials"]
        keys = {"aws_access_key_id": creds["AccessKeyId"], "aws_secret_access_key": creds["SecretAccessKey"],
                "aws_session_token": creds["SessionToken"]}
        client(url, "iam", **keys).create_role(RoleName=ROLE, AssumeRolePolicyDocument=trust)
        seeded = bench_aws.seed_large(url, now, regions[:MEMBER_REGIONS], scale=MEMBER_SCALE,
                                      account=account, prefix=f"m{k:02d}-{account}", id_seed=0, **keys)
        for kind, c in seeded.items():
            member_counts[kind] = member_counts.get(kind, 0) + c
    return {"management account": management, "member accounts": member_counts}


def serve_aws(scale: int, latency: float, members: int, region_count: int | None) -> None:
    """AWS server mode: moto seeded with the organization; print the URL, the regions and the
    counts as one JSON line; when stdin closes, print the requests answered as one JSON line."""
    from collectors.aws import demo
    os.environ.update(demo.ENV)
    import logging
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = AwsServer()
    t0 = time.perf_counter()
    regions = enabled_regions(server.url)
    every = len(regions)
    if region_count:
        regions = regions[:region_count]
    counts = seed_organization(server.url, datetime.now(timezone.utc), scale, members, regions)
    server.front.switch_on(latency)
    print(json.dumps({"url": server.url, "regions": regions, "all regions": region_count is None
                      or region_count >= every, "accounts": 1 + members, "resources": counts,
                      "seed_s": round(time.perf_counter() - t0, 1)}), flush=True)
    sys.stdin.read()
    server.stop()
    report = server.front.report()
    report["server peak RSS (MB)"] = round(peak_rss_mb())
    print(json.dumps(report), flush=True)


# --- the measurement ---------------------------------------------------------------------------

def timed_scan(config: Path, env: dict[str, str]) -> dict[str, float]:
    """One ``attest scan`` under /usr/bin/time -v (see bench_aws.timed_scan), as named figures."""
    wall, rss_mb, cpu, code = bench_aws.timed_scan(config, env)
    return {"wall (s)": wall, "peak RSS (MB)": rss_mb, "CPU user+sys (s)": cpu, "exit code": code}


def scan_summary(out_dir: Path) -> dict:
    bundle = sorted(p for p in out_dir.iterdir() if p.is_dir() and not p.name.startswith("."))[-1]
    results = json.loads((bundle / "results.json").read_text())
    log_text = (bundle / "scan.log").read_text()
    per_source = {m.group(1): {"records": int(m.group(2)), "unknown": int(m.group(3)),
                               "wall (s)": float(m.group(4))}
                  for m in re.finditer(r"(\w+): (\d+) evidence records \((\d+) could not be read\) "
                                       r"in ([\d.]+) s", log_text)}
    waits = dict(re.findall(r"(\w+): waited (\d+)s in total", log_text))
    statuses: dict[str, int] = {}
    for control in results["controls"]:
        statuses[control["status"]] = statuses.get(control["status"], 0) + 1
    evidence = list((bundle / "evidence").rglob("*.json"))
    return {"per_source": per_source, "waits": waits, "statuses": statuses,
            "controls": len(results["controls"]), "incomplete": results["scan"].get("incomplete", []),
            "evidence files": len(evidence),
            "evidence MB": sum(p.stat().st_size for p in evidence) / 1e6}


def _server(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, __file__, *args], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, cwd=ROOT)


def _started(server: subprocess.Popen, what: str) -> dict[str, Any]:
    """A server's first line: what it serves (its traceback went to stderr if it failed)."""
    line = server.stdout.readline()
    if not line:
        raise SystemExit(f"the server of {what} failed before serving (see its error above)")
    return json.loads(line)


def _finish(server: subprocess.Popen | None) -> dict[str, Any]:
    """Close a server's stdin and read what it answered (its last JSON line)."""
    if server is None:
        return {}
    server.stdin.close()
    line = server.stdout.readline()
    server.wait(timeout=600)
    return json.loads(line or "{}")


def aws_section(url: str, regions: list[str], every: bool) -> str:
    listed = "all" if every else "[" + ", ".join(regions) + "]"
    return (f"aws:\n  endpoint_url: {url}\n  regions: {listed}\n"
            f"  organization:\n    role_name: {ROLE}\n")


def run_one(scale: int, args: argparse.Namespace) -> dict:
    latency_ms, share = args.latency_ms, args.okta_share
    fakes = _server(["--serve", str(scale), "--latency-ms", str(latency_ms),
                     "--okta-rate-limit", str(args.okta_rate_limit)])
    moto = None if args.no_aws else _server(
        ["--serve-aws", str(scale), "--latency-ms", str(latency_ms),
         "--aws-members", str(members(scale, args.aws_members))]
        + (["--aws-regions", str(args.aws_regions)] if args.aws_regions else []))
    aws_started: dict[str, Any] = {}
    try:
        started = _started(fakes, "the fakes")
        if moto is not None:
            aws_started = _started(moto, "moto")
        with tempfile.TemporaryDirectory() as tmp:
            out_dir = Path(tmp) / "evidence"
            config = Path(tmp) / "config.yaml"
            okta_extra = f"  rate_limit_share: {share}\n" if share is not None else ""
            config.write_text(
                f"output_dir: {out_dir}\n"
                + (aws_section(aws_started["url"], aws_started["regions"], aws_started["all regions"])
                   if aws_started else "")
                + f"github:\n  org: bigco\n  base_url: {started['urls']['github']}\n"
                f"  token: ${{ATTEST_BENCH_GH_TOKEN}}\n"
                f"okta:\n  org_url: {started['urls']['okta']}\n  token: ${{ATTEST_BENCH_OKTA_TOKEN}}\n"
                f"{okta_extra}"
                f"datadog:\n  host: {started['urls']['datadog']}\n  api_key: ${{ATTEST_BENCH_DD_API}}\n"
                f"  app_key: ${{ATTEST_BENCH_DD_APP}}\n", encoding="utf-8")
            env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ATTEST_"))}
            env.update(ATTEST_BENCH_GH_TOKEN=GH_TOKEN, ATTEST_BENCH_OKTA_TOKEN="bench-okta-token",
                       ATTEST_BENCH_DD_API="bench-dd-api", ATTEST_BENCH_DD_APP="bench-dd-app")
            if aws_started:
                from collectors.aws.demo import ENV
                env.update(ENV, AWS_CONFIG_FILE=str(Path(tmp) / "none"),
                           AWS_SHARED_CREDENTIALS_FILE=str(Path(tmp) / "none"))
            load_before = os.getloadavg()[0]
            servers = {"fakes": fakes, **({"moto": moto} if moto is not None else {})}
            cpu_before = {k: bench_aws._cpu_seconds(v.pid) for k, v in servers.items()}
            figures = timed_scan(config, env)
            server_cpu = {k: round(bench_aws._cpu_seconds(v.pid) - cpu_before[k], 1)
                          for k, v in servers.items()}
            figures["load before / after"] = f"{load_before:.1f} / {os.getloadavg()[0]:.1f}"
            summary = scan_summary(out_dir)
    finally:
        counts = _finish(fakes)
        aws_counts = _finish(moto)
    server_rss = {"fakes": counts.pop("server peak RSS (MB)", None)}
    if aws_counts:
        server_rss["moto"] = aws_counts.pop("server peak RSS (MB)", None)
        counts["aws"] = aws_counts
    run_sizes = dict(started["sizes"])
    if aws_started:
        run_sizes["aws resources"] = sum(sum(c.values()) for c in aws_started["resources"].values())
        run_sizes["aws accounts"] = aws_started["accounts"]
        run_sizes["aws account-regions"] = aws_started["accounts"] * len(aws_started["regions"])
    return {"scale": scale, "latency (ms)": latency_ms, "okta rate limit": args.okta_rate_limit,
            "okta share": share if share is not None else okta_default_share(),
            "sizes": run_sizes, "seed_s": started["seed_s"], "figures": figures, "summary": summary,
            "calls": counts, "servers peak RSS (MB)": server_rss,
            "servers CPU during the scan (s)": server_cpu,
            "aws": {k: v for k, v in aws_started.items() if k != "url"} if aws_started else None,
            "command": " ".join(sys.argv[1:])}


# --- bounds and verdicts -----------------------------------------------------------------------

def okta_default_share() -> float:
    from collectors.okta.source import Config
    return float(Config.model_fields["rate_limit_share"].default)


def rate_limit(run: dict, source: str) -> tuple[float, float, float] | None:
    """(calls allowed a window, window seconds, the share attest uses), or None (AWS)."""
    if source == "github":
        return 5000, 3600, 1.0          # attest has no share setting for GitHub
    if source == "okta":
        return run.get("okta rate limit", OKTA_RATE_LIMIT), 60, run.get("okta share") or okta_default_share()
    if source == "datadog":
        return 1000, 10, 1.0            # nor for Datadog
    return None


def estate_units(run: dict, source: str) -> tuple[int | None, str]:
    s = run["sizes"]
    return {"aws": (s.get("aws account-regions"), "account-regions"),
            "github": (s.get("github repositories"), "repositories"),
            "okta": (s.get("okta users"), "users"),
            "datadog": (s.get("datadog monitors"), "monitors")}[source]


def assess(run: dict) -> dict[str, dict[str, Any]]:
    """Per source: calls, wall, the two bounds, the target and whether it is met."""
    out = {}
    latency = run.get("latency (ms)", 50.0) / 1000
    for source in SOURCES:
        c = run["calls"].get(source)
        if not c:
            continue
        calls = c["calls"]
        wall = run["summary"]["per_source"].get(source, {}).get("wall (s)")
        bound_latency = calls * latency / CONCURRENCY
        limit = rate_limit(run, source)
        bound_rate, rate_text = 0.0, "none (no fixed window)"
        if limit:
            per_window = max(1, int(limit[0] * limit[2]))
            rated = c.get("rate-limited calls", calls)
            windows = max(0, math.ceil(rated / per_window) - 1)
            bound_rate = windows * limit[1]
            rate_text = f"{windows} x {limit[1]:g} s ({limit[0]:g}/{limit[1]:g} s at share {limit[2]:g})"
        target = SLACK * max(bound_latency, bound_rate) + STARTUP_S
        out[source] = {"calls": calls, "wall (s)": wall, "bound latency (s)": bound_latency,
                       "bound rate (s)": bound_rate, "rate windows": rate_text, "target (s)": target,
                       "ok": wall is not None and wall <= target,
                       "vs bound": (wall / max(bound_latency, bound_rate))   # only for a bound of 1 s+
                       if wall is not None and max(bound_latency, bound_rate) >= 1 else None,
                       "s per call": wall / calls if wall is not None and calls else None}
    return out


def rss_verdict(run: dict) -> bool | None:
    """None: no RSS target at this scale."""
    return run["figures"]["peak RSS (MB)"] <= TARGET_RSS_MB if run["scale"] == 1 else None


def linearity(runs: list[dict]) -> dict[str, dict[str, Any]]:
    """Per source, calls per unit of estate at each scale run (the last run of each scale); ok
    when the largest estate's is no more than SLACK x the smallest's. Only with two scales or more."""
    by_scale = {r["scale"]: r for r in runs}
    if len(by_scale) < 2:
        return {}
    ordered = [by_scale[s] for s in sorted(by_scale, reverse=True)]    # smallest estate first
    out = {}
    for source in SOURCES:
        points = []
        for r in ordered:
            units, _ = estate_units(r, source)
            c = r["calls"].get(source)
            wall = r["summary"]["per_source"].get(source, {}).get("wall (s)")
            if c and units:
                points.append((r["scale"], c["calls"] / units, wall / c["calls"] if wall else None))
        if len(points) >= 2:
            out[source] = {"points": points, "ok": points[-1][1] <= SLACK * points[0][1]}
    return out


def verdicts(runs: list[dict]) -> list[str]:
    """One line per target, ``ok`` or ``MISS``."""
    lines = []
    for r in runs:
        for source, a in assess(r).items():
            wall = f"{a['wall (s)']:.1f} s" if a["wall (s)"] is not None else "no time in scan.log"
            lines.append(f"{'ok  ' if a['ok'] else 'MISS'} 1/{r['scale']} {source:8} {wall:>10} <= "
                         f"{a['target (s)']:.1f} s (1.3 x max(latency {a['bound latency (s)']:.1f} s, "
                         f"rate {a['bound rate (s)']:.0f} s) + 5 s); {a['calls']} calls")
        rss = rss_verdict(r)
        lines.append(f"{'    ' if rss is None else 'ok  ' if rss else 'MISS'} 1/{r['scale']} peak RSS "
                     f"{r['figures']['peak RSS (MB)']:.0f} MB"
                     + (" (target < 300 MB at 1/1 only)" if rss is None else " <= 300 MB"))
    for source, lin in linearity(runs).items():
        lines.append(f"{'ok  ' if lin['ok'] else 'MISS'} linear   {source:8} calls per unit: "
                     + ", ".join(f"1/{s} {u:.3g}" for s, u, _ in lin["points"]))
    return lines


def missed(runs: list[dict]) -> bool:
    return (any(not a["ok"] for r in runs for a in assess(r).values())
            or any(rss_verdict(r) is False for r in runs)
            or any(not lin["ok"] for lin in linearity(runs).values()))


# --- the report --------------------------------------------------------------------------------

def machine() -> dict[str, str]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem = next((int(line.split()[1]) // 1024 for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal")), 0)
    names = ("attest", "boto3", "botocore", "moto", "okta", "datadog-api-client", "PyGithub",
             "requests", "werkzeug", "pydantic")
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return {"cpu": f"{cpu}, nproc {os.cpu_count()}", "memory": f"{mem} MiB",
            "os": platform.platform(), "python": platform.python_version(), **versions}


def _f(value: float | None, fmt: str = ".1f") -> str:
    return "?" if value is None else format(value, fmt)


def _estate(run: dict, source: str) -> str:
    units, what = estate_units(run, source)
    text = f"{units:,} {what}" if units else "?"
    if source == "aws" and run.get("aws"):
        a = run["aws"]
        regions = f"all {len(a['regions'])}" if a.get("all regions") else f"first {len(a['regions'])}"
        text += (f" ({a['accounts']} accounts x {regions} regions), "
                 f"{run['sizes'].get('aws resources', '?'):,} seeded resources")
    return text


def write_report(path: Path, runs: list[dict]) -> None:
    from collectors.aws.source import Config as AwsConfig
    aws_defaults = AwsConfig()
    latency_ms = runs[0].get("latency (ms)", 50.0) if runs else 50.0
    lines = [
        "# Scale benchmark: a large company on moto and the local fakes",
        "",
        f"Written by `bench/bench_scale.py` on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC "
        "(its docstring says exactly what it does).",
        "",
        "Commands: " + "; ".join(sorted({f"`.venv/bin/python bench/bench_scale.py {r['command']}`"
                                          for r in runs})),
        "",
        f"`attest scan --config CONFIG` (the whole catalog of AWS, GitHub, Okta and Datadog) as a "
        f"subprocess under `/usr/bin/time -v`, against moto and the fakes in two other processes, "
        f"every answer delayed by {latency_ms:g} ms. Rate limits as the fakes announce them: GitHub "
        f"5000 calls/hour, Okta {OKTA_RATE_LIMIT} calls/minute unless the table says otherwise, "
        "Datadog 1000 calls/10 s; moto has none.",
        "",
        "Full size (`--scale 1`): " + ", ".join(f"{k} {v:,}" for k, v in FULL.items())
        + f"; AWS: the management account of an organization seeded in every region attest reads "
        f"(what `bench/bench_aws.py` seeds per region, about 75 resources, plus 116 account-wide) "
        f"and {AWS_MEMBERS} member accounts with one resource of each kind in their first "
        f"{MEMBER_REGIONS} regions. `--scale N` divides each count by N (AWS: the management "
        f"account's counts and the member accounts, at least one; the regions stay). Every account "
        f"is read in every region configured; attest's defaults: {aws_defaults.max_accounts} "
        f"accounts at once, {aws_defaults.max_workers} reads at once in each.",
        "",
        f"Targets: each source's wall time (from scan.log) <= {SLACK:g} x its larger lower bound + "
        f"{STARTUP_S:g} s; bounds: calls x latency / {CONCURRENCY}, and the whole fixed windows the "
        f"rate limit forces at the share attest uses. Peak RSS < {TARGET_RSS_MB:g} MB at full size. "
        "Linear: calls per unit of estate at the largest estate <= 1.3 x at the smallest.",
        "",
        "| scale | wall (s) | peak RSS (MB) | CPU (s) | calls AWS / GitHub / Okta / Datadog "
        "| AWS accounts x regions | Okta limit (calls/min) | targets missed |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        f, c = r["figures"], r["calls"]
        a = assess(r)
        miss = [s for s, v in a.items() if not v["ok"]] + (["RSS"] if rss_verdict(r) is False else [])
        aws = r.get("aws") or {}
        lines.append(f"| 1/{r['scale']} | {f['wall (s)']:.1f} | {f['peak RSS (MB)']:.0f} | "
                     f"{f['CPU user+sys (s)']:.1f} | "
                     + " / ".join(str(c.get(k, {}).get("calls", "-")) for k in SOURCES)
                     + f" | {aws.get('accounts', '-')} x {len(aws.get('regions', [])) or '-'} | "
                     f"{r['okta rate limit']} | {', '.join(miss) or 'none'} |")
    lines += ["", "Verdicts:", "", "```", *verdicts(runs), "```", ""]
    for r in runs:
        lines += [f"## 1/{r['scale']}", "",
                  "| source | estate | calls | wall (s) | latency bound (s) | rate bound (s) "
                  "| rate windows waited | target (s) | | wall / larger bound | s per call |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for source, a in assess(r).items():
            lines.append(f"| {source} | {_estate(r, source)} | {a['calls']:,} | {_f(a['wall (s)'])} | "
                         f"{a['bound latency (s)']:.1f} | {a['bound rate (s)']:.0f} | {a['rate windows']} | "
                         f"{a['target (s)']:.1f} | {'ok' if a['ok'] else 'MISS'} | "
                         f"{_f(a['vs bound'], '.2f')} | "
                         f"{_f(a['s per call'], '.4f')} |")
        sm, f = r["summary"], r["figures"]
        rss = rss_verdict(r)
        aws = r.get("aws") or {}
        lines += ["",
                  f"- peak RSS of the scan: {f['peak RSS (MB)']:.0f} MB"
                  + (" (no target below full size)" if rss is None
                     else f" ({'ok' if rss else 'MISS'}: < 300 MB)")
                  + f"; wall {f['wall (s)']:.1f} s from interpreter start; CPU {f['CPU user+sys (s)']:.1f} s",
                  f"- evidence records (could not be read) per source: "
                  + ", ".join(f"{s} {p['records']} ({p['unknown']})" for s, p in sm["per_source"].items()),
                  f"- waited on rate limits (s, summed over concurrent reads): "
                  + (", ".join(f"{s} {w}" for s, w in sm["waits"].items()) or "none"),
                  f"- controls: {sm['controls']} {sm['statuses']}; exit code {f['exit code']}",
                  f"- evidence: {sm['evidence files']} files, {sm['evidence MB']:.1f} MB; not read: "
                  f"{', '.join(sm['incomplete']) or 'none'}",
                  f"- load average (1 min) before / after: {f['load before / after']}",
                  f"- the servers (not the scan): peak RSS (MB) {r.get('servers peak RSS (MB)', '?')}, "
                  f"CPU during the scan (s) {r.get('servers CPU during the scan (s)', '?')}",
                  f"- building the fakes' worlds took {r['seed_s']} s"
                  + (f", seeding moto {aws.get('seed_s')} s" if aws else "") + " (not measured)"]
        if aws:
            lines.append(f"- AWS regions read ({len(aws['regions'])}"
                         + (", every region attest's discovery finds in the aws partition"
                            if aws.get("all regions") else ", the first of that list")
                         + f"): {', '.join(aws['regions'])}")
            for who, counts in aws["resources"].items():
                lines.append(f"- AWS {who}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
        lines += ["", "Calls per endpoint family:", "",
                  "| source | endpoint family | calls | HTTP statuses |", "|---|---|---|---|"]
        for source in SOURCES:
            c = r["calls"].get(source)
            if not c:
                continue
            lines.append(f"| **{source}** | (all) | {c['calls']:,} | {c['statuses']} |")
            for name, fam in (c.get("families") or {}).items():
                lines.append(f"| {source} | `{name}` | {fam['calls']:,} | {fam['statuses']} |")
        lines.append("")
    lin = linearity(runs)
    if lin:
        scales = sorted({r["scale"] for r in runs}, reverse=True)
        lines += ["## Linearity", "",
                  "Calls per unit of estate (AWS: per account-region, an account read in a region: "
                  "most of its calls are one per account, region and evidence kind), and seconds per "
                  "call (they jump where rate-limit windows start).", "",
                  "| source | " + " | ".join(f"1/{s} calls/unit | 1/{s} s/call" for s in scales) + " | |",
                  "|---|" + "---|---|" * len(scales) + "---|"]
        for source, v in lin.items():
            cells = {s: (u, t) for s, u, t in v["points"]}
            lines.append(f"| {source} | " + " | ".join(
                f"{_f(cells[s][0], '.3g')} | {_f(cells[s][1], '.4f')}" if s in cells else "- | -"
                for s in scales) + f" | {'ok' if v['ok'] else 'MISS'} |")
        lines.append("")
    lines += ["## Machine and versions", "", *[f"- {k}: {v}" for k, v in machine().items()], ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=int, action="append",
                    help="divide the estate by N (repeatable; default: 100 then 10)")
    ap.add_argument("--latency-ms", type=float, default=50.0)
    ap.add_argument("--okta-rate-limit", type=int, default=OKTA_RATE_LIMIT,
                    help="the Okta fake's X-Rate-Limit-Limit (calls a minute; default: Okta's 600). "
                         "A larger value models an org with a raised limit (DynamicScale, or a "
                         "rate-limit increase Okta granted)")
    ap.add_argument("--okta-share", type=float, default=None,
                    help="okta.rate_limit_share for the scan (default: the config default)")
    ap.add_argument("--aws-members", type=int, default=None,
                    help=f"member accounts of the AWS Organization (default: {AWS_MEMBERS} / scale, "
                         "at least 1)")
    ap.add_argument("--aws-regions", type=int, default=None,
                    help="read and seed only the first N regions (us-east-1 first; default: "
                         "regions: all, attest's discovery)")
    ap.add_argument("--no-aws", action="store_true", help="leave AWS out (GitHub, Okta, Datadog only)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "scale.md")
    ap.add_argument("--json", type=Path, default=None, help="also write the raw figures here")
    ap.add_argument("--merge", type=Path, nargs="*", default=None,
                    help="write --out from the --json files of earlier runs (no scan)")
    ap.add_argument("--serve", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--serve-aws", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve is not None:
        serve(args.serve, args.latency_ms / 1000, args.okta_rate_limit)
        return 0
    if args.serve_aws is not None:
        serve_aws(args.serve_aws, args.latency_ms / 1000, members(args.serve_aws, args.aws_members),
                  args.aws_regions)
        return 0
    runs = []
    if args.merge:
        runs = [r for p in args.merge for r in json.loads(p.read_text())]
    else:
        for scale in args.scale or [100, 10]:
            t0 = time.perf_counter()
            r = run_one(scale, args)
            r["bench wall (s)"] = round(time.perf_counter() - t0, 1)
            runs.append(r)
            f = r["figures"]
            print(f"1/{scale}: scan wall {f['wall (s)']:.1f} s, peak RSS {f['peak RSS (MB)']:.0f} MB, "
                  f"whole run (seeding included) {r['bench wall (s)']} s", flush=True)
            print(f"{'source':8} {'calls':>7} {'wall s':>8} {'lat. bound':>10} {'rate bound':>10} "
                  f"{'target':>8}", flush=True)
            for source, a in assess(r).items():
                print(f"{source:8} {a['calls']:>7} {_f(a['wall (s)']):>8} {a['bound latency (s)']:>10.1f} "
                      f"{a['bound rate (s)']:>10.0f} {a['target (s)']:>8.1f} {'ok' if a['ok'] else 'MISS'}",
                      flush=True)
            write_report(args.out, runs)
            if args.json:
                args.json.write_text(json.dumps(runs, indent=1))
    write_report(args.out, runs)
    for line in verdicts(runs):
        print(line)
    print(f"results: {args.out}")
    return 1 if missed(runs) else 0


if __name__ == "__main__":
    sys.exit(main())
