"""The Okta collector, with the real okta SDK over real HTTP against collectors.okta.demo."""
from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from collectors.okta import demo as fk
from attest.demo.http import LocalServer
from attest.engine import evaluate_control
from attest.model import Evidence, EvidenceState, Packed, Status, isoformat
from collectors.base import CollectContext
from collectors.okta.collector import Config, OktaCollector
from collectors.okta.api import HTTPS_CHECK_ENV, build_client
from controls import catalog_by_id

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
TOKEN = "00abcdefGOODtoken"
CONTROLS = ("okta.mfa_enrolled", "okta.mfa_required", "okta.password_policy", "okta.inactive_users")


def days(n: int) -> datetime:
    return NOW - timedelta(days=n)


@pytest.fixture
def world() -> fk.OktaWorld:
    w = fk.OktaWorld(tokens={TOKEN: fk.READ_SCOPES})
    w.add_policy(fk.policy("OKTA_SIGN_ON", "Default Policy", 1, system=True),
                 [fk.sign_on_rule("Default Rule", 1, require_factor=False, system=True)])
    w.add_policy(fk.policy("ACCESS_POLICY", "Okta Dashboard", 1),
                 [fk.access_rule("Catch-all Rule", 99, factor_mode="2FA", system=True)])
    w.add_policy(fk.policy("PASSWORD", "Default Policy", 1, system=True,
                           settings=fk.password_settings(14, 5)), [fk.password_rule()])
    return w


@pytest.fixture
def server(world: fk.OktaWorld):
    srv = LocalServer(fk.FakeOkta(world))
    srv.start()
    yield srv
    srv.stop()


class Sleeps(list):
    """The collector's waits, recorded, on a clock they advance (no test really sleeps)."""
    now = 1000.0

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


def collect(url: str, sleeps: Sleeps | None = None, raw: bool = False,
            **config: Any) -> dict[str, Evidence]:
    """Each record as its file in the bundle gives it back (what the rules judge); ``raw``: as
    the collector handed it on."""
    sleeps = sleeps if sleeps is not None else Sleeps()
    collector = OktaCollector(Config(org_url=url, **({"token": TOKEN} | config)),
                              sleep=sleeps, clock=sleeps.clock)
    records = list(collector.collect(CollectContext(now=NOW)))
    # each name once, in the order each became final (the users are let go of early)
    assert sorted(r.name for r in records) == sorted(OktaCollector.produces)
    return {r.name: r if raw else r.as_stored() for r in records}


def evaluate(records: dict[str, Evidence], control_id: str):
    control = catalog_by_id()[control_id]
    return evaluate_control(control, list(records.values()), control.param_values(), NOW)


def test_users_are_read_past_one_page_and_deprovisioned_are_not_listed(world, server):
    world.max_limit = 2
    for i in range(5):
        world.add_user(fk.user(f"user{i}@acme.example", last_login=days(1)), [fk.factor("push")])
    world.add_user(fk.user("gone@acme.example", status="DEPROVISIONED"))
    ev = collect(server.url)
    users = ev["okta.users"]
    assert users.state is EvidenceState.OK
    assert [u["profile"]["login"] for u in users.payload] == [f"user{i}@acme.example" for i in range(5)]
    assert users.request["pages"] == 3
    pages = [e for e in server.log.entries if e["path"] == "/api/v1/users"]
    assert len(pages) == 3 and "after=" in pages[1]["query"] and "after=" in pages[2]["query"]
    assert set(ev["okta.factors"].payload) == {u["id"] for u in users.payload}
    assert evaluate(ev, "okta.mfa_enrolled").status is Status.PASS
    # as the collector hands them on: every user, and each user's factors, held as compact text
    # until written (20,000 users: about 15 + 9 MB, not 100 + 45 MB of parsed pages)
    held = collect(server.url, raw=True)
    assert all(isinstance(u, Packed) for u in held["okta.users"].payload)
    assert all(isinstance(v, Packed) for v in held["okta.factors"].payload.values())
    assert held["okta.users"].as_stored().payload == users.payload
    assert users.payload[0]["status"] == "ACTIVE"
    # and the judgement is the same, whichever form the engine is given
    assert evaluate(held, "okta.mfa_enrolled") == evaluate(ev, "okta.mfa_enrolled")


