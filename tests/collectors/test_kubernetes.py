"""The Kubernetes collector end to end: the official client over real https to the fake API
server (its own CA, trusted through ca_file or a kubeconfig's certificate-authority), then the
real rules through the engine. EKS clusters: moto for eks:DescribeCluster, the fake as the
cluster's endpoint."""
from __future__ import annotations

import base64
import socket
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import yaml

from attest.config import load_config
from attest.engine import evaluate_control
from attest.errors import ConfigError
from attest.model import Evidence, EvidenceState
from collectors.base import CollectContext
from collectors.http import RetryPolicy
from collectors.kubernetes import demo
from collectors.kubernetes.collector import KubernetesCollector
from collectors.kubernetes.source import KINDS, Config
from controls import catalog_by_id

NOW = datetime(2026, 11, 22, 2, 0, tzinfo=timezone.utc)
TOKEN = "acme-demo-k8s-token"
CONTROLS = sorted(demo.EXPECTED)


@pytest.fixture
def fake():
    cluster = demo.start_cluster(demo.acme_world())
    yield cluster
    cluster.stop()


def entry(cluster: demo.FakeCluster, name: str = "prod", token: str = TOKEN) -> dict[str, Any]:
    return {"name": name, "server": cluster.url, "token": token, "ca_file": str(cluster.ca_file)}


def collect(*clusters: dict[str, Any], page_size: int = 500, sleeps: list[float] | None = None,
            **section: Any) -> list[Evidence]:
    config = Config.model_validate({"clusters": list(clusters),
                                    "allowed_admin_subjects": ["Group:platform-admins"], **section})
    waits = sleeps if sleeps is not None else []
    collector = KubernetesCollector(config, policy=RetryPolicy(attempts=3), page_size=page_size,
                                    sleep=waits.append)
    return list(collector.collect(CollectContext(now=NOW)))


def evaluate(control_id: str, records: list[Evidence]):
    control = catalog_by_id()[control_id]
    return evaluate_control(control, records, control.param_values(), NOW)


def statuses(records: list[Evidence]) -> dict[str, str]:
    return {cid: evaluate(cid, records).status.value for cid in CONTROLS}


def one(records: list[Evidence], name: str, scope: str = "k8s:prod") -> Evidence:
    found = [r for r in records if r.name == name and r.scope == scope]
    assert len(found) == 1, f"{len(found)} records of {name} at {scope}"
    return found[0]


def list_requests(cluster: demo.FakeCluster, path: str) -> list[dict[str, str]]:
    return [e for e in cluster.server.log.entries if e["path"] == path]


# --- the demo's cluster, as `attest scan --demo` reads it ----------------------------------

def test_demo_cluster_gives_the_expected_outcome_for_every_control(monkeypatch):
    source = demo.start_demo(NOW)
    try:
        for key, value in source.env.items():
            monkeypatch.setenv(key, value)
        loaded = load_config(None, overrides={"kubernetes": source.section})   # ${ENV} token
        records = list(KubernetesCollector(loaded.section("kubernetes")).collect(CollectContext(now=NOW)))
    finally:
        source.stop()
    assert statuses(records) == source.expected == demo.EXPECTED
    assert {r.state for r in records} == {EvidenceState.OK}
    assert {r.scope for r in records} == {"k8s:acme-prod"}
    # raw JSON as the API server sent it: the list kind, its metadata, items without a model dump
    pods = one(records, "kubernetes.pods", "k8s:acme-prod")
    assert pods.payload["pages"][0]["kind"] == "PodList"
    assert pods.payload["pages"][0]["metadata"]["resourceVersion"] == "48213"
    assert pods.request == {"operation": "GET /api/v1/pods", "params": {"limit": 500}, "pages": 1}
    settings = one(records, "kubernetes.cluster", "k8s:acme-prod").payload
    assert settings["allowed_admin_subjects"] == ["Group:platform-admins"]
    assert settings["connection"]["server"].startswith("https://127.0.0.1:")
    failing = {f.resource for f in evaluate("kubernetes.cluster_admin_bindings", records).findings
               if f.status.value == "fail"}
    assert failing == {"k8s:acme-prod:ClusterRoleBinding/-/ci-deployer-admin",
                       "k8s:acme-prod:RoleBinding/legacy-batch/reconcile-superuser"}


