"""A Kubernetes API server fake (https, its own throwaway CA) for the demo and the tests.

Answers the cluster-wide lists attest reads, with the shapes of the Kubernetes OpenAPI
description: ``GET /api/v1/namespaces``, ``/api/v1/pods``,
``/apis/rbac.authorization.k8s.io/v1/{clusterrolebindings,rolebindings,clusterroles,roles}`` and
``/apis/networking.k8s.io/v1/networkpolicies``, each a ``<Kind>List`` (``apiVersion``, ``kind``,
``metadata.resourceVersion``, ``items``) sorted by namespace and name as the API server's storage
keys are. ``limit`` cuts a page and ``metadata.continue`` (an opaque token) plus
``remainingItemCount`` say what is left; ``continue`` resumes after the last key. Errors are
``Status`` objects: 401 for an unknown bearer token, 403 for a resource the identity may not list
(``KubeWorld.forbidden``), 429 with ``Retry-After`` (``throttle``), 500 on a chosen page.

It serves https only, with a certificate for 127.0.0.1 signed by a CA made for the run
(:func:`make_ca`, made by :mod:`attest.demo.tls`); clients trust it through the cluster's ``ca_file`` or a kubeconfig's
``certificate-authority``, never by skipping verification. The state is a plain
:class:`KubeWorld`, built with :func:`namespace`, :func:`pod`, :func:`binding`, :func:`role` and
:func:`network_policy`.
"""
from __future__ import annotations

import base64
import json
import shutil
import ssl
import tempfile
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

from werkzeug.wrappers import Request, Response

from attest.demo import DemoSource
from attest.demo.http import LocalServer
from attest.model import isoformat

RBAC, NETWORKING = "rbac.authorization.k8s.io", "networking.k8s.io"
# path -> (resource, API group, list kind, apiVersion)
LISTS = {
    "/api/v1/namespaces": ("namespaces", "", "NamespaceList", "v1"),
    "/api/v1/pods": ("pods", "", "PodList", "v1"),
    f"/apis/{RBAC}/v1/clusterrolebindings": ("clusterrolebindings", RBAC, "ClusterRoleBindingList", f"{RBAC}/v1"),
    f"/apis/{RBAC}/v1/rolebindings": ("rolebindings", RBAC, "RoleBindingList", f"{RBAC}/v1"),
    f"/apis/{RBAC}/v1/clusterroles": ("clusterroles", RBAC, "ClusterRoleList", f"{RBAC}/v1"),
    f"/apis/{RBAC}/v1/roles": ("roles", RBAC, "RoleList", f"{RBAC}/v1"),
    f"/apis/{NETWORKING}/v1/networkpolicies": ("networkpolicies", NETWORKING, "NetworkPolicyList",
                                              f"{NETWORKING}/v1"),
}
T0 = datetime(2025, 3, 4, 9, 30, tzinfo=timezone.utc)   # when the demo cluster was created


@dataclass
class KubeWorld:
    tokens: set[str] = field(default_factory=lambda: {"fake-k8s-token"})
    user: str = "system:serviceaccount:attest:attest"
    eks_cluster: str | None = None         # also accept EKS tokens (k8s-aws-v1.<presigned URL>)
    objects: dict[str, list[dict[str, Any]]] = field(default_factory=dict)   # resource -> items
    forbidden: set[str] = field(default_factory=set)   # resources this identity may not list
    fail_pages: dict[str, int] = field(default_factory=dict)   # resource -> page number (0-based)
    throttle: int = 0                      # answer the next N requests 429 (API Priority and Fairness)
    resource_version: int = 48213
    eks_tokens: list[str] = field(default_factory=list)   # the presigned URLs EKS tokens carried
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, resource: str, *objs: dict[str, Any]) -> None:
        self.objects.setdefault(resource, []).extend(objs)


# --- objects, in the shapes of the OpenAPI description ------------------------------------

