"""The GitHub collector, unchanged, over real HTTP against the local fake (collectors.github.demo)."""
from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

import pytest
from pydantic import ValidationError

from collectors.github.demo import MEMBER, OWNER, serve, start_demo
from collectors.github.demo.world import Alert, Member, Protection, Pull, Repo, Review, Ruleset, World
from attest.demo.http import LocalServer
from attest.engine import evaluate_control
from attest.model import Evidence, EvidenceState, Status
from collectors.base import CollectContext
from collectors.github.collector import Config, GithubCollector
from controls import catalog_by_id

NOW = datetime(2025, 6, 1, 12, tzinfo=timezone.utc)
TOKEN = "ghp_test_owner_token"


@pytest.fixture
def server() -> Iterator[Any]:
    """A factory: server(world) starts the fake for that world; all are stopped at the end."""
    started: list[LocalServer] = []

    def start(world: World) -> LocalServer:
        world.tokens.setdefault(TOKEN, OWNER)
        started.append(serve(world))
        return started[-1]
    yield start
    for s in started:
        s.stop()


def collect(url: str, org: str = "acme", token: str = TOKEN, previous: datetime | None = None,
            **cfg: Any) -> dict[str, Evidence]:
    config = Config(org=org, base_url=url, token=token, **cfg) if "app_id" not in cfg \
        else Config(org=org, base_url=url, **cfg)
    records = list(GithubCollector(config).collect(CollectContext(now=NOW, last_collected=lambda name, scope: previous)))
    assert [r.name for r in records] == list(GithubCollector.produces)
    return {r.name: r for r in records}


def statuses(records: dict[str, Evidence]) -> dict[str, Status]:
    out = {}
    for cid, control in catalog_by_id().items():
        if control.source == "github":
            out[cid] = evaluate_control(control, list(records.values()), control.param_values(),
                                        NOW).status
    return out


def world(**kw: Any) -> World:
    return World(org="acme", now=NOW, **kw)


def test_demo_world_matches_expected_statuses() -> None:
    demo = start_demo(NOW)
    try:
        records = collect(demo.section["base_url"], demo.section["org"],
                          token=demo.env["ATTEST_DEMO_GITHUB_TOKEN"])
    finally:
        demo.stop()
    assert demo.section["token"] == "${ATTEST_DEMO_GITHUB_TOKEN}"
    assert {k: v.value for k, v in statuses(records).items()} == demo.expected


def test_ruleset_only_repos_pass_the_review_control(server: Any) -> None:
    rules = {"pull_request": 1, "non_fast_forward": True, "deletion": True,
             "required_status_checks": ["ci"]}
    w = world(repos=[Repo("own-ruleset", rulesets=[Ruleset(1, "protect main", rules)]),
                     Repo("org-ruleset"), Repo("evaluate-only", rulesets=[
                         Ruleset(2, "trial", rules, enforcement="evaluate")])],
              org_rulesets=[Ruleset(3, "org", rules, repo_include=["org-*"])])
    records = collect(server(w).url)
    control = catalog_by_id()["github.branch_review_required"]
    result = evaluate_control(control, list(records.values()), control.param_values(), NOW)
    assert {f.resource: f.status for f in result.findings} == {
        "acme/own-ruleset": Status.PASS, "acme/org-ruleset": Status.PASS,
        "acme/evaluate-only": Status.FAIL}


def test_more_than_one_page_of_repos_and_members(server: Any) -> None:
    w = world(repos=[Repo(f"svc-{i:03}", protection=Protection()) for i in range(230)],
              members=[Member(f"user{i}", two_factor=i % 2 == 0) for i in range(310)])
    srv = server(w)
    records = collect(srv.url)
    assert len(records["github.repos"].payload["repositories"]) == 230
    assert len(records["github.branch_protection"].payload["repositories"]) == 230
    assert len(records["github.members_2fa_disabled"].payload) == 155
    assert srv.log.count(lambda e: e["path"] == "/orgs/acme/repos") == 3
    assert srv.log.count(lambda e: e["path"] == "/orgs/acme/members") == 2
    assert srv.log.count(lambda e: e["path"] == "/graphql") == 3 + 1 + 1  # repo pages, org rulesets, search
    assert statuses(records)["github.members_2fa"] is Status.FAIL