def test_the_fake_s_objects_are_valid_kubernetes_objects():
    import kubernetes_validate
    from kubernetes_validate.utils import latest_version
    version = latest_version()
    kinds = {"namespaces": ("v1", "Namespace"), "pods": ("v1", "Pod"),
             "clusterrolebindings": ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
             "rolebindings": ("rbac.authorization.k8s.io/v1", "RoleBinding"),
             "clusterroles": ("rbac.authorization.k8s.io/v1", "ClusterRole"),
             "roles": ("rbac.authorization.k8s.io/v1", "Role"),
             "networkpolicies": ("networking.k8s.io/v1", "NetworkPolicy")}
    world = demo.acme_world()
    assert set(world.objects) == set(kinds)
    for resource, objects in world.objects.items():
        api_version, kind = kinds[resource]
        for obj in objects:
            kubernetes_validate.validate({"apiVersion": api_version, "kind": kind, **obj}, version,
                                         strict=True)


def test_a_flipped_cluster_flips_every_control(fake):
    """Each failure of the demo's cluster fixed, and the one passing control broken."""
    w = fake.world
    w.objects["clusterrolebindings"] = [b for b in w.objects["clusterrolebindings"]
                                        if b["metadata"]["name"] != "ci-deployer-admin"]
    w.objects["rolebindings"] = [b for b in w.objects["rolebindings"]
                                 if b["metadata"]["name"] != "reconcile-superuser"]
    w.objects["pods"] = [p for p in w.objects["pods"] if p["metadata"]["name"] not in (
        "node-exporter-8fz2k", "nightly-reconcile-29410560-7qg5d")]   # host namespaces; escalation
    for ns in w.objects["namespaces"]:
        ns["metadata"]["labels"].setdefault("pod-security.kubernetes.io/enforce", "baseline")
        if ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged":
            ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] = "restricted"
    w.objects["networkpolicies"] = [p for p in w.objects["networkpolicies"]
                                    if p["metadata"]["namespace"] != "telemetry"]
    records = collect(entry(fake))
    assert statuses(records) == {cid: {"pass": "fail", "fail": "pass"}[status]
                                 for cid, status in demo.EXPECTED.items()}
    policies = evaluate("kubernetes.network_policies", records)
    assert [f.resource for f in policies.findings if f.status.value == "fail"] == [
        "k8s:prod:Namespace/-/telemetry"]


# --- paging -------------------------------------------------------------------------------