def _meta(kind: str, name: str, namespace: str | None = None, *, labels: dict[str, str] | None = None,
          created: datetime = T0, **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    meta.update({"uid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"k8s/{kind}/{namespace}/{name}")),
                 "resourceVersion": str(1000 + len(name) * 7 + len(namespace or "") * 3),
                 "creationTimestamp": isoformat(created)})
    if labels:
        meta["labels"] = dict(labels)
    meta.update(extra)
    return meta


def namespace(name: str, enforce: str | None = None, **labels: str) -> dict[str, Any]:
    """A Namespace; ``enforce``: its Pod Security Admission ``enforce`` level label."""
    all_labels = {"kubernetes.io/metadata.name": name, **labels}
    if enforce:
        all_labels["pod-security.kubernetes.io/enforce"] = enforce
        all_labels["pod-security.kubernetes.io/enforce-version"] = "latest"
    return {"metadata": _meta("Namespace", name, labels=all_labels),
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}


def container(name: str, image: str, *, privileged: bool | None = None,
              escalation: bool | None = None, non_root: bool | None = None) -> dict[str, Any]:
    """A Container; the securityContext carries only the fields given."""
    out: dict[str, Any] = {"name": name, "image": image, "imagePullPolicy": "IfNotPresent",
                           "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
                           "terminationMessagePath": "/dev/termination-log",
                           "terminationMessagePolicy": "File"}
    context: dict[str, Any] = {}
    if privileged is not None:
        context["privileged"] = privileged
    if escalation is not None:
        context["allowPrivilegeEscalation"] = escalation
    if non_root is not None:
        context["runAsNonRoot"] = non_root
    if context:
        out["securityContext"] = context
    return out


def pod(name: str, ns: str, containers: list[dict[str, Any]], *, phase: str = "Running",
        init: list[dict[str, Any]] | None = None, ephemeral: list[dict[str, Any]] | None = None,
        host_network: bool = False, host_pid: bool = False, host_ipc: bool = False,
        owner: tuple[str, str] | None = None, node: str = "ip-10-20-1-17.ec2.internal",
        labels: dict[str, str] | None = None) -> dict[str, Any]:
    """A Pod with its spec and status; ``owner``: (kind, name) of its controller."""
    extra: dict[str, Any] = {}
    if owner:
        extra["ownerReferences"] = [{"apiVersion": "apps/v1" if owner[0] != "Job" else "batch/v1",
                                     "kind": owner[0], "name": owner[1], "controller": True,
                                     "blockOwnerDeletion": True,
                                     "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{ns}/{owner[1]}"))}]
    spec: dict[str, Any] = {"containers": containers, "restartPolicy": "Always" if phase == "Running"
                            else "Never", "dnsPolicy": "ClusterFirst", "nodeName": node,
                            "serviceAccountName": "default", "schedulerName": "default-scheduler",
                            "terminationGracePeriodSeconds": 30, "enableServiceLinks": True}
    if init:
        spec["initContainers"] = init
    if ephemeral:
        spec["ephemeralContainers"] = ephemeral
    for key, on in (("hostNetwork", host_network), ("hostPID", host_pid), ("hostIPC", host_ipc)):
        if on:
            spec[key] = True
    started = isoformat(T0 + timedelta(days=200))
    status = {"phase": phase, "hostIP": "10.20.1.17", "podIP": "10.20.1.17" if host_network
              else f"10.20.{len(ns)}.{len(name) * 3 % 250}", "startTime": started, "qosClass": "Burstable",
              "conditions": [{"type": "Ready", "status": "True" if phase == "Running" else "False",
                              "lastProbeTime": None, "lastTransitionTime": started}]}
    return {"metadata": _meta("Pod", name, ns, labels=labels or {"app": name.rsplit("-", 2)[0]},
                              **extra), "spec": spec, "status": status}


def role(name: str, rules: list[dict[str, Any]], ns: str | None = None,
         labels: dict[str, str] | None = None) -> dict[str, Any]:
    """A ClusterRole (no ``ns``) or a Role; ``rules``: PolicyRule objects."""
    return {"metadata": _meta("Role" if ns else "ClusterRole", name, ns, labels=labels),
            "rules": rules}


def rule(verbs: list[str], resources: list[str], groups: list[str] | None = None) -> dict[str, Any]:
    return {"apiGroups": [""] if groups is None else groups, "resources": resources, "verbs": verbs}


def subject(kind: str, name: str, ns: str | None = None) -> dict[str, Any]:
    out = {"kind": kind, "name": name}
    if kind == "ServiceAccount":
        out["namespace"] = ns or "default"
    else:
        out["apiGroup"] = RBAC
    return out


def binding(name: str, role_kind: str, role_name: str, subjects: list[dict[str, Any]],
            ns: str | None = None) -> dict[str, Any]:
    """A ClusterRoleBinding (no ``ns``) or a RoleBinding, referring to a ClusterRole or Role."""
    return {"metadata": _meta("RoleBinding" if ns else "ClusterRoleBinding", name, ns),
            "roleRef": {"apiGroup": RBAC, "kind": role_kind, "name": role_name},
            "subjects": subjects}