def test_250_repositories_cost_at_most_ten_calls_for_branch_controls(server: Any) -> None:
    w = world(repos=[Repo(f"repo-{i:03}", protection=Protection() if i % 3 else None,
                          rulesets=[Ruleset(i, "r", {"pull_request": 1})] if i % 5 == 0 else [])
                     for i in range(250)],
              org_rulesets=[Ruleset(9000 + i, f"org-{i}", {"deletion": True}) for i in range(3)])
    srv = server(w)
    records = collect(srv.url)
    assert len(records["github.branch_protection"].payload["repositories"]) == 250
    branch_calls = srv.log.count(lambda e: e["path"] == "/graphql" or "ruleset" in e["path"]
                                 or "/branches/" in e["path"])
    assert branch_calls <= 10
    # no call per repository: the Dependabot-alerts setting comes with the GraphQL pages
    assert srv.log.count(lambda e: e["path"].startswith("/repos/")) == 0
    assert srv.log.count() <= 12
    assert statuses(records)["github.branch_review_required"] is Status.FAIL


def test_bad_token_makes_every_github_control_error(server: Any) -> None:
    srv = server(world(repos=[Repo("api", protection=Protection())]))
    records = collect(srv.url, token="ghp_wrong")
    assert all(r.state is EvidenceState.DENIED for r in records.values())
    assert "401 Bad credentials" in records["github.org"].detail
    assert "ghp_wrong" not in str([r.to_json() for r in records.values()])
    assert set(statuses(records).values()) == {Status.ERROR}
    assert srv.log.count() == 1


def test_names_with_html_dot_dot_and_non_ascii(server: Any) -> None:
    names = ["<script>alert(1)</script>", "../../etc/passwd", "raketen-überwachung", "..", "ok"]
    w = world(repos=[Repo(n, protection=Protection()) for n in names],
              alerts=[Alert(1, "../../etc/passwd", "critical", NOW - timedelta(days=90))])
    records = collect(server(w).url)
    full = {f"acme/{n}" for n in names}
    assert {r["full_name"] for r in records["github.repos"].payload["repositories"]} == full
    assert {r["nameWithOwner"] for r in records["github.branch_protection"].payload["repositories"]} == full
    nodes = records["github.branch_protection"].payload["repositories"]
    assert all(n["hasVulnerabilityAlertsEnabled"] for n in nodes)
    for r in records.values():
        assert r.path.startswith("evidence/github/acme/") and ".." not in r.path.split("/")
    control = catalog_by_id()["github.vulnerability_sla"]
    result = evaluate_control(control, list(records.values()), control.param_values(), NOW)
    assert [f.resource for f in result.findings] == ["acme/../../etc/passwd"]


def test_owner_only_fields_hidden_from_a_member_become_errors(server: Any) -> None:
    w = world(repos=[Repo("api"), Repo("web", protection=Protection())],
              members=[Member("ivan", two_factor=False)],
              pulls=[Pull("api", 1, "alice", NOW - timedelta(days=1), [Review("bob", NOW - timedelta(days=2))])])
    w.tokens["ghp_member"] = MEMBER
    records = collect(server(w).url, token="ghp_member")
    assert records["github.org"].state is EvidenceState.OK
    assert "two_factor_requirement_enabled" not in records["github.org"].payload
    assert records["github.members_2fa_disabled"].state is EvidenceState.DENIED
    assert "owner" in records["github.members_2fa_disabled"].detail
    result = statuses(records)
    assert result.pop("github.changes_reviewed") is Status.PASS  # reviews are visible to readers
    assert set(result.values()) == {Status.ERROR}, result
    control = catalog_by_id()["github.org_2fa_required"]
    detail = evaluate_control(control, list(records.values()), {}, NOW).findings[0].detail
    assert "owner" in detail
    assert records["github.org_rulesets"].state is EvidenceState.DENIED
    assert "Administration: read" in records["github.org_rulesets"].detail


def test_archived_repos_are_skipped_unless_configured(server: Any) -> None:
    w = world(repos=[Repo("live", protection=Protection()), Repo("attic", archived=True)],
              alerts=[Alert(1, "attic", "critical", NOW - timedelta(days=100))],
              pulls=[Pull("attic", 1, "alice", NOW - timedelta(days=1))])
    url = server(w).url
    records = collect(url)
    assert records["github.repos"].payload["archived_skipped"] == ["acme/attic"]
    assert [r["name"] for r in records["github.branch_protection"].payload["repositories"]] == ["live"]
    assert records["github.dependabot_alerts"].payload == []
    assert records["github.merged_pulls"].payload["pulls"] == []
    assert statuses(records)["github.branch_review_required"] is Status.PASS
    included = collect(url, include_archived=True)
    assert len(included["github.branch_protection"].payload["repositories"]) == 2
    assert len(included["github.dependabot_alerts"].payload) == 1
    assert statuses(included)["github.branch_review_required"] is Status.FAIL
    assert statuses(included)["github.changes_reviewed"] is Status.FAIL