def test_lists_are_read_with_limit_and_continue(fake):
    records = collect(entry(fake), page_size=2)
    pods = one(records, "kubernetes.pods")
    total = len(fake.world.objects["pods"])
    requests = list_requests(fake, "/api/v1/pods")
    assert len(requests) == pods.request["pages"] == -(-total // 2) == len(pods.payload["pages"])
    assert all("limit=2" in r["query"] for r in requests)
    assert "continue=" not in requests[0]["query"] and all("continue=" in r["query"] for r in requests[1:])
    names = [i["metadata"]["name"] for page in pods.payload["pages"] for i in page["items"]]
    assert sorted(names) == sorted(p["metadata"]["name"] for p in fake.world.objects["pods"])
    assert pods.payload["pages"][0]["metadata"]["remainingItemCount"] == total - 2
    assert statuses(records) == demo.EXPECTED


def test_a_failing_later_page_is_partial_and_never_a_pass(fake):
    fake.world.fail_pages["pods"] = 1
    records = collect(entry(fake), page_size=3)
    pods = one(records, "kubernetes.pods")
    assert pods.state is EvidenceState.PARTIAL
    assert pods.detail.startswith("page 2 failed: GET /api/v1/pods: 500")
    assert len(pods.payload["pages"]) == 1
    got = statuses(records)
    assert got["kubernetes.privileged_workloads"] == "error"
    assert got["kubernetes.network_policies"] == "error"
    assert got["kubernetes.pod_security"] == demo.EXPECTED["kubernetes.pod_security"]


def test_a_throttled_list_is_retried_after_the_server_s_wait(fake):
    fake.world.throttle = 2
    sleeps: list[float] = []
    records = collect(entry(fake), sleeps=sleeps, max_workers=1)   # one list at a time
    assert one(records, "kubernetes.namespaces").state is EvidenceState.OK
    assert len(sleeps) == 2 and all(s >= 1 for s in sleeps)     # Retry-After: 1
    assert [e["status"] for e in list_requests(fake, "/api/v1/namespaces")] == [429, 429, 200]


# --- denied, rejected, unreachable ----------------------------------------------------------

@pytest.mark.parametrize("resource, evidence, controls", [
    ("clusterrolebindings", "kubernetes.cluster_role_bindings", {"kubernetes.cluster_admin_bindings"}),
    ("pods", "kubernetes.pods", {"kubernetes.privileged_workloads", "kubernetes.network_policies"}),
    ("namespaces", "kubernetes.namespaces", {"kubernetes.pod_security"}),
])
def test_a_forbidden_list_is_denied_and_affects_only_its_controls(fake, resource, evidence, controls):
    fake.world.forbidden.add(resource)
    records = collect(entry(fake))
    denied = one(records, evidence)
    assert denied.state is EvidenceState.DENIED
    kind = next(k for k in KINDS if k.evidence == evidence)
    assert f"list {kind.resource}" in denied.detail                  # the verb and the resource
    assert f'cannot list resource "{resource}"' in denied.detail      # the API server's own words
    assert {r.state for r in records if r is not denied} == {EvidenceState.OK}
    got = statuses(records)
    assert {c: got[c] for c in controls} == {c: "error" for c in controls}
    assert {c: s for c, s in got.items() if c not in controls} == \
        {c: s for c, s in demo.EXPECTED.items() if c not in controls}


def test_a_rejected_token_is_denied(fake):
    records = collect(entry(fake, token="stale-token"))
    lists = [r for r in records if r.name != "kubernetes.cluster"]
    assert {r.state for r in lists} == {EvidenceState.DENIED}
    assert "the credentials were rejected (401 Unauthorized)" in lists[0].detail
    assert set(statuses(records).values()) == {"error"}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_cluster_costs_only_that_cluster(fake, caplog):
    caplog.set_level("INFO", logger="attest.calls")
    down = {"name": "edge", "server": f"https://127.0.0.1:{_closed_port()}", "token": TOKEN,
            "ca_file": str(fake.ca_file)}
    sleeps: list[float] = []
    records = collect(down, entry(fake), sleeps=sleeps, max_workers=1)
    edge = [r for r in records if r.scope == "k8s:edge" and r.name != "kubernetes.cluster"]
    assert len(edge) == len(KINDS) and {r.state for r in edge} == {EvidenceState.UNREACHABLE}
    assert "no answer after 3 attempts" in edge[0].detail
    assert all("not tried" in r.detail for r in edge[1:])            # one bounded wait, not seven
    assert len(sleeps) == 2
    # failed-calls.json: every list of edge, the first after 3 attempts, the others not tried
    failed = [r.failed_call for r in caplog.records if hasattr(r, "failed_call")]
    assert sorted((f["evidence"], f["attempts"], f["status"]) for f in failed) == sorted(
        (r.name, 3 if i == 0 else 0, "unreachable") for i, r in enumerate(edge))
    assert {f["scope"] for f in failed} == {"k8s:edge"}
    # side by side, the lists in flight when the host is found dead each find it at the same
    # time (still one bounded wait); the edge cluster costs the prod cluster nothing
    side = collect(down, entry(fake), max_workers=4)
    assert {r.state for r in side if r.scope == "k8s:edge"} == {EvidenceState.UNREACHABLE}
    assert {r.state for r in side if r.scope == "k8s:prod"} == {EvidenceState.OK}
    assert one(records, "kubernetes.cluster", "k8s:edge").state is EvidenceState.UNREACHABLE
    prod = [r for r in records if r.scope == "k8s:prod"]
    assert {r.state for r in prod} == {EvidenceState.OK}
    # prod is still judged: its failures show, edge is an error, nothing passes for edge
    admin = evaluate("kubernetes.cluster_admin_bindings", records)
    assert admin.status.value == "fail"
    assert {f.resource for f in admin.findings if f.status.value == "error"} == {"k8s:edge"}
    policies = evaluate("kubernetes.network_policies", records)
    assert policies.status.value == "error"
    assert {f.status.value for f in policies.findings if f.resource.startswith("k8s:prod:")} == {"pass"}


def test_a_certificate_from_another_ca_is_never_accepted(fake, tmp_path):
    other_ca, _ = demo.make_ca(tmp_path)
    records = collect({**entry(fake), "ca_file": str(other_ca)})
    lists = [r for r in records if r.name != "kubernetes.cluster"]
    assert {r.state for r in lists} == {EvidenceState.UNREACHABLE}
    assert "CERTIFICATE_VERIFY_FAILED" in lists[0].detail.upper().replace(" ", "_")
    assert fake.server.log.count() == 0                              # no request got through


def test_a_missing_ca_file_is_an_error_for_that_cluster(fake, tmp_path):
    records = collect({**entry(fake, name="lost"), "ca_file": str(tmp_path / "nope.crt")}, entry(fake))
    lost = [r for r in records if r.scope == "k8s:lost" and r.name != "kubernetes.cluster"]
    assert {r.state for r in lost} == {EvidenceState.ERROR}
    assert "nope.crt is not a file" in lost[0].detail
    assert {r.state for r in records if r.scope == "k8s:prod"} == {EvidenceState.OK}


# --- kubeconfig contexts ----------------------------------------------------------------------

def kubeconfig(path: Path, fake: demo.FakeCluster, **cluster_extra: Any) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "prod",
        "clusters": [{"name": "acme", "cluster": {"server": fake.url,
                                                   "certificate-authority": str(fake.ca_file)}},
                     {"name": "acme-insecure", "cluster": {"server": fake.url,
                                                            "insecure-skip-tls-verify": True}}],
        "users": [{"name": "attest", "user": {"token": TOKEN}}],
        "contexts": [{"name": "prod", "context": {"cluster": "acme", "user": "attest"}},
                     {"name": "careless", "context": {"cluster": "acme-insecure", "user": "attest"}}],
    }), encoding="utf-8")
    return path