def network_policy(name: str, ns: str, *, ingress_from: str | None = None) -> dict[str, Any]:
    """A NetworkPolicy: default-deny ingress, or ingress allowed from one namespace."""
    spec: dict[str, Any] = {"podSelector": {}, "policyTypes": ["Ingress"]}
    if ingress_from:
        spec["ingress"] = [{"from": [{"namespaceSelector": {"matchLabels": {
            "kubernetes.io/metadata.name": ingress_from}}}]}]
    return {"metadata": _meta("NetworkPolicy", name, ns), "spec": spec}


# --- the API server -----------------------------------------------------------------------

def _status(code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {},
                           "status": "Failure", "message": message, "reason": reason, "code": code}
    if details:
        out["details"] = details
    return out


def _json(code: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status=code, headers=headers or {},
                    content_type="application/json")


def _key(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


def eks_token_url(token: str) -> str | None:
    """The presigned STS URL inside an EKS token, if it has that shape."""
    if not token.startswith("k8s-aws-v1."):
        return None
    encoded = token[len("k8s-aws-v1."):]
    try:
        url = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    query = parse_qs(urlsplit(url).query)
    if query.get("Action") != ["GetCallerIdentity"] or \
            "x-k8s-aws-id" not in query.get("X-Amz-SignedHeaders", [""])[0].split(";"):
        return None
    return url


class FakeKubernetes:
    """The WSGI app over a :class:`KubeWorld`."""

    def __init__(self, world: KubeWorld) -> None:
        self.world = world

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        return self.answer(Request(environ))(environ, start_response)

    def _authenticated(self, request: Request) -> bool:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return False
        token = header[len("Bearer "):]
        if token in self.world.tokens:
            return True
        url = eks_token_url(token) if self.world.eks_cluster else None
        if url is not None:
            with self.world.lock:
                self.world.eks_tokens.append(url)
            return True
        return False

    def answer(self, request: Request) -> Response:
        w = self.world
        if not self._authenticated(request):
            return _json(401, _status(401, "Unauthorized", "Unauthorized"))
        with w.lock:
            if w.throttle > 0:
                w.throttle -= 1
                return _json(429, _status(429, "TooManyRequests", "Too many requests, please try "
                                          "again later."), {"Retry-After": "1"})
        listed = LISTS.get(request.path)
        if request.method != "GET" or listed is None:
            return _json(404, _status(404, "NotFound", "the server could not find the requested "
                                      "resource"))
        resource, group, list_kind, api_version = listed
        if resource in w.forbidden:
            return _json(403, _status(
                403, "Forbidden", f"{resource}{'.' + group if group else ''} is forbidden: User "
                f"\"{w.user}\" cannot list resource \"{resource}\" in API group \"{group}\" at the "
                "cluster scope", {"group": group, "kind": resource} if group else {"kind": resource}))
        return self._list(request, resource, list_kind, api_version)

    def _list(self, request: Request, resource: str, list_kind: str, api_version: str) -> Response:
        w = self.world
        items = sorted(w.objects.get(resource, []), key=_key)
        start, page = "", 0
        token = request.args.get("continue")
        if token:
            try:
                state = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
                start, page = state["start"], int(state.get("page", 0))
            except (ValueError, KeyError, TypeError):
                return _json(400, _status(400, "BadRequest", "continue key is not valid: "
                                          "incorrect encoded start resourceVersion (version "
                                          "meta.k8s.io/v1)"))
            items = [i for i in items if _key(i) >= start]
        if w.fail_pages.get(resource) == page:
            return _json(500, _status(500, "InternalError", "Internal error occurred: etcdserver: "
                                      "request timed out"))
        meta: dict[str, Any] = {"resourceVersion": str(w.resource_version)}
        limit = request.args.get("limit", type=int)
        if limit and limit > 0 and len(items) > limit:
            rest = items[limit:]
            items = items[:limit]
            state = {"v": "meta.k8s.io/v1", "rv": w.resource_version, "page": page + 1,
                     "start": _key(rest[0])}
            meta["continue"] = base64.urlsafe_b64encode(json.dumps(state).encode()).decode().rstrip("=")
            meta["remainingItemCount"] = len(rest)
        return _json(200, {"kind": list_kind, "apiVersion": api_version, "metadata": meta,
                           "items": items})


# --- TLS: a CA made for the run ------------------------------------------------------------

def make_ca(folder: Path) -> tuple[Path, ssl.SSLContext]:
    """A throwaway CA in ``folder`` (see :mod:`attest.demo.tls`): its file, and a server context
    whose certificate, for 127.0.0.1 and localhost, that CA signed."""
    from attest.demo.tls import make_tls
    tls = make_tls("attest demo kubernetes", folder=folder)
    return tls.ca_file, tls.server_context()


@dataclass
class FakeCluster:
    """A running fake API server: its URL, the CA file that trusts it, its world and log."""
    world: KubeWorld
    url: str
    ca_file: Path
    server: LocalServer
    folder: Path

    def stop(self) -> None:
        self.server.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


def start_cluster(world: KubeWorld) -> FakeCluster:
    folder = Path(tempfile.mkdtemp(prefix="attest-fake-k8s-"))
    try:
        ca_file, context = make_ca(folder)
        server = LocalServer(FakeKubernetes(world), ssl_context=context)
        url = server.start()
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return FakeCluster(world, url, ca_file, server, folder)


# --- Acme Rockets' production cluster ------------------------------------------------------

def _system(world: KubeWorld) -> None:
    """What every cluster has: the system namespaces, their pods, the built-in roles."""
    world.add("namespaces", namespace("kube-system"), namespace("kube-public"),
              namespace("kube-node-lease"), namespace("default"))
    world.add("pods",
              pod("coredns-5b9d8c6f7d-4xk2p", "kube-system",
                  [container("coredns", "coredns/coredns:1.11.3", escalation=False)],
                  owner=("ReplicaSet", "coredns-5b9d8c6f7d")),
              pod("kube-proxy-7lq9m", "kube-system",   # a system agent: exempt by namespace
                  [container("kube-proxy", "registry.k8s.io/kube-proxy:v1.34.2", privileged=True)],
                  host_network=True, owner=("DaemonSet", "kube-proxy")),
              pod("aws-node-k2w8d", "kube-system",
                  [container("aws-node", "amazon-k8s-cni:v1.19.2", privileged=False)],
                  init=[container("aws-vpc-cni-init", "amazon-k8s-cni-init:v1.19.2", privileged=True)],
                  host_network=True, owner=("DaemonSet", "aws-node")))
    everything = rule(["*"], ["*"], ["*"])
    world.add("clusterroles",
              role("cluster-admin", [everything, {"nonResourceURLs": ["*"], "verbs": ["*"]}],
                   labels={"kubernetes.io/bootstrapping": "rbac-defaults"}),
              role("admin", [rule(["create", "delete", "get", "list", "patch", "update", "watch"],
                                  ["pods", "services", "configmaps", "secrets"]),
                             rule(["*"], ["deployments", "statefulsets"], ["apps"])],
                   labels={"kubernetes.io/bootstrapping": "rbac-defaults"}),
              role("view", [rule(["get", "list", "watch"], ["pods", "services", "configmaps"])],
                   labels={"kubernetes.io/bootstrapping": "rbac-defaults"}),
              role("system:node-proxier", [rule(["list", "watch"], ["endpoints", "services"])],
                   labels={"kubernetes.io/bootstrapping": "rbac-defaults"}))
    world.add("clusterrolebindings",
              binding("cluster-admin", "ClusterRole", "cluster-admin",
                      [subject("Group", "system:masters")]),
              binding("system:node-proxier", "ClusterRole", "system:node-proxier",
                      [subject("User", "system:kube-proxy")]))


def acme_world() -> KubeWorld:
    """Acme Rockets' production cluster: a realistic mix, with one failure or more seeded in
    three of the four controls (see EXPECTED)."""
    world = KubeWorld(tokens={"acme-demo-k8s-token"})
    _system(world)
    world.add("namespaces",
              namespace("payments", "restricted", team="payments"),
              namespace("launch-control", "baseline", team="flight"),
              namespace("monitoring", "baseline", team="platform"),
              namespace("telemetry", team="flight"),                # no Pod Security label
              namespace("legacy-batch", "privileged", team="legacy"),
              namespace("ci", "baseline", team="platform"))
    hardened = dict(escalation=False, non_root=True)
    world.add("pods",
              pod("checkout-api-7c9d8b5f4-x2x4z", "payments",
                  [container("checkout-api", "acme/checkout-api:4.12.0", **hardened)],
                  owner=("ReplicaSet", "checkout-api-7c9d8b5f4")),
              pod("checkout-api-7c9d8b5f4-q8m1r", "payments",
                  [container("checkout-api", "acme/checkout-api:4.12.0", **hardened)],
                  owner=("ReplicaSet", "checkout-api-7c9d8b5f4")),
              pod("launch-scheduler-0", "launch-control",
                  [container("scheduler", "acme/launch-scheduler:2.3.1", escalation=False)],
                  owner=("StatefulSet", "launch-scheduler")),
              pod("node-exporter-8fz2k", "monitoring",   # a host agent outside kube-system
                  [container("node-exporter", "prom/node-exporter:v1.9.1")],
                  host_network=True, host_pid=True, owner=("DaemonSet", "node-exporter")),
              pod("prometheus-0", "monitoring",
                  [container("prometheus", "prom/prometheus:v3.4.0", **hardened)],
                  owner=("StatefulSet", "prometheus")),
              pod("telemetry-ingest-6f8d7c9b5-hw2lp", "telemetry",
                  [container("ingest", "acme/telemetry-ingest:1.8.4")],
                  owner=("ReplicaSet", "telemetry-ingest-6f8d7c9b5")),
              pod("nightly-reconcile-29410560-7qg5d", "legacy-batch",
                  [container("reconcile", "acme/reconcile:0.9.7")],
                  init=[container("mount-fix", "busybox:1.36", escalation=True)],
                  phase="Running", owner=("Job", "nightly-reconcile-29410560")),
              pod("nightly-reconcile-29409120-b2kxt", "legacy-batch",   # finished last night
                  [container("reconcile", "acme/reconcile:0.9.7")], phase="Succeeded",
                  owner=("Job", "nightly-reconcile-29409120")),
              pod("runner-5d4c8f7b6-zt9xk", "ci",
                  [container("runner", "acme/ci-runner:3.2.0", **hardened)],
                  owner=("ReplicaSet", "runner-5d4c8f7b6")))
    world.add("networkpolicies",
              network_policy("default-deny", "payments"),
              network_policy("allow-from-ingress", "payments", ingress_from="ingress-nginx"),
              network_policy("default-deny", "launch-control"),
              network_policy("allow-prometheus", "monitoring", ingress_from="monitoring"),
              network_policy("default-deny", "telemetry"),
              network_policy("default-deny", "legacy-batch"),
              network_policy("default-deny", "ci"))
    world.add("clusterroles",
              role("legacy-superuser", [rule(["*"], ["*"], ["*"])]),
              role("deployer", [rule(["get", "list", "create", "update", "patch"],
                                     ["deployments"], ["apps"])]))
    world.add("roles",
              role("payments-operator", [rule(["get", "list", "watch"], ["pods", "pods/log"]),
                                         rule(["*"], ["deployments"], ["apps"])], ns="payments"))
    world.add("clusterrolebindings",
              binding("platform-admins", "ClusterRole", "cluster-admin",
                      [subject("Group", "platform-admins")]),
              binding("ci-deployer-admin", "ClusterRole", "cluster-admin",
                      [subject("ServiceAccount", "deployer", "ci")]),
              binding("ci-deployer", "ClusterRole", "deployer",
                      [subject("ServiceAccount", "deployer", "ci")]))
    world.add("rolebindings",
              binding("reconcile-superuser", "ClusterRole", "legacy-superuser",
                      [subject("User", "dana@acmerockets.example")], ns="legacy-batch"),
              binding("payments-operators", "Role", "payments-operator",
                      [subject("Group", "payments-oncall")], ns="payments"),
              binding("view", "ClusterRole", "view", [subject("Group", "flight-team")],
                      ns="telemetry"))
    return world


CLUSTER = "acme-prod"
EXPECTED = {
    "kubernetes.cluster_admin_bindings": "fail",   # ci/deployer holds cluster-admin; dana a * role
    "kubernetes.privileged_workloads": "fail",     # node-exporter (hostNetwork, hostPID), mount-fix
    "kubernetes.pod_security": "fail",             # telemetry unlabelled, legacy-batch privileged
    "kubernetes.network_policies": "pass",         # every namespace running pods has a policy
}
TOKEN_ENV = "ATTEST_DEMO_K8S_TOKEN"


def section(cluster: FakeCluster, name: str = CLUSTER) -> dict[str, Any]:
    """The ``kubernetes:`` config section that points attest at a fake cluster."""
    return {"clusters": [{"name": name, "server": cluster.url, "token": "${%s}" % TOKEN_ENV,
                          "ca_file": str(cluster.ca_file)}],
            "allowed_admin_subjects": ["Group:platform-admins"]}


def start_demo(now: datetime) -> DemoSource:
    world = acme_world()
    cluster = start_cluster(world)
    return DemoSource(section=section(cluster), env={TOKEN_ENV: next(iter(world.tokens))},
                      expected=dict(EXPECTED), stop=cluster.stop,
                      extra={"world": world, "cluster": cluster})