def test_raw_json_is_kept_including_fields_the_sdk_does_not_model(world, server):
    u = fk.user("raw@acme.example", last_login=days(1))
    u["profile"]["costCenter"] = "R&D-7"
    u["_embedded"] = {"classification": {"type": "STANDARD"}}
    odd = fk.factor("token:software:totp") | {"factorType": "some_future_factor", "vendorName": "ACME"}
    world.add_user(u, [odd])
    ev = collect(server.url)
    assert ev["okta.users"].payload == [u]
    assert ev["okta.factors"].payload == {u["id"]: [odd]}


def test_user_with_only_a_deactivated_factor_fails_mfa_enrolled(world, server):
    ok = world.add_user(fk.user("ok@acme.example", last_login=days(1)), [fk.factor("push")])
    world.add_user(fk.user("carl@acme.example", last_login=days(1)),
                   [fk.factor("token:software:totp", status="INACTIVE")])
    world.add_user(fk.user("pending@acme.example", last_login=days(1)),
                   [fk.factor("push", status="PENDING_ACTIVATION"), fk.factor("question")])
    result = evaluate(collect(server.url), "okta.mfa_enrolled")
    assert result.status is Status.FAIL
    by = {f.resource: f for f in result.findings}
    assert by["ok@acme.example"].status is Status.PASS
    assert by["carl@acme.example"].status is Status.FAIL and "INACTIVE" in by["carl@acme.example"].detail
    assert by["pending@acme.example"].status is Status.FAIL
    assert ok["id"] not in str(result.findings)   # findings name logins, not ids


def test_bad_token_makes_every_record_denied_and_every_control_error(world, server):
    world.add_user(fk.user("a@acme.example"), [fk.factor("push")])
    ev = collect(server.url, token="wrong-token")
    assert {r.state for r in ev.values()} == {EvidenceState.DENIED}
    assert "E0000011" in ev["okta.users"].detail and "wrong-token" not in str(ev)
    assert server.log.count(lambda e: e["path"].startswith("/api/v1/")) == 1   # stops at once
    for cid in CONTROLS:
        assert evaluate(ev, cid).status is Status.ERROR, cid


def test_missing_permission_is_denied_for_that_evidence_only(world, server):
    world.tokens[TOKEN] = frozenset({"okta.users.read"})
    world.add_user(fk.user("a@acme.example", last_login=days(1)), [fk.factor("push")])
    ev = collect(server.url)
    assert ev["okta.users"].state is EvidenceState.OK
    for name in ("okta.policies.sign_on", "okta.policies.access", "okta.policies.password"):
        assert ev[name].state is EvidenceState.DENIED
        assert "E0000006" in ev[name].detail and "okta.policies.read" in ev[name].detail
    assert evaluate(ev, "okta.mfa_enrolled").status is Status.PASS
    assert evaluate(ev, "okta.password_policy").status is Status.ERROR
    assert evaluate(ev, "okta.mfa_required").status is Status.ERROR


@pytest.mark.parametrize("login, first", [
    ("<script>alert(1)</script>@acme.example", "<b>Eve</b>"),
    ("../../etc/passwd", "../.."),
    ("zoë.müller@acme.example", "Zoë"),
])
def test_names_with_html_traversal_and_non_ascii_are_data(world, server, login, first):
    world.add_user(fk.user(login, first=first, activated=days(400), last_login=days(200)), [])
    ev = collect(server.url)
    assert ev["okta.users"].payload[0]["profile"] == {**ev["okta.users"].payload[0]["profile"],
                                                      "login": login, "firstName": first}
    for record in ev.values():
        assert login not in record.path and ".." not in record.path
    for cid, status in (("okta.mfa_enrolled", Status.FAIL), ("okta.inactive_users", Status.FAIL)):
        result = evaluate(ev, cid)
        assert result.status is status
        assert [f.resource for f in result.findings] == [login]