def test_a_kubeconfig_context_is_read_from_KUBECONFIG(fake, tmp_path, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path / 'absent'}:{kubeconfig(tmp_path / 'config', fake)}")
    records = collect({"context": "prod"}, {"context": "careless"}, {"context": "staging"})
    assert {r.state for r in records if r.scope == "k8s:prod"} == {EvidenceState.OK}   # name: the context
    assert statuses([r for r in records if r.scope == "k8s:prod"]) == demo.EXPECTED
    assert one(records, "kubernetes.cluster").payload["connection"]["context"] == "prod"
    careless = one(records, "kubernetes.pods", "k8s:careless")
    assert careless.state is EvidenceState.ERROR and "insecure-skip-tls-verify" in careless.detail
    missing = one(records, "kubernetes.pods", "k8s:staging")
    assert missing.state is EvidenceState.ERROR and "staging" in missing.detail
    # the careless context never sent its token to a server it could not verify
    assert len(list_requests(fake, "/api/v1/pods")) == 1


# --- EKS ------------------------------------------------------------------------------------

def test_eks_token_is_a_presigned_get_caller_identity_url(moto):
    import boto3

    from collectors.kubernetes import eks
    token = eks.token(boto3.Session(), "prod-eks", "us-east-1")
    assert token.startswith("k8s-aws-v1.") and not token.endswith("=")
    body = token[len("k8s-aws-v1."):]
    assert set(body) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    url = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()
    assert "X-Amz-SignedHeaders=host%3Bx-k8s-aws-id" in url
    query = parse_qs(urlsplit(url).query)
    assert query["Action"] == ["GetCallerIdentity"] and query["Version"] == ["2011-06-15"]
    assert query["X-Amz-Expires"] == ["60"] and query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert unquote(query["X-Amz-Credential"][0]).endswith("/us-east-1/sts/aws4_request")