@contextmanager
def repository_list_down(w: World) -> Iterator[str]:
    """The fake for ``w``, but GET /orgs/acme/repos answers 500 every time."""
    from werkzeug.wrappers import Response

    from collectors.github.demo import FakeGithub
    w.tokens[TOKEN] = OWNER
    app = FakeGithub(w)

    def repos_down(environ: dict, start_response: Any) -> Any:
        if environ["PATH_INFO"] == "/orgs/acme/repos":
            return Response("{}", 500, mimetype="application/json")(environ, start_response)
        return app(environ, start_response)
    with LocalServer(repos_down) as url:
        yield url


def test_an_unreadable_repository_list_leaves_the_alerts_unjudged_not_failed() -> None:
    """Without the repository list, which repositories are archived (out of scope) is unknown:
    the alerts are `error`, never judged as if the archived ones counted, and the other reads
    keep their verdicts."""
    w = world(repos=[Repo("live", protection=Protection()), Repo("attic", archived=True)],
              alerts=[Alert(1, "attic", "critical", NOW - timedelta(days=100))])
    with repository_list_down(w) as url:
        records = collect(url, max_retries=0)
    assert records["github.repos"].state is EvidenceState.ERROR
    alerts = records["github.dependabot_alerts"]
    assert alerts.state is EvidenceState.ERROR and "archived" in alerts.detail
    result = statuses(records)
    assert result["github.vulnerability_sla"] is Status.ERROR
    assert result["github.branch_review_required"] is Status.PASS


def test_branch_protection_by_node_id_equals_the_connection_read(server: Any) -> None:
    """With the REST list of repositories, GraphQL is asked for them by node id, 100 per call and
    the calls side by side; without it, through the organization's repositories connection. The
    two give the same payload."""
    many = [Ruleset(7000 + i, f"r{i}", {"pull_request": 1}) for i in range(30)]   # > 25: a 2nd page
    w = world(repos=[Repo(f"svc-{i:03}", protection=Protection() if i % 2 else None,
                          archived=i % 11 == 0, rulesets=many if i == 7 else [])
                     for i in range(230)])
    srv = server(w)
    by_id = collect(srv.url)
    bp = by_id["github.branch_protection"]
    assert bp.request["operation"] == "nodes(ids) of the repositories GET /orgs/{org}/repos listed"
    assert srv.log.count(lambda e: e["path"] == "/graphql") == 3 + 1 + 1 + 1   # 209 repos, the
    # 30 rulesets of svc-007, the org's rulesets, the pull requests search
    assert srv.log.most_in_flight >= 2

    with repository_list_down(w) as url:
        through = collect(url, max_retries=0)["github.branch_protection"]
    assert through.request["operation"] == "organization.repositories"
    name = lambda r: r["name"]   # noqa: E731
    assert sorted(bp.payload["repositories"], key=name) == sorted(
        through.payload["repositories"], key=name)
    assert len(bp.payload["repositories"]) == 209
    assert bp.payload["archived_skipped"] == through.payload["archived_skipped"]
    assert len(bp.payload["archived_skipped"]) == 21
    svc7 = next(r for r in bp.payload["repositories"] if r["name"] == "svc-007")
    assert len(svc7["rulesets"]["nodes"]) == 30


def test_a_repository_deleted_after_it_was_listed_is_left_out_not_an_error() -> None:
    """GitHub answers nodes(ids:) for an id that no longer resolves with null and a NOT_FOUND
    error beside the data: that repository is left out; any other error still fails the read."""
    from collectors.github.graphql import Graphql, GraphqlDenied, GraphqlError, repositories_by_id
    from collectors.http import Response

    def answer(errors: list[dict[str, Any]]) -> Graphql:
        def post(text: str, variables: dict[str, Any], needs: str) -> Response:
            nodes = [None if i == "gone" else {"id": i, "name": i, "nameWithOwner": f"acme/{i}",
                                               "isArchived": False, "rulesets": {}}
                     for i in variables["ids"]]
            return Response(200, {}, {"data": {"nodes": nodes}, "errors": errors}, "")
        return Graphql(post)
    not_found = {"type": "NOT_FOUND", "path": ["nodes", 1],
                 "message": "Could not resolve to a node with the global id of 'gone'"}
    got = repositories_by_id(answer([not_found]), ["a", "gone", "b"], False, workers=2)
    assert [r["name"] for r in got["repositories"]] == ["a", "b"]
    with pytest.raises(GraphqlError, match="Could not resolve"):
        answer([not_found]).query("q", {"ids": ["gone"]})   # not tolerated unless asked
    with pytest.raises(GraphqlDenied):
        repositories_by_id(answer([not_found, {"type": "FORBIDDEN", "message": "no"}]),
                           ["a", "gone"], False, workers=2)


