"""Kubernetes rules on literal evidence: list pages shaped as the API server sends them (built
with the fake's object builders, which follow the OpenAPI description)."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from attest.engine import evaluate_control
from attest.model import Evidence, EvidenceState
from collectors.kubernetes.demo import (binding, container, namespace, network_policy, pod, role,
                                        rule, subject)
from controls import catalog_by_id

NOW = datetime(2026, 11, 22, 2, 0, tzinfo=timezone.utc)
SYSTEM = ["kube-system", "kube-public", "kube-node-lease"]
LIST_KIND = {"kubernetes.namespaces": "NamespaceList", "kubernetes.pods": "PodList",
             "kubernetes.cluster_role_bindings": "ClusterRoleBindingList",
             "kubernetes.role_bindings": "RoleBindingList",
             "kubernetes.cluster_roles": "ClusterRoleList", "kubernetes.roles": "RoleList",
             "kubernetes.network_policies": "NetworkPolicyList"}


def settings(cluster: str = "prod", allowed: list[str] | None = None,
             system: list[str] | None = None) -> Evidence:
    return Evidence(name="kubernetes.cluster", scope=f"k8s:{cluster}", state=EvidenceState.OK, payload={
        "name": cluster, "connection": {"server": "https://10.0.0.1:6443"},
        "system_namespaces": SYSTEM if system is None else system,
        "allowed_admin_subjects": allowed or []})


def listed(name: str, *items: dict[str, Any], cluster: str = "prod", state: str = "ok",
           per_page: int = 2) -> Evidence:
    """A list record: the items cut into pages of ``per_page``, as the collector keeps them."""
    if state != "ok":
        return Evidence(name=name, scope=f"k8s:{cluster}", state=EvidenceState(state),
                        payload={"pages": []}, detail=f"GET ...: 403 forbidden; the credentials "
                        f"need RBAC permission to list {name.split('.')[1]}")
    pages = [{"kind": LIST_KIND[name], "apiVersion": "v1", "metadata": {"resourceVersion": "9"},
              "items": list(items[i:i + per_page])} for i in range(0, max(len(items), 1), per_page)]
    return Evidence(name=name, scope=f"k8s:{cluster}", state=EvidenceState.OK,
                    payload={"pages": pages})


def evaluate(control_id: str, records: list[Evidence], **params: Any):
    control = catalog_by_id()[control_id]
    return evaluate_control(control, records, control.param_values(params), NOW)


def verdicts(result) -> dict[str, str]:
    return {f.resource: f.status.value for f in result.findings}


# --- kubernetes.cluster_admin_bindings ----------------------------------------------------

CLUSTER_ADMIN = role("cluster-admin", [rule(["*"], ["*"], ["*"]), {"nonResourceURLs": ["*"],
                                                                    "verbs": ["*"]}])


def rbac(crbs=(), rbs=(), crs=(CLUSTER_ADMIN,), roles=(), allowed=None):
    """The four RBAC lists; a list given as "denied" is a denied record."""
    def one(name, objs):
        return listed(name, state="denied") if objs == "denied" else listed(name, *objs)
    return [settings(allowed=allowed), one("kubernetes.cluster_role_bindings", crbs),
            one("kubernetes.role_bindings", rbs), one("kubernetes.cluster_roles", crs),
            one("kubernetes.roles", roles)]


def test_cluster_admin_to_a_subject_outside_the_allowed_list_fails():
    result = evaluate("kubernetes.cluster_admin_bindings", rbac(crbs=[
        binding("cluster-admin", "ClusterRole", "cluster-admin", [subject("Group", "system:masters")]),
        binding("platform", "ClusterRole", "cluster-admin", [subject("Group", "platform-admins")]),
        binding("ci", "ClusterRole", "cluster-admin", [subject("ServiceAccount", "deployer", "ci"),
                                                       subject("User", "system:admin")]),
    ], allowed=["Group:platform-admins"]))
    assert result.status.value == "fail"
    assert verdicts(result) == {
        "k8s:prod:ClusterRoleBinding/-/cluster-admin": "pass",     # system:... is exempt
        "k8s:prod:ClusterRoleBinding/-/platform": "pass",          # allowed
        "k8s:prod:ClusterRoleBinding/-/ci": "fail"}
    bad = [f for f in result.findings if f.status.value == "fail"][0]
    assert bad.detail == "grants cluster-admin to ServiceAccount:ci/deployer"
    # the same estate without the allowance fails on the platform group too
    strict = evaluate("kubernetes.cluster_admin_bindings", rbac(crbs=[
        binding("platform", "ClusterRole", "cluster-admin", [subject("Group", "platform-admins")])]))
    assert strict.status.value == "fail"


def test_a_role_allowing_everything_counts_only_with_star_in_verbs_resources_and_groups():
    crs = (CLUSTER_ADMIN,
           role("superuser", [rule(["*"], ["*"], ["*"])]),
           role("all-core", [rule(["*"], ["*"], [""])]),                  # core group only
           role("read-all", [rule(["get", "list"], ["*"], ["*"])]))
    roles = (role("ns-owner", [rule(["*"], ["*"], ["*"])], ns="payments"),
             role("deployer", [rule(["*"], ["deployments"], ["apps"])], ns="payments"))
    rbs = (binding("dana", "ClusterRole", "superuser", [subject("User", "dana")], ns="batch"),
           binding("core", "ClusterRole", "all-core", [subject("User", "erin")], ns="batch"),
           binding("readers", "ClusterRole", "read-all", [subject("Group", "auditors")], ns="batch"),
           binding("owner", "Role", "ns-owner", [subject("Group", "payments-leads")], ns="payments"),
           binding("deploy", "Role", "deployer", [subject("ServiceAccount", "ci", "payments")],
                   ns="payments"),
           binding("dangling", "Role", "deleted-role", [subject("User", "frank")], ns="payments"))
    result = evaluate("kubernetes.cluster_admin_bindings", rbac(rbs=rbs, crs=crs, roles=roles))
    assert verdicts(result) == {"k8s:prod:RoleBinding/batch/dana": "fail",
                                "k8s:prod:RoleBinding/payments/owner": "fail"}
    details = sorted(f.detail for f in result.findings)
    assert details == ["grants ClusterRole superuser (every verb on every resource) to User:dana",
                       "grants Role ns-owner (every verb on every resource) to Group:payments-leads"]


def test_no_admin_binding_passes_for_the_cluster():
    result = evaluate("kubernetes.cluster_admin_bindings", rbac(crbs=[
        binding("view", "ClusterRole", "view", [subject("Group", "everyone")])]))
    assert result.status.value == "pass"
    assert verdicts(result) == {"k8s:prod": "pass"}


def test_unread_roles_make_the_bindings_that_need_them_errors_never_passes():
    rbs = [binding("owner", "Role", "ns-owner", [subject("Group", "leads")], ns="payments")]
    crbs = [binding("ci", "ClusterRole", "cluster-admin", [subject("User", "ci-bot")])]
    result = evaluate("kubernetes.cluster_admin_bindings", rbac(crbs=crbs, rbs=rbs, roles="denied"))
    assert verdicts(result)["k8s:prod:RoleBinding/payments/owner"] == "error"
    assert verdicts(result)["k8s:prod:ClusterRoleBinding/-/ci"] == "fail"   # judged all the same
    assert result.status.value == "fail"
    only_role = evaluate("kubernetes.cluster_admin_bindings", rbac(rbs=rbs, roles="denied"))
    assert only_role.status.value == "error"
    assert any("list roles" in f.detail for f in only_role.findings)
    # cluster-admin by name needs no ClusterRole read; another ClusterRole does
    result = evaluate("kubernetes.cluster_admin_bindings", rbac(crbs=crbs + [
        binding("x", "ClusterRole", "superuser", [subject("User", "x")])], crs="denied"))
    assert verdicts(result)["k8s:prod:ClusterRoleBinding/-/ci"] == "fail"
    assert verdicts(result)["k8s:prod:ClusterRoleBinding/-/x"] == "error"
    assert evaluate("kubernetes.cluster_admin_bindings", rbac(crbs="denied")).status.value == "error"


def test_settings_missing_is_an_error():
    records = rbac(crbs=[binding("ci", "ClusterRole", "cluster-admin", [subject("User", "bot")])])[1:]
    assert evaluate("kubernetes.cluster_admin_bindings", records).status.value == "error"


# --- kubernetes.privileged_workloads -------------------------------------------------------

def app(name: str = "app", **kw) -> dict[str, Any]:
    return container(name, "acme/app:1.0", **kw)


def test_privileged_host_namespaces_and_explicit_escalation_fail():
    pods = [pod("web-1", "shop", [app(escalation=False)]),
            pod("priv-1", "shop", [app(privileged=True)]),
            pod("net-1", "shop", [app()], host_network=True),
            pod("pid-1", "shop", [app()], host_pid=True),
            pod("ipc-1", "shop", [app()], host_ipc=True),
            pod("init-1", "batch", [app()], init=[container("setup", "busybox", escalation=True)]),
            pod("debug-1", "shop", [app()], ephemeral=[container("debugger", "busybox",
                                                                 privileged=True)]),
            pod("unset-1", "shop", [app()]),                       # not set: not judged as allowing
            pod("proxy-1", "kube-system", [app(privileged=True)], host_network=True)]   # system
    result = evaluate("kubernetes.privileged_workloads", [settings(), listed("kubernetes.pods", *pods)])
    assert verdicts(result) == {
        "k8s:prod:Pod/shop/web-1": "pass", "k8s:prod:Pod/shop/priv-1": "fail",
        "k8s:prod:Pod/shop/net-1": "fail", "k8s:prod:Pod/shop/pid-1": "fail",
        "k8s:prod:Pod/shop/ipc-1": "fail", "k8s:prod:Pod/batch/init-1": "fail",
        "k8s:prod:Pod/shop/debug-1": "fail", "k8s:prod:Pod/shop/unset-1": "pass"}
    details = {f.resource.rsplit("/", 1)[-1]: f.detail for f in result.findings}
    assert details["init-1"] == "init container setup allows privilege escalation"
    assert details["debug-1"] == "ephemeral container debugger is privileged"
    assert details["net-1"] == "hostNetwork"


def test_system_namespaces_come_from_the_settings():
    pods = [pod("agent-1", "monitoring", [app()], host_pid=True)]
    assert evaluate("kubernetes.privileged_workloads", [
        settings(), listed("kubernetes.pods", *pods)]).status.value == "fail"
    assert evaluate("kubernetes.privileged_workloads", [
        settings(system=SYSTEM + ["monitoring"]), listed("kubernetes.pods", *pods)]).status.value \
        == "not_applicable"
    assert evaluate("kubernetes.privileged_workloads", [
        settings(), listed("kubernetes.pods", state="denied")]).status.value == "error"


# --- kubernetes.pod_security ---------------------------------------------------------------

def test_pod_security_enforce_label_baseline_or_restricted():
    namespaces = [namespace("kube-system"), namespace("shop", "restricted"),
                  namespace("batch", "baseline"), namespace("legacy", "privileged"),
                  namespace("scratch")]
    result = evaluate("kubernetes.pod_security", [settings(),
                                                  listed("kubernetes.namespaces", *namespaces)])
    assert verdicts(result) == {"k8s:prod:Namespace/-/shop": "pass",
                                "k8s:prod:Namespace/-/batch": "pass",
                                "k8s:prod:Namespace/-/legacy": "fail",
                                "k8s:prod:Namespace/-/scratch": "fail"}
    warn_only = namespace("warned")
    warn_only["metadata"]["labels"]["pod-security.kubernetes.io/warn"] = "restricted"
    assert evaluate("kubernetes.pod_security", [
        settings(), listed("kubernetes.namespaces", warn_only)]).status.value == "fail"
    assert evaluate("kubernetes.pod_security", [
        settings(), listed("kubernetes.namespaces", state="denied")]).status.value == "error"


# --- kubernetes.network_policies -----------------------------------------------------------

def test_every_namespace_running_pods_needs_a_network_policy():
    pods = [pod("web-1", "shop", [app()]), pod("web-2", "shop", [app()]),
            pod("job-1", "batch", [app()], phase="Succeeded"),      # finished: not running
            pod("etl-1", "analytics", [app()], phase="Pending"),
            pod("dns-1", "kube-system", [app()])]
    policies = [network_policy("default-deny", "shop")]
    result = evaluate("kubernetes.network_policies", [
        settings(), listed("kubernetes.pods", *pods), listed("kubernetes.network_policies", *policies)])
    assert verdicts(result) == {"k8s:prod:Namespace/-/analytics": "fail",
                                "k8s:prod:Namespace/-/shop": "pass"}
    assert [f.detail for f in result.findings] == ["1 running pod(s) and no NetworkPolicy",
                                                   "2 running pod(s); NetworkPolicy: default-deny"]


def test_network_policies_unread_is_an_error_and_other_clusters_are_judged():
    records = [settings(), listed("kubernetes.pods", pod("web-1", "shop", [app()])),
               listed("kubernetes.network_policies", state="denied"),
               settings("edge"), listed("kubernetes.pods", pod("web-1", "shop", [app()]), cluster="edge"),
               listed("kubernetes.network_policies", network_policy("deny", "shop"), cluster="edge")]
    result = evaluate("kubernetes.network_policies", records)
    assert result.status.value == "error"
    assert verdicts(result) == {"k8s:prod": "error", "k8s:edge:Namespace/-/shop": "pass"}