def test_an_eks_cluster_is_reached_with_its_endpoint_ca_and_a_signed_token(moto, fake, monkeypatch,
                                                                          caplog):
    caplog.set_level("INFO", logger="attest.calls")
    from moto.eks.models import eks_backends

    from collectors.aws.demo import ACCOUNT, client
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto)   # boto3's own setting: eks and sts go to moto
    client(moto, "eks").create_cluster(
        name="prod-eks", version="1.34", roleArn=f"arn:aws:iam::{ACCOUNT}:role/eks",
        resourcesVpcConfig={"subnetIds": ["subnet-0a1b2c3d4e5f60001"]})
    described = eks_backends[ACCOUNT]["us-east-1"].clusters["prod-eks"]
    described.endpoint = fake.url                  # moto makes up an endpoint and a CA
    described.certificate_authority = {"data": base64.b64encode(fake.ca_file.read_bytes()).decode()}
    fake.world.eks_cluster = "prod-eks"
    fake.world.tokens = set()                      # only an EKS token opens this cluster

    records = collect({"eks": {"name": "prod-eks", "region": "us-east-1"}},
                      {"eks": {"name": "ghost", "region": "us-east-1"}})
    assert {r.state for r in records if r.scope == "k8s:prod-eks"} == {EvidenceState.OK}
    assert statuses([r for r in records if r.scope == "k8s:prod-eks"]) == demo.EXPECTED
    connection = one(records, "kubernetes.cluster", "k8s:prod-eks").payload["connection"]
    assert connection["eks"]["arn"] == f"arn:aws:eks:us-east-1:{ACCOUNT}:cluster/prod-eks"
    assert connection["server"] == fake.url
    assert len(fake.world.eks_tokens) == len(KINDS)
    assert all("X-Amz-SignedHeaders=host%3Bx-k8s-aws-id" in url for url in fake.world.eks_tokens)
    ghost = one(records, "kubernetes.pods", "k8s:ghost")
    assert ghost.state is EvidenceState.ERROR
    assert "eks:DescribeCluster (ghost in us-east-1) failed: ResourceNotFoundException" in ghost.detail
    # the one failed call, as the bundle's failed-calls.json lists it
    (failed,) = [r.failed_call for r in caplog.records if hasattr(r, "failed_call")]
    assert {k: failed[k] for k in ("source", "scope", "call", "resource", "status", "attempts",
                                   "evidence", "state")} == {
        "source": "kubernetes", "scope": "k8s:ghost", "call": "eks:DescribeCluster",
        "resource": "cluster ghost in us-east-1", "status": "ResourceNotFoundException",
        "attempts": 1, "evidence": "kubernetes.cluster", "state": "error"}

    # a long scan signs a new token once the old one is REFRESH_AFTER seconds old
    from collectors.kubernetes import eks
    signed: list[str] = []
    real_token = eks.token
    monkeypatch.setattr(eks, "token", lambda *a: signed.append(a[1]) or real_token(*a))
    monkeypatch.setattr(eks, "REFRESH_AFTER", -1)      # every request finds its token too old
    collect({"eks": {"name": "prod-eks", "region": "us-east-1"}})
    assert signed == ["prod-eks"] * (1 + len(KINDS))


# --- config -----------------------------------------------------------------------------------

def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_config_names_clusters_and_keeps_the_token_a_secret(tmp_path, monkeypatch):
    monkeypatch.setenv("K8S_TOKEN", "t0ken")
    loaded = load_config(write(tmp_path, """
kubernetes:
  clusters:
    - context: prod
    - eks: {name: prod-eks, region: us-east-1}
    - server: https://10.0.0.1:6443
      token: ${K8S_TOKEN}
      ca_file: /secrets/ca.crt
    - name: edge
      server: https://k8s.example.com
      token: ${K8S_TOKEN}
    - context: arn:aws:eks:us-east-1:111122223333:cluster/prod
    - server: https://[fd00::1]:6443
      token: ${K8S_TOKEN}
"""))
    config = loaded.section("kubernetes")
    assert [c.label for c in config.clusters] == [
        "prod", "prod-eks", "10.0.0.1", "edge", "arn-aws-eks-us-east-1-111122223333-cluster-prod",
        "fd00--1"]
    assert config.clusters[2].token.get_secret_value() == "t0ken"
    assert config.system_namespaces == ["kube-system", "kube-public", "kube-node-lease"]


@pytest.mark.parametrize("clusters, message", [
    ("[{context: a, server: 'https://x'}]", "exactly one of context, eks or server"),
    ("[{server: 'https://x'}]", "needs a token"),
    ("[{context: a, ca_file: /x}]", "token and ca_file go with server"),
    ("[{server: 'http://10.0.0.1', token: '${K8S_TOKEN}'}]", "https"),
    ("[{context: a}, {context: b, name: a}]", "two clusters are named 'a'"),
    ("[{server: 'https://x', token: literal}]", "secrets must be given as an ${ENV_VAR} reference"),
    ("[{eks: {name: x}}]", "region"),
])
def test_config_mistakes_are_one_line(tmp_path, monkeypatch, clusters, message):
    monkeypatch.setenv("K8S_TOKEN", "t0ken")
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, f"kubernetes:\n  clusters: {clusters}\n"))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_allowed_admin_subjects_are_checked(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, "kubernetes:\n  clusters: [{context: a}]\n"
                                    "  allowed_admin_subjects: [platform-admins]\n"))
    assert "Kind:name" in str(err.value)


