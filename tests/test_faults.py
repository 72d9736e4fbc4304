"""Faults cost only what they touch (issue 9, item 1): property tests over random fault schedules.

The real collectors read the demo estates over real HTTP: the GitHub, Okta, Datadog and
PagerDuty fakes and the Kubernetes API server fake (each demo's ``LocalServer``), and for AWS the
demo's moto server (moto, with the demo's answers for what moto lacks), in three regions. A WSGI
middleware (:class:`Faults`) in front of each app answers some requests with a fault instead of
passing them on: 500, 503 or 429 for the fakes; 500 or 503 for AWS, in the error shape of the
request's protocol (botocore retries a bare 429 only with a throttling error code, and slows a
throttled client down for seconds: see :func:`aws_fault`). Whether a sending fails is a pure
function of a seed, the request (method, path, query, host, the region and service it is signed
for, body) and how often that request was sent before, so a schedule does not depend on the
order concurrent reads go in (only two reads sending the very same request share its count);
hypothesis draws the seeds and the kinds of fault. Two kinds:

* :class:`Schedule`: a share of the distinct requests is chosen; each chosen one fails 1 to 3
  times in a row, then succeeds (transient), or every time (permanent);
* :class:`EachResponse`: every response, retries included, fails on its own with a probability.

Each property is judged by the rules (the engine) against the fault-free run of the same estate:

(a) transient faults (``Schedule``, 10-60% of the requests, each failing fewer times than the
    smallest retry budget: 10 tries for the fakes, 4 at AWS's first contact, then 11): every
    record in its fault-free state, exactly the same results and findings;
(b) 30% of the responses failing (``EachResponse(rate=0.3)``), each source retrying as it does in
    production (its own attempts; only the waits are shrunk): at least 90% of the fault-free
    findings (control id + resource + status) judged identically, and no false pass (c); also,
    every control whose records were read whole judged as without faults, and, when the retries
    got every request through, everything. A request is lost only when every try fails: 0.3^10
    for the fakes (10 tries, ``max_retries`` 9), 0.3^11 on AWS. With 4 tries (0.8% a request)
    it did not hold: one lost listing is a whole record, and on these small estates a listing
    carries more than 10% of the findings; those seeds are kept as examples (LOST_LISTINGS);
(b') stricter, 30% of the distinct requests failing for good (``Schedule(rate=0.3,
    permanent=True)``): the 90% target cannot hold there, as a failed listing is a whole record
    and 30% of the listings fail; what is asserted is that every control whose records were all
    read whole (``ok``, no unknown resources) keeps its fault-free verdict and findings;
(c) faults for good, at any rate: no control is ``pass`` unless every record it reads is ``ok``
    with no unknown resources, and its findings are the fault-free run's: never a false pass.

And one focused test: a fault STS answers on every quick try of AWS's first contact gets the full
retry budget, instead of costing the whole account.

Waits are shrunk through attest's own retry policy (``RetryPolicy.backoff``) for the fakes. For
AWS, botocore waits 50 ms doubling on a 5xx; with faults for good the collector's botocore retry
config (``RETRIES``, ``FIRST_CONTACT``) is set to 2 tries, as 11 would wait about 20 s per lost
request. Nothing of an SDK is mocked.
"""
from __future__ import annotations

import hashlib
import importlib
import io
import os
import re
import threading
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterator

import pytest
from hypothesis import HealthCheck, assume, example, given, note, settings, strategies as st
from hypothesis.errors import InvalidArgument

from attest.demo.http import LocalServer
from attest.engine import evaluate
from attest.model import ControlResult, Evidence, EvidenceState, Status
from collectors.base import CollectContext
from controls import load_catalog
from tests.conftest import NOW