def test_classic_engine_reads_sign_on_policies_only(world, server):
    world.pipeline = "v1"
    world.policies = [p for p in world.policies if p["type"] != "ACCESS_POLICY"]
    sign_on = world.policies[0]
    world.rules[sign_on["id"]] = [
        fk.sign_on_rule("Engineers on VPN", 1, require_factor=False, groups=["00gEngineers"]),
        fk.sign_on_rule("Default Rule", 2, require_factor=True, system=True)]
    ev = collect(server.url)
    assert ev["okta.org"].payload["pipeline"] == "v1"
    assert ev["okta.policies.access"].state is EvidenceState.ABSENT
    assert server.log.count(lambda e: "ACCESS_POLICY" in e["query"]) == 0
    result = evaluate(ev, "okta.mfa_required")
    assert result.status is Status.FAIL
    [finding] = result.findings
    assert finding.resource == sign_on["id"] and "Engineers on VPN" in finding.detail
    world.rules[sign_on["id"]][0]["actions"]["signon"]["requireFactor"] = True
    assert evaluate(collect(server.url), "okta.mfa_required").status is Status.PASS


def test_identity_engine_reads_authentication_policies(world, server):
    ev = collect(server.url)
    assert ev["okta.org"].payload["pipeline"] == "idx"
    assert evaluate(ev, "okta.mfa_required").status is Status.PASS
    dashboard = next(p for p in world.policies if p["type"] == "ACCESS_POLICY")
    world.rules[dashboard["id"]].insert(
        0, fk.access_rule("Office network", 0, factor_mode="1FA", zones=["nzoOffice"]))
    result = evaluate(collect(server.url), "okta.mfa_required")
    assert result.status is Status.FAIL
    assert result.findings[0].resource == dashboard["id"]
    assert "Office network" in result.findings[0].detail and "nzoOffice" in result.findings[0].detail


def test_rate_limit_waits_until_reset_then_succeeds(world, server):
    world.add_user(fk.user("a@acme.example", last_login=days(1)), [fk.factor("push")])
    world.throttle = 2
    sleeps = Sleeps()
    ev = collect(server.url, sleeps)
    assert ev["okta.users"].state is EvidenceState.OK
    assert len(sleeps) == 2 and all(0 < s <= 3 for s in sleeps)
    assert server.log.count(lambda e: e["status"] == 429) == 2


def test_rate_limit_wait_is_bounded(world, server):
    world.add_user(fk.user("a@acme.example"), [fk.factor("push")])
    world.throttle, world.throttle_reset_in = 1, 3600
    sleeps = Sleeps()
    ev = collect(server.url, sleeps, rate_limit_max_wait=5)
    assert sleeps == []
    assert ev["okta.users"].state is EvidenceState.ERROR
    assert "429" in ev["okta.users"].detail and "rate_limit_max_wait" in ev["okta.users"].detail


def test_demo_world_gives_the_statuses_it_promises():
    demo = fk.start_demo(NOW)
    try:
        assert demo.section["token"] == "${ATTEST_DEMO_OKTA_TOKEN}"
        token = demo.env["ATTEST_DEMO_OKTA_TOKEN"]
        ev = collect(demo.section["org_url"], token=token)
        assert set(demo.expected) == set(CONTROLS)
        assert {cid: evaluate(ev, cid).status.value for cid in CONTROLS} == demo.expected
    finally:
        demo.stop()