def test_look_back_starts_at_the_previous_scan_and_is_capped(server: Any) -> None:
    w = world(repos=[Repo("api")],
              pulls=[Pull("api", n, "alice", NOW - timedelta(days=d), [Review("bob", NOW - timedelta(days=d + 1))])
                     for n, d in ((1, 1), (2, 5), (3, 40))])
    url = server(w).url
    recent = collect(url, previous=NOW - timedelta(days=3))["github.merged_pulls"].payload
    assert [p["number"] for p in recent["pulls"]] == [1]
    assert recent["since"] == "2025-05-29T12:00:00Z"
    capped = collect(url, previous=NOW - timedelta(days=90))["github.merged_pulls"].payload
    assert sorted(p["number"] for p in capped["pulls"]) == [1, 2]
    assert statuses(collect(url))["github.changes_reviewed"] is Status.PASS


def test_rate_limits_are_waited_out(server: Any) -> None:
    w = world(repos=[Repo("api", protection=Protection())])
    w.rate_limited, w.throttled = 1, 1
    srv = server(w)
    records = collect(srv.url)
    assert all(r.state is EvidenceState.OK for r in records.values())
    assert srv.log.count(lambda e: e["status"] == 429) == 1  # Retry-After: 1, then retried
    assert srv.log.count(lambda e: e["status"] == 403) == 1  # x-ratelimit-remaining: 0, until reset


def test_graphql_rate_limited_answers_are_waited_out(server: Any) -> None:
    w = world(repos=[Repo("api", protection=Protection())])
    w.graphql_rate_limited = 1
    srv = server(w)
    records = collect(srv.url)
    assert records["github.branch_protection"].state is EvidenceState.OK
    assert srv.log.count(lambda e: e["path"] == "/graphql") == 1 + 3  # retried once
    w.graphql_rate_limited = 100      # every query (they run concurrently: any could be first)
    limited = collect(srv.url, max_rate_limit_wait=0)["github.branch_protection"]
    assert limited.state is EvidenceState.ERROR and "rate limit" in limited.detail


def test_search_past_its_1000_result_cap_is_split_into_windows(server: Any) -> None:
    w = world(repos=[Repo("api")],
              pulls=[Pull("api", n, "alice", NOW - timedelta(minutes=10 * n)) for n in range(1, 1201)])
    srv = server(w)
    pulls = collect(srv.url)["github.merged_pulls"].payload["pulls"]
    assert sorted(p["number"] for p in pulls) == list(range(1, 1201))


def test_rate_limit_beyond_the_allowed_wait_is_an_error(server: Any) -> None:
    w = world(repos=[Repo("api")])
    srv = server(w)
    w.rate_limited = 1
    records = collect(srv.url, max_rate_limit_wait=0)
    assert records["github.org"].state is EvidenceState.ERROR
    assert "rate limit" in records["github.org"].detail


def test_github_app_installation_auth(server: Any, tmp_path: Any) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from collectors.github.demo.world import App

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    path = tmp_path / "app.pem"
    path.write_bytes(pem)
    w = world(repos=[Repo("api", protection=Protection())],
              app=App(app_id=321, installation_id=654, public_key_pem=public))
    srv = server(w)
    records = collect(srv.url, app_id=321, installation_id=654, private_key_path=str(path))
    assert all(r.state is EvidenceState.OK for r in records.values())
    assert srv.log.count(lambda e: e["path"] == "/app/installations/654/access_tokens") == 1
    wrong = collect(srv.url, app_id=999, installation_id=654, private_key_path=str(path))
    assert wrong["github.org"].state is EvidenceState.DENIED


@pytest.mark.parametrize("base_url, graphql", [
    ("https://api.github.com", "https://api.github.com/graphql"),
    ("https://github.example.com/api/v3/", "https://github.example.com/api/graphql"),
    ("http://127.0.0.1:8123", "http://127.0.0.1:8123/graphql"),
])
def test_graphql_url_follows_base_url(base_url: str, graphql: str) -> None:
    collector = GithubCollector(Config(org="acme", base_url=base_url, token="x"))
    assert collector._client().requester.graphql_url == graphql