FAKES = ("github", "okta", "datadog", "pagerduty", "kubernetes")   # each behind its demo fake
# The smallest retry budget, in tries per call (the first included): botocore's 4 at AWS's first
# contact (then 11; the SaaS sources make 10). A transient fault fails fewer times.
ATTEMPTS = 4
AWS_REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2")   # the demo's (home, EU, APAC)
FAST = settings(max_examples=6, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
AWS_FAST = settings(FAST, max_examples=4)   # an AWS run takes seconds, a fake's a fraction of one


# --- fault injection ----------------------------------------------------------------------

@dataclass(frozen=True)
class Schedule:
    """Which requests fail and how: ``rate`` of the distinct requests, chosen by ``seed``; each
    chosen one fails ``times`` (1..``max_times``) in a row, or always when ``permanent``."""
    seed: int
    rate: float
    statuses: tuple[int, ...] = (500, 503, 429)
    permanent: bool = False
    max_times: int = ATTEMPTS - 1
    only: str = ""                # a regex the request's ident (see Faults) must match

    def __repr__(self) -> str:
        return (f"Schedule(seed={self.seed}, rate={self.rate}, statuses={self.statuses}, "
                f"permanent={self.permanent}, only={self.only!r})")

    def _digest(self, ident: str) -> bytes:
        return hashlib.sha256(f"{self.seed}|{ident}".encode()).digest()

    def fault(self, ident: str, attempt: int) -> int | None:
        """The status to answer the ``attempt``-th (0-based) sending of ``ident`` with, or None."""
        if self.only and not re.search(self.only, ident):
            return None
        d = self._digest(ident)
        if int.from_bytes(d[:8], "big") / 2 ** 64 >= self.rate:
            return None
        times = 1 + d[9] % self.max_times
        if not self.permanent and attempt >= times:
            return None
        return self.statuses[d[8] % len(self.statuses)]


@dataclass(frozen=True)
class EachResponse:
    """Every response fails on its own: the ``attempt``-th sending of a request (retries
    included) fails with probability ``rate``, a pure function of the seed, the request and the
    attempt number; the client retries as it normally does."""
    seed: int
    rate: float
    statuses: tuple[int, ...] = (500, 503, 429)

    def fault(self, ident: str, attempt: int) -> int | None:
        d = hashlib.sha256(f"{self.seed}|{ident}|{attempt}".encode()).digest()
        if int.from_bytes(d[:8], "big") / 2 ** 64 >= self.rate:
            return None
        return self.statuses[d[8] % len(self.statuses)]


@dataclass(frozen=True)
class Tally:
    injected: int      # faults answered
    sent: int          # requests received, retries included
    chosen: int        # distinct requests that got at least one fault
    gave_up: int       # distinct requests whose last sending got one: the retries did not help

    def __str__(self) -> str:
        return (f"{self.injected} faults answered to {self.sent} requests ({self.chosen} distinct "
                f"requests got one, {self.gave_up} for good)")


@dataclass(frozen=True)
class FirstSendings:
    """The first ``times`` sendings of every request matching ``only`` fail with ``status``."""
    times: int
    only: str
    status: int = 500

    def fault(self, ident: str, attempt: int) -> int | None:
        return self.status if attempt < self.times and re.search(self.only, ident) else None


class Faults:
    """WSGI middleware: answers the requests ``schedule`` chooses with a fault (shaped by
    ``respond``); the rest go to ``app``. ``injected`` counts the faults answered, ``failed`` the
    requests that got one, ``gave_up`` those whose latest sending got one (the client stopped
    trying); ``last`` is the tally of the previous schedule (see :meth:`use`)."""

    def __init__(self, app: Callable, respond: Callable[[int, dict], tuple[str, list, bytes]]
                 | None = None) -> None:
        self.app = app
        self.respond = respond or saas_fault
        self.schedule: Schedule | EachResponse | FirstSendings | None = None
        self._lock = threading.Lock()
        self._sent: Counter[str] = Counter()
        self.injected = 0
        self.failed: set[str] = set()
        self.gave_up: set[str] = set()
        self.last = Tally(0, 0, 0, 0)

    def use(self, schedule: Schedule | EachResponse | FirstSendings | None) -> Tally:
        """Start ``schedule`` (None: no faults); returns, and keeps in ``last``, the tally of
        the schedule it ends."""
        with self._lock:
            self.last = Tally(self.injected, sum(self._sent.values()), len(self.failed),
                              len(self.gave_up))
            self.schedule, self._sent, self.injected = schedule, Counter(), 0
            self.failed, self.gave_up = set(), set()
            return self.last

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        schedule = self.schedule
        if schedule is None or environ.get("PATH_INFO", "").startswith("/moto-api"):
            return self.app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        # AWS names its operation in the body (query protocol) or X-Amz-Target (JSON protocol)
        ident = "|".join((f"{environ.get('REQUEST_METHOD', '')} {environ.get('PATH_INFO', '')} "
                          f"{environ.get('QUERY_STRING', '')}",
                          environ.get("HTTP_HOST", "").split(":")[0],
                          environ.get("HTTP_X_AMZ_TARGET", ""),
                          _signed_region(environ.get("HTTP_AUTHORIZATION", "")),
                          hashlib.sha256(body).hexdigest()))
        with self._lock:
            attempt = self._sent[ident]
            self._sent[ident] += 1
            status = schedule.fault(ident, attempt)
            if status is not None:
                self.injected += 1
                self.failed.add(ident)
                self.gave_up.add(ident)
            else:
                self.gave_up.discard(ident)
        if status is None:
            return self.app(environ, start_response)
        line, headers, payload = self.respond(status, environ)
        start_response(line, headers + [("Content-Length", str(len(payload)))])
        return [payload]


REASONS = {429: "Too Many Requests", 500: "Internal Server Error",
           502: "Bad Gateway", 503: "Service Unavailable"}


def saas_fault(status: int, environ: dict) -> tuple[str, list, bytes]:
    return (f"{status} {REASONS[status]}", [("Content-Type", "application/json")],
            b'{"message": "injected fault"}')


def aws_fault(status: int, environ: dict) -> tuple[str, list, bytes]:
    """A 500 InternalError or 503 ServiceUnavailable in the error shape of the request's AWS
    protocol (EC2, query, REST-XML, JSON). botocore retries both. (Throttles would need a
    throttling code, e.g. a 400 ThrottlingException; botocore's adaptive mode then slows the
    client down for seconds: 17 requests throttled once each made a demo scan take 21 s instead
    of 3. They stay out.)"""
    service = _signed_region(environ.get("HTTP_AUTHORIZATION", "")).partition("/")[2]
    json_rpc = bool(environ.get("HTTP_X_AMZ_TARGET"))
    query = environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded")
    code = {500: "InternalError" if service in ("ec2", "s3") else "InternalFailure",
            503: "ServiceUnavailable"}[status]
    line, message = f"{status} {REASONS[status]}", "injected fault"
    if service == "ec2":
        return line, [("Content-Type", "text/xml")], (
            f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error>"
            f"</Errors><RequestID>attest-fault</RequestID></Response>").encode()
    if query:
        return line, [("Content-Type", "text/xml")], (
            f"<ErrorResponse><Error><Type>Receiver</Type><Code>{code}</Code><Message>{message}"
            f"</Message></Error><RequestId>attest-fault</RequestId></ErrorResponse>").encode()
    if service == "s3":
        return line, [("Content-Type", "application/xml")], (
            f"<Error><Code>{code}</Code><Message>{message}</Message></Error>").encode()
    return line, [("Content-Type", "application/x-amz-json-1.1" if json_rpc else "application/json"),
                  ("x-amzn-ErrorType", code)], \
        f'{{"__type": "{code}", "message": "{message}"}}'.encode()


def _signed_region(authorization: str) -> str:
    """The region and service a SigV4 request is signed for (the host alone does not say)."""
    parts = authorization.split("Credential=", 1)
    return "/".join(parts[1].split(",")[0].split("/")[2:4]) if len(parts) == 2 else ""


def say(text: str) -> None:
    """A note in hypothesis's report of a failing example (outside a hypothesis test: none)."""
    try:
        note(text)
    except InvalidArgument:
        pass


# --- judging ------------------------------------------------------------------------------

def judge(source: str, records: list[Evidence]) -> list[ControlResult]:
    controls = [c for c in load_catalog() if c.source == source]
    return evaluate(controls, records, {}, NOW)


def outcome(results: list[ControlResult]) -> dict[str, tuple[str, list[tuple[str, str, str]]]]:
    return {r.id: (r.status.value, sorted((f.resource, f.status.value, f.detail) for f in r.findings))
            for r in results}


def findings(results: list[ControlResult]) -> Counter[tuple[str, str, str]]:
    """Every finding as (control id, resource, status)."""
    return Counter((r.id, f.resource, f.status.value) for r in results for f in r.findings)


def kept(baseline: list[ControlResult], faulted: list[ControlResult]) -> float:
    """The share of the fault-free findings the faulted run judged identically."""
    before, after = findings(baseline), findings(faulted)
    total = sum(before.values())
    return sum(min(n, after[k]) for k, n in before.items()) / total if total else 1.0


def assert_no_false_pass(source: str, records: list[Evidence], baseline: list[ControlResult],
                         faulted: list[ControlResult]) -> None:
    """(c): a ``pass`` only on complete evidence, and then the fault-free run's very verdict."""
    evidence = {c.id: set(c.evidence) for c in load_catalog() if c.source == source}
    before = {r.id: r for r in baseline}
    for result in faulted:
        if result.status is not Status.PASS:
            continue
        read = [r for r in records if r.name in evidence[result.id]]
        incomplete = [(r.name, r.scope, r.state.value, sorted(r.unknown)) for r in read
                      if r.state is not EvidenceState.OK or r.unknown]
        assert not incomplete, f"{result.id} passes on incomplete evidence: {incomplete}"
        assert before[result.id].status is Status.PASS, \
            f"{result.id} passes with faults, but is {before[result.id].status.value} without"
        assert outcome([result]) == outcome([before[result.id]]), \
            f"{result.id} passes with faults on other findings than without"


# --- the sources with a local fake (SaaS, Kubernetes): each fake behind the middleware -----

def states(records: list[Evidence]) -> dict[tuple[str, str], str]:
    """Each record's state, by (name, scope)."""
    return {(r.name, r.scope): r.state.value for r in records}


@dataclass(repr=False)
class Fakes:
    config: Any
    faults: dict[str, Faults]
    states: dict[str, dict[tuple[str, str], str]]     # the fault-free run's, per source
    baseline: dict[str, list[ControlResult]]

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:   # in hypothesis's reports
        printer.text(f"Fakes({', '.join(self.faults)})")


def _fast(collector: Any) -> Any:
    """Tiny backoff through attest's own retry policy (the HTTP layer's); the source's own
    attempts (its production retry budget, at least :data:`ATTEMPTS`)."""
    for holder in (collector, getattr(collector, "http", None)):
        policy = getattr(holder, "policy", None)
        if policy is not None:
            assert policy.attempts >= ATTEMPTS, (collector, policy)
            holder.policy = replace(policy, backoff=0.001)
    return collector


def collect(config: Any, source: str) -> list[Evidence]:
    from attest.sources import load_collector
    collector = _fast(load_collector(source)(config.section(source)))
    return list(collector.collect(CollectContext(now=NOW)))


@pytest.fixture(scope="module")
def fakes() -> Iterator[Fakes]:
    from attest.config import load_config
    from attest.demo import start_demo
    faults: dict[str, Faults] = {}

    def faulty(name: str) -> type:
        class FaultyServer(LocalServer):
            def __init__(self, app: Callable, *args: Any, **kwargs: Any) -> None:
                faults[name] = Faults(app)
                super().__init__(faults[name], *args, **kwargs)
        return FaultyServer

    env = set(os.environ)
    with pytest.MonkeyPatch.context() as mp:
        for name in FAKES:
            mp.setattr(importlib.import_module(f"collectors.{name}.demo"), "LocalServer", faulty(name))
        demo = start_demo(NOW, sources=FAKES)
    try:
        config = load_config(None, overrides=demo.config)
        records = {name: collect(config, name) for name in FAKES}
        yield Fakes(config, faults, {name: states(r) for name, r in records.items()},
                    {name: judge(name, r) for name, r in records.items()})
    finally:
        demo.stop()
        for name in set(os.environ) - env:   # the demo tokens start_demo set
            del os.environ[name]


def run_with(fakes: Fakes, source: str, schedule: Schedule | EachResponse
             ) -> tuple[list[Evidence], list[ControlResult]]:
    """Collect ``source`` under ``schedule``; the fault tally is in ``fakes.faults[source].last``."""
    faults = fakes.faults[source]
    faults.use(schedule)
    try:
        records = collect(fakes.config, source)
    finally:
        say(f"{source}: {faults.use(None)}")
    return records, judge(source, records)


def test_the_fault_free_runs_judge_something(fakes: Fakes) -> None:
    for source in FAKES:
        assert Status.ERROR not in {r.status for r in fakes.baseline[source]}, source
        assert {f.status for r in fakes.baseline[source] for f in r.findings} >= \
            {Status.PASS, Status.FAIL}, source
        assert sum(findings(fakes.baseline[source]).values()) > 0, source
        assert fakes.faults[source].injected == 0


@pytest.mark.parametrize("source", FAKES)
@FAST
@given(seed=st.integers(0, 2 ** 32 - 1), rate=st.sampled_from([0.1, 0.3, 0.6]),
       statuses=st.sampled_from([(500,), (503,), (429,), (500, 503, 429)]))
def test_transient_faults_change_nothing(fakes: Fakes, source: str, seed: int, rate: float,
                                         statuses: tuple[int, ...]) -> None:
    records, results = run_with(fakes, source, Schedule(seed, rate, statuses))
    assert states(records) == fakes.states[source], \
        [(r.name, r.state.value, r.detail) for r in records if r.state is not EvidenceState.OK]
    assert outcome(results) == outcome(fakes.baseline[source])


def untouched_kept(source: str, records: list[Evidence], baseline: list[ControlResult],
                   faulted: list[ControlResult]) -> None:
    """A control whose every record stayed ``ok`` is judged exactly as without faults."""
    evidence = {c.id: set(c.evidence) for c in load_catalog() if c.source == source}
    before = outcome(baseline)
    for cid, got in outcome(faulted).items():
        read = [r for r in records if r.name in evidence[cid]]
        if read and all(r.state is EvidenceState.OK and not r.unknown for r in read):
            assert got == before[cid], f"{cid}: its evidence was read whole, yet judged otherwise"


@pytest.mark.parametrize("source", FAKES)
@FAST
@given(seed=st.integers(0, 2 ** 32 - 1), statuses=st.sampled_from([(500,), (503,), (429,), (500, 503, 429)]))
def test_30_percent_permanent_faults_cost_only_what_they_touch(fakes: Fakes, source: str, seed: int,
                                                               statuses: tuple[int, ...]) -> None:
    """(b'): 30% of the distinct requests failing for good. The 90%-kept target cannot hold (one
    failed listing is a whole record); every control whose records were read whole keeps its
    verdict and findings."""
    records, results = run_with(fakes, source, Schedule(seed, 0.3, statuses, permanent=True))
    note(f"{source}: {kept(fakes.baseline[source], results):.1%} of the fault-free findings kept")
    untouched_kept(source, records, fakes.baseline[source], results)


def assert_most_kept(source: str, records: list[Evidence], baseline: list[ControlResult],
                     faulted: list[ControlResult], tally: Tally) -> None:
    """(b): no false pass; every control whose records were read whole judged as without faults;
    when the retries got every request through, everything judged as without faults; and, as
    the issue asks, at least 90% of the fault-free findings judged identically."""
    assume(tally.injected > 0)       # a schedule that failed nothing shows nothing
    share = kept(baseline, faulted)
    note(f"{source}: {share:.1%} of the fault-free findings kept")
    assert_no_false_pass(source, records, baseline, faulted)
    untouched_kept(source, records, baseline, faulted)
    if not tally.gave_up:
        assert outcome(faulted) == outcome(baseline), "every request got through, yet judged otherwise"
    lost = findings(baseline) - findings(faulted)
    assert share >= 0.9, (
        f"{source}: {share:.1%} of the fault-free findings kept ({tally}); lost: "
        f"{sorted(lost)[:5]}...; records not ok: "
        f"{[(r.name, r.state.value, r.detail) for r in records if r.state is not EvidenceState.OK]}")


# Seeds that lost a whole listing (one request failing every try) when the SaaS sources made 4
# tries a call (0.3^4 = 0.8% a request; of seeds 0-199 the property then failed for 13 on Okta,
# 7 on Datadog, 9 on PagerDuty, 5 on Kubernetes), and with 6 tries still for seeds 38 and 177 on
# Okta. With 10 tries (0.3^10, one request in ~170,000) none of seeds 0-199 fails on any source.
# Kept as explicit examples, tried on every source.
LOST_LISTINGS = {
    "okta": (38, 177),    # GET /api/v1/users: okta.users and okta.factors error (25% kept)
    "datadog": (144,),    # GET /api/v1/monitor: datadog.monitors error (12% kept)
    "pagerduty": (56,),   # GET /services: pagerduty.services error (22% kept)
    "kubernetes": (181,),  # GET /api/v1/pods: kubernetes.pods error (42% kept)
}


def lost_listings(test: Callable) -> Callable:
    """The seeds of LOST_LISTINGS as explicit examples (hypothesis runs them first)."""
    for seeds in LOST_LISTINGS.values():
        for seed in seeds:
            test = example(seed=seed, statuses=(500, 503, 429))(test)
    return test


@pytest.mark.parametrize("source", FAKES)
@settings(FAST, report_multiple_bugs=False)
@given(seed=st.integers(0, 2 ** 32 - 1), statuses=st.sampled_from([(500,), (503,), (429,), (500, 503, 429)]))
@lost_listings
def test_30_percent_of_responses_failing_keep_90_percent_of_the_findings(
        fakes: Fakes, source: str, seed: int, statuses: tuple[int, ...]) -> None:
    """(b) as the issue states it: each response, retries included, fails with probability 0.3;
    the source retries as it does in production. The pinned examples are LOST_LISTINGS."""
    records, results = run_with(fakes, source, EachResponse(seed, 0.3, statuses))
    assert_most_kept(source, records, fakes.baseline[source], results, fakes.faults[source].last)


@pytest.mark.parametrize("source", FAKES)
@FAST
@given(seed=st.integers(0, 2 ** 32 - 1), rate=st.sampled_from([0.05, 0.3, 0.7, 1.0]),
       statuses=st.sampled_from([(500,), (429,), (500, 503, 429)]))
def test_permanent_faults_never_make_a_false_pass(fakes: Fakes, source: str, seed: int, rate: float,
                                                  statuses: tuple[int, ...]) -> None:
    records, results = run_with(fakes, source, Schedule(seed, rate, statuses, permanent=True))
    assert_no_false_pass(source, records, fakes.baseline[source], results)


# --- AWS: moto (the demo estate) behind the middleware -------------------------------------

@dataclass(repr=False)
class Aws:
    section: dict[str, Any]
    faults: Faults
    states: dict[tuple[str, str], str]
    baseline: list[ControlResult]

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(f"Aws({self.section.get('endpoint_url')})")


def collect_aws(section: dict[str, Any]) -> list[Evidence]:
    from collectors.aws.collector import AwsCollector, Config
    return list(AwsCollector(Config(**section)).collect(CollectContext(now=NOW)))


@pytest.fixture(scope="module")
def aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Aws]:
    """The demo's moto server with :class:`Faults` in front of everything it serves (moto, the
    demo's gap answers and EKS versions); the default credential chain reaches it."""
    from attest.demo import start_demo
    from collectors.aws import demo as aws_demo
    made: list[Faults] = []
    front = aws_demo.cluster_versions_app

    def faulty(app: Callable, *args: Any, **kwargs: Any) -> Faults:
        made.append(Faults(front(app, *args, **kwargs), respond=aws_fault))
        return made[-1]

    with pytest.MonkeyPatch.context() as mp:
        for name, value in aws_demo.ENV.items():   # start_demo sets them; undone at the end
            mp.setenv(name, value)
        mp.delenv("AWS_PROFILE", raising=False)
        empty = tmp_path_factory.mktemp("no-aws-config")
        mp.setenv("AWS_CONFIG_FILE", str(empty / "config"))
        mp.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty / "credentials"))
        mp.setattr(aws_demo, "cluster_versions_app", faulty)
        demo = start_demo(NOW, sources=("aws",))
        try:
            section = {**demo.config["aws"], "regions": list(AWS_REGIONS)}
            records = collect_aws(section)
            yield Aws(section, made[0], states(records), judge("aws", records))
        finally:
            demo.stop()