# --- the README's least-privilege ClusterRole --------------------------------------------------

def test_readme_cluster_role_grants_get_and_list_on_exactly_the_kinds_read(capsys):
    import re

    import kubernetes_validate
    from kubernetes_validate.utils import latest_version
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Kubernetes\n", 1)[1].split("\n<!-- sources:end -->", 1)[0]
    block = next(b for b in re.findall(r"```yaml\n(.*?)```", section, re.S) if "kind: ClusterRole\n" in b)
    from collectors.kubernetes.source import cluster_role_yaml
    assert block == cluster_role_yaml(), "README: paste `attest permissions kubernetes`"
    docs = list(yaml.safe_load_all(block))
    for doc in docs:
        kubernetes_validate.validate(doc, latest_version(), strict=True)
    cluster_role, cluster_binding = docs
    granted = {(group, res) for r in cluster_role["rules"] for group in r["apiGroups"]
               for res in r["resources"]}
    read = set()
    for kind in KINDS:
        name, _, group = kind.resource.partition(".")
        read.add((group, name))
    assert granted == read
    assert all(r["verbs"] == ["get", "list"] for r in cluster_role["rules"])
    assert cluster_binding["roleRef"]["name"] == cluster_role["metadata"]["name"]

    from attest.cli import main
    assert main(["permissions", "kubernetes"]) == 0
    assert capsys.readouterr().out == block


# --- lists side by side (max_workers) --------------------------------------------------------

def content(records: list[Evidence]) -> list[tuple[Any, ...]]:
    """What each record says, without when it was collected."""
    return [(r.name, r.scope, r.state, r.payload, r.detail, r.request, r.unknown) for r in records]


def test_max_workers_reads_the_lists_side_by_side_with_the_same_records(fake, monkeypatch):
    """The API server takes 50 ms to answer: with max_workers 4 the seven lists of two clusters
    overlap (up to 4 requests in flight), with 1 never; the records are the same either way,
    cluster by cluster, each cluster's kinds in the same order (pages of 2: several each)."""
    monkeypatch.setattr(fake.server, "latency", 0.05)
    fake.world.fail_pages["pods"] = 2                        # one list partial, the same both ways
    got: dict[int, list[tuple[Any, ...]]] = {}
    most: dict[int, int] = {}
    for workers in (1, 4):
        fake.server.log.clear()
        records = collect(entry(fake), entry(fake, name="staging"), page_size=2,
                          max_workers=workers)
        got[workers], most[workers] = content(records), fake.server.log.most_in_flight
    assert most[1] == 1 and 1 < most[4] <= 4, most
    assert got[1] == got[4]
    names = [k.evidence for k in KINDS] + ["kubernetes.cluster"]
    assert [(name, scope) for name, scope, *_ in got[4]] == \
        [(n, "k8s:prod") for n in names] + [(n, "k8s:staging") for n in names]
    assert {(name, state) for name, _, state, *_ in got[4] if state is not EvidenceState.OK} == \
        {("kubernetes.pods", EvidenceState.PARTIAL)}


def test_an_unexpected_answer_in_one_list_stays_with_its_record(fake, monkeypatch):
    """The roles list comes back with a shape the collector does not expect (``metadata`` a
    string): that record is ``error`` naming it; the lists read beside it are ``ok``."""
    app = fake.server.app

    def odd_roles(environ: dict, start_response: Any) -> Any:
        if environ["PATH_INFO"] == "/apis/rbac.authorization.k8s.io/v1/roles":
            start_response("200 OK", [("Content-Type", "application/json")])
            return [b'{"kind": "RoleList", "apiVersion": "rbac.authorization.k8s.io/v1", '
                    b'"metadata": "not an object", "items": []}']
        return app(environ, start_response)
    monkeypatch.setattr(fake.server, "app", odd_roles)
    records = collect(entry(fake), max_workers=4)
    roles = one(records, "kubernetes.roles")
    assert roles.state is EvidenceState.ERROR
    assert roles.detail.startswith("unexpected AttributeError while reading"), roles.detail
    assert {r.state for r in records if r is not roles} == {EvidenceState.OK}