@pytest.mark.parametrize("section", [
    {"org": "acme", "token": "x", "app_id": 1, "installation_id": 2, "private_key": "k"},
    {"org": "acme"},
    {"org": "acme", "app_id": 1, "installation_id": 2},
    {"org": "acme", "token": "x", "base_url": "http://github.example.com/api/v3"},
    {"org": "acme", "token": "x", "changes_lookback_days": 31},
    {"org": "acme", "token": "x", "colour": "blue"},
])
def test_config_rejects(section: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Config.model_validate(section)


def test_fake_rest_shapes_seen_through_pygithub(server: Any) -> None:
    from github import Auth, BadCredentialsException, Github, GithubException

    w = world(repos=[Repo("api", protection=Protection(required_reviews=2)), Repo("bare")])
    url = server(w).url
    req = Github(auth=Auth.Token(TOKEN), base_url=url, retry=None).requester
    _, protection = req.requestJsonAndCheck("GET", "/repos/acme/api/branches/main/protection")
    assert protection["required_pull_request_reviews"]["required_approving_review_count"] == 2
    assert protection["allow_force_pushes"] == {"enabled": False}
    with pytest.raises(GithubException) as missing:
        req.requestJsonAndCheck("GET", "/repos/acme/bare/branches/main/protection")
    assert (missing.value.status, missing.value.data["message"]) == (404, "Branch not protected")
    with pytest.raises(BadCredentialsException) as bad:
        Github(auth=Auth.Token("nope"), base_url=url, retry=None).get_organization("acme").login
    assert bad.value.data["documentation_url"].startswith("https://docs.github.com/")


def _key_pair() -> tuple[bytes, bytes]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem, public


def _secret_pieces(pem: str, tokens: list[str], jwts: list[str]) -> set[str]:
    """The secrets as whole strings, plus each PEM body line and each JWT's signature alone."""
    pieces = {pem.strip(), *tokens, *jwts, *(j.rsplit(".", 1)[1] for j in jwts)}
    pieces.update(line for line in pem.splitlines() if line and not line.startswith("-----"))
    return pieces


def _assert_nothing_leaks(records: list[Evidence], log_text: str, secrets: set[str]) -> None:
    from attest.model import canonical_json
    blobs = {f"{r.name} {r.scope}": canonical_json(r.to_json()) for r in records}
    blobs["<caplog>"] = log_text.encode()
    assert len(blobs) > 1 and log_text, "nothing to search"
    for where, data in blobs.items():
        for secret in secrets:
            assert secret.encode() not in data, f"{secret[:8]}... leaked into {where}"


@pytest.mark.parametrize("key_in", ["private_key_path", "private_key"])
def test_github_app_secrets_reach_neither_evidence_nor_logs(tmp_path: Any, caplog: Any,
                                                            key_in: str) -> None:
    """The App key PEM, the JWT signed with it and the issued ghs_ token stay out of every
    record and every log line, with the SDK's and urllib3's loggers at DEBUG."""
    import logging

    from collectors.github.demo import FakeGithub
    from collectors.github.demo.world import App

    pem, public = _key_pair()
    w = world(repos=[Repo("api", protection=Protection())], members=[Member("bob")],
              app=App(app_id=321, installation_id=654, public_key_pem=public))
    fake = FakeGithub(w)
    jwts: list[str] = []
    issue = fake.installation_token
    fake.installation_token = lambda parts, jwt_token: (jwts.append(jwt_token),
                                                        issue(parts, jwt_token))[1]
    srv = LocalServer(fake)
    srv.start()
    try:
        key = {"private_key_path": str(tmp_path / "app.pem")} if key_in == "private_key_path" \
            else {"private_key": pem.decode()}
        (tmp_path / "app.pem").write_bytes(pem)
        import github  # noqa: F401  (its import pins the "github" logger to INFO: import first)
        for name in (None, "github", "urllib3", "attest"):
            caplog.set_level(logging.DEBUG, logger=name)
        records = collect(srv.url, app_id=321, installation_id=654, **key)
    finally:
        srv.stop()
    issued = [t for t in w.tokens if t.startswith("ghs_")]
    assert all(r.state is EvidenceState.OK for r in records.values())
    assert len(issued) == 1 and jwts, "the App flow ran against the fake"
    assert any(r.name == "github.Requester" and "access_tokens" in r.getMessage()
               for r in caplog.records), "PyGithub's DEBUG lines were captured"
    _assert_nothing_leaks(list(records.values()), caplog.text,
                          _secret_pieces(pem.decode(), issued, jwts))