def run_aws(aws: Aws, schedule: Schedule | EachResponse | FirstSendings, max_attempts: int | None = None
            ) -> tuple[list[Evidence], list[ControlResult]]:
    """Collect AWS under ``schedule``; ``max_attempts``: botocore's attempts per call (and at
    first contact) instead of the collector's, to keep permanent faults' waits short."""
    from collectors.aws import session
    aws.faults.use(schedule)
    try:
        with pytest.MonkeyPatch.context() as mp:
            if max_attempts is not None:   # fresh dicts: botocore's Config adds to the one given
                for name in ("RETRIES", "FIRST_CONTACT"):
                    mp.setattr(session, name, {"mode": getattr(session, name)["mode"],
                                               "total_max_attempts": max_attempts})
            records = collect_aws(aws.section)
    finally:
        say(f"aws: {aws.faults.use(None)}")
    return records, judge("aws", records)


def test_the_fault_free_aws_run_judges_something(aws: Aws) -> None:
    assert Status.ERROR not in {r.status for r in aws.baseline}
    assert {r.status for r in aws.baseline} >= {Status.PASS, Status.FAIL}
    assert sum(findings(aws.baseline).values()) > 0
    assert aws.faults.injected == 0


@AWS_FAST
@given(seed=st.integers(0, 2 ** 32 - 1), rate=st.sampled_from([0.1, 0.3, 0.6]),
       statuses=st.sampled_from([(500,), (503,), (500, 503)]))