def test_loopback_http_works_and_other_http_is_refused(monkeypatch):
    assert Config(org_url="http://127.0.0.1:8080", token="t").org_url == "http://127.0.0.1:8080"
    assert Config(org_url="https://login.acme-rockets.com/", token="t").org_url == \
        "https://login.acme-rockets.com"   # an Okta custom domain
    with pytest.raises(ValidationError, match="https"):
        Config(org_url="http://acme.okta.com", token="t")
    # even if the user's environment turns the SDK's check off, attest turns it back on
    monkeypatch.setenv(HTTPS_CHECK_ENV, "true")
    with pytest.raises(ValueError, match="https"):
        build_client({"orgUrl": "http://acme.okta.com", "authorizationMode": "SSWS", "token": "t"})
    assert build_client({"orgUrl": "http://127.0.0.1:9", "authorizationMode": "SSWS", "token": "t"})
    assert os.environ[HTTPS_CHECK_ENV] == "true"   # restored
    monkeypatch.delenv(HTTPS_CHECK_ENV)
    build_client({"orgUrl": "http://localhost:9", "authorizationMode": "SSWS", "token": "t"})
    assert HTTPS_CHECK_ENV not in os.environ


def test_config_needs_exactly_one_auth_mode():
    with pytest.raises(ValidationError, match="either token"):
        Config(org_url="https://acme.okta.com")
    with pytest.raises(ValidationError, match="either token"):
        Config(org_url="https://acme.okta.com", token="t", client_id="0oa1", private_key="k")
    with pytest.raises(ValidationError, match="exactly one"):
        Config(org_url="https://acme.okta.com", client_id="0oa1")
    with pytest.raises(ValidationError):
        Config(org_url="https://acme.okta.com", token="t", unknown=1)