def test_aws_transient_faults_change_nothing(aws: Aws, seed: int, rate: float,
                                             statuses: tuple[int, ...]) -> None:
    records, results = run_aws(aws, Schedule(seed, rate, statuses))
    assert states(records) == aws.states, \
        [(r.name, r.scope, r.state.value, r.detail) for r in records if r.state is not EvidenceState.OK]
    assert outcome(results) == outcome(aws.baseline)


@FAST
@given(seed=st.integers(0, 2 ** 32 - 1), rate=st.sampled_from([0.05, 0.3, 0.7, 1.0]),
       statuses=st.sampled_from([(500,), (503,), (500, 503)]))
def test_aws_permanent_faults_never_make_a_false_pass(aws: Aws, seed: int, rate: float,
                                                      statuses: tuple[int, ...]) -> None:
    records, results = run_aws(aws, Schedule(seed, rate, statuses, permanent=True), max_attempts=2)
    assert_no_false_pass("aws", records, aws.baseline, results)


@AWS_FAST
@given(seed=st.integers(0, 2 ** 32 - 1), statuses=st.sampled_from([(500,), (503,), (500, 503)]))
def test_aws_30_percent_permanent_faults_cost_only_what_they_touch(aws: Aws, seed: int,
                                                                   statuses: tuple[int, ...]) -> None:
    """The stricter one, as for the fakes: 30% of the distinct requests fail for good."""
    records, results = run_aws(aws, Schedule(seed, 0.3, statuses, permanent=True), max_attempts=2)
    note(f"aws: {kept(aws.baseline, results):.1%} of the fault-free findings kept")
    untouched_kept("aws", records, aws.baseline, results)