@pytest.fixture(scope="module")
def rsa_keys() -> tuple[str, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


def test_oauth_service_app_with_private_key_jwt(world, server, rsa_keys, tmp_path: Path):
    private, public = rsa_keys
    world.apps["0oaAttestSvc"] = fk.OAuthApp(public)
    world.add_user(fk.user("a@acme.example", last_login=days(1)), [fk.factor("push")])
    ev = collect(server.url, token=None, client_id="0oaAttestSvc", private_key=private)
    assert {r.state for r in ev.values()} == {EvidenceState.OK}
    assert server.log.count(lambda e: e["path"] == "/oauth2/v1/token") == 1
    assert set(world.issued.values()) == {frozenset({"okta.users.read", "okta.policies.read",
                                                     "okta.logs.read"})}
    key_file = tmp_path / "okta.pem"
    key_file.write_text(private)
    ev = collect(server.url, token=None, client_id="0oaAttestSvc", private_key_path=str(key_file))
    assert ev["okta.users"].state is EvidenceState.OK


def test_oauth_with_an_unknown_key_is_denied(world, server, rsa_keys):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    world.apps["0oaAttestSvc"] = fk.OAuthApp(rsa_keys[1])
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode()
    ev = collect(server.url, token=None, client_id="0oaAttestSvc", private_key=other)
    assert {r.state for r in ev.values()} == {EvidenceState.DENIED}
    assert "invalid_client" in ev["okta.users"].detail


def test_pagination_broken_midway_is_partial_and_other_failures_are_errors(world, server):
    world.max_limit = 2
    for i in range(5):
        world.add_user(fk.user(f"user{i}@acme.example", last_login=days(1)), [fk.factor("push")])
    world.outage_after = 1
    ev = collect(server.url)
    assert ev["okta.users"].state is EvidenceState.PARTIAL
    assert len(ev["okta.users"].payload) == 2 and "E0000009" in ev["okta.users"].detail
    assert ev["okta.factors"].state is EvidenceState.PARTIAL
    assert ev["okta.policies.password"].state is EvidenceState.ERROR
    for cid in CONTROLS:
        assert evaluate(ev, cid).status is Status.ERROR, cid


def test_exhausted_rate_limit_budget_pauses_before_the_next_call(world, server):
    world.add_user(fk.user("a@acme.example", last_login=days(1)), [fk.factor("push")])
    world.rate_limit = 1   # every answer says X-Rate-Limit-Remaining: 0
    sleeps = Sleeps()
    ev = collect(server.url, sleeps, rate_limit_max_wait=120)
    assert ev["okta.users"].state is EvidenceState.OK
    assert sleeps and all(0 < s <= 61 for s in sleeps)


@pytest.mark.parametrize("okta_yaml", [False, True])
def test_oauth_secrets_reach_neither_evidence_nor_logs(world, rsa_keys, tmp_path: Path,
                                                       monkeypatch, caplog, okta_yaml: bool):
    """The private key PEM, the client assertion JWT and the issued access token stay out of
    every record and every log line at DEBUG, even when an okta.yaml on the machine turns the
    SDK's own logging on (it logs each request with its headers at DEBUG)."""
    import logging

    from attest.model import canonical_json

    if okta_yaml:
        settings = tmp_path / "okta.yaml"
        settings.write_text("okta:\n  client:\n    logging:\n      enabled: true\n"
                            "      logLevel: 10\n")
        monkeypatch.setattr("okta.config.config_setter._LOCAL_YAML_PATH", str(settings))
    private, public = rsa_keys
    world.apps["0oaAttestSvc"] = fk.OAuthApp(public)
    world.add_user(fk.user("a@acme.example", last_login=days(1)), [fk.factor("push")])
    fake = fk.FakeOkta(world)
    assertions: list[str] = []
    issue = fake.token
    fake.token = lambda request: (assertions.append(request.form.get("client_assertion", "")),
                                  issue(request))[1]
    srv = LocalServer(fake)
    srv.start()
    try:
        for name in (None, "okta", "okta-sdk-python", "urllib3", "aiohttp", "attest"):
            caplog.set_level(logging.DEBUG, logger=name)
        ev = collect(srv.url, token=None, client_id="0oaAttestSvc", private_key=private)
    finally:
        srv.stop()
    assert {r.state for r in ev.values()} == {EvidenceState.OK}
    assert len(world.issued) == 1 and assertions, "the OAuth flow ran against the fake"
    secrets = {private.strip(), *world.issued, *assertions, *(a.rsplit(".", 1)[1] for a in assertions)}
    secrets.update(line for line in private.splitlines() if line and not line.startswith("-----"))
    blobs = {f"{r.name} {r.scope}": canonical_json(r.to_json()) for r in ev.values()}
    blobs["<caplog>"] = caplog.text.encode()
    for where, data in blobs.items():
        for secret in secrets:
            assert secret.encode() not in data, f"{secret[:8]}... leaked into {where}"


# --- okta.system_log: the access events of the System Log ---------------------------------------

def _log(world: fk.OktaWorld, event_type: str, when: datetime, login: str,
         group: dict[str, Any] | None = None) -> dict[str, Any]:
    from collectors.okta.demo_system_log import actor, log_event
    user = next((u for u in world.users if u["profile"]["login"] == login), None) or \
        world.add_user(fk.user(login, last_login=days(1)), [fk.factor("push")])
    event = log_event(event_type, when, actor(user), [actor(user)] + ([group] if group else []))
    world.logs.append(event)
    return event


def test_system_log_reads_access_events_since_the_last_good_read(world, server):
    from collectors.okta.demo_system_log import MARKETING, PROD_ADMINS
    world.log_max_limit = 2
    old = _log(world, "user.lifecycle.create", days(40), "old@acme.example")     # past the look-back
    before = _log(world, "user.lifecycle.create", days(3), "before@acme.example")  # before last read
    wanted = [_log(world, "user.lifecycle.create", days(1), "new@acme.example"),
              _log(world, "user.account.privilege.grant", days(1) + timedelta(minutes=5),
                   "new@acme.example"),
              _log(world, "group.user_membership.add", days(1) + timedelta(minutes=6),
                   "new@acme.example", PROD_ADMINS),
              _log(world, "user.lifecycle.deactivate", NOW - timedelta(seconds=1), "old@acme.example")]
    _log(world, "group.user_membership.add", days(1), "new@acme.example", MARKETING)  # other group
    _log(world, "user.session.start", days(1), "new@acme.example")                    # not access
    _log(world, "user.lifecycle.suspend", NOW, "new@acme.example")                    # until: excluded
    last_read = days(2)
    collector = OktaCollector(Config(org_url=server.url, token=TOKEN,
                                     access_groups=[PROD_ADMINS["displayName"]]), sleep=Sleeps())
    ctx = CollectContext(now=NOW, last_collected=lambda name, scope:
                         last_read if name == "okta.system_log" else None)
    record = {r.name: r for r in collector.collect(ctx)}["okta.system_log"]
    assert record.state is EvidenceState.OK
    assert record.payload["since"] == isoformat(last_read) and record.payload["until"] == isoformat(NOW)
    assert [e["uuid"] for e in record.payload["events"]] == [e["uuid"] for e in wanted]
    assert old["uuid"] not in str(record.payload) and before["uuid"] not in str(record.payload)
    assert record.payload["groups"] == ["AWS Production Admins"]
    pages = [e for e in server.log.entries if e["path"] == "/api/v1/logs"]
    assert len(pages) == 3 and record.request["pages"] == 3      # 5 events of the filter, 2 a page
    assert "filter=eventType+eq" in pages[0]["query"] and "after=" in pages[1]["query"]
    # no groups configured: membership events are not even asked for; without a last read the
    # window is the look-back
    plain = {r.name: r for r in OktaCollector(Config(org_url=server.url, token=TOKEN,
                                                     access_lookback_days=7),
                                              sleep=Sleeps()).collect(CollectContext(now=NOW))}
    log = plain["okta.system_log"]
    assert log.payload["since"] == isoformat(days(7))
    assert "group.user_membership.add" not in log.request["params"]["filter"]
    assert before["uuid"] in str(log.payload) and old["uuid"] not in str(log.payload)


def test_system_log_without_its_scope_is_denied_alone(world, server):
    world.tokens[TOKEN] = frozenset(fk.READ_SCOPES - {"okta.logs.read"})
    world.add_user(fk.user("a@acme.example", last_login=days(1)), [fk.factor("push")])
    ev = collect(server.url)
    assert ev["okta.system_log"].state is EvidenceState.DENIED
    assert "okta.logs.read" in ev["okta.system_log"].detail
    assert ev["okta.users"].state is EvidenceState.OK
    assert evaluate(ev, "okta.mfa_enrolled").status is Status.PASS


def test_system_log_broken_midway_is_partial(world, server, monkeypatch):
    world.log_max_limit = 1
    for i in range(3):
        _log(world, "user.lifecycle.create", days(1) + timedelta(minutes=i), f"u{i}@acme.example")
    pages = []
    served = fk.FakeOkta.api

    def second_page_fails(self, request, path):
        if path == "/api/v1/logs":
            pages.append(request.args.get("after"))
            if len(pages) > 1:
                return fk._error(500, "E0000009", "Internal Server Error")
        return served(self, request, path)
    monkeypatch.setattr(fk.FakeOkta, "api", second_page_fails)
    sleeps = Sleeps()
    ev = collect(server.url, sleeps)
    log = ev["okta.system_log"]
    assert log.state is EvidenceState.PARTIAL and "E0000009" in log.detail
    assert len(log.payload["events"]) == 1 and sleeps      # the 500s were retried, then gave up
    assert ev["okta.users"].state is EvidenceState.OK


def test_the_user_list_is_handed_on_before_the_factors_are_read(world: fk.OktaWorld,
                                                                  server: LocalServer) -> None:
    """Memory (issue 9): the scan writes each record out and lets go of its payload as soon as
    the collector hands it on. The user list is handed on before one factor is read, and the
    collector keeps no payload of a record it handed on."""
    for i in range(5):
        world.add_user(fk.user(f"u{i}@acme.example"))
    collector = OktaCollector(Config(org_url=server.url, token=TOKEN), sleep=Sleeps())
    records = collector.collect(CollectContext(now=NOW))
    first = next(records)
    assert first.name == "okta.users" and len(first.payload) == 5
    assert server.log.count(lambda e: e["path"].endswith("/factors")) == 0
    rest = list(records)
    assert server.log.count(lambda e: e["path"].endswith("/factors")) == 5
    factors = next(r for r in rest if r.name == "okta.factors")
    assert factors.state is EvidenceState.OK and len(factors.payload) == 5