@AWS_FAST
@given(seed=st.integers(0, 2 ** 32 - 1), statuses=st.sampled_from([(500,), (503,), (500, 503)]))
def test_aws_30_percent_of_responses_failing_keep_90_percent_of_the_findings(
        aws: Aws, seed: int, statuses: tuple[int, ...]) -> None:
    """(b) as the issue states it, with the collector's own botocore retries."""
    records, results = run_aws(aws, EachResponse(seed, 0.3, statuses))
    assert_most_kept("aws", records, aws.baseline, results, aws.faults.last)


STS = r"\|us-east-1/sts\|"      # a request signed for STS (GetCallerIdentity), in a Faults ident


def test_a_fault_aws_answers_at_first_contact_gets_the_full_retry_budget(aws: Aws) -> None:
    """The first call to an account (sts:GetCallerIdentity) makes a few quick tries, so that a
    dead endpoint costs seconds; a 5xx answer shows the endpoint alive, and five of them in a
    row (more than the quick tries, fewer than the full budget) cost nothing."""
    records, results = run_aws(aws, FirstSendings(5, STS))
    assert aws.faults.last.injected == 5
    assert states(records) == aws.states
    assert outcome(results) == outcome(aws.baseline)
    # for good: the quick tries, then the full budget (both 2 tries here), then every record error
    records, results = run_aws(aws, FirstSendings(99, STS), max_attempts=2)
    assert aws.faults.last == Tally(injected=4, sent=4, chosen=1, gave_up=1)
    assert {r.state for r in records} == {EvidenceState.ERROR}
    assert {r.status for r in results} == {Status.ERROR}

