"""The Kubernetes source: its config section and what it is (no SDK imported here).

Each cluster is reached one of three ways: a kubeconfig ``context``, an ``eks`` cluster (endpoint
and CA from ``eks:DescribeCluster``, a token signed from the AWS credential chain), or a
``server`` URL with a bearer ``token`` and the ``ca_file`` that signed the server's certificate.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from attest.sources import Source
from collectors.base import https_or_loopback, max_retries_field

CLUSTER = "kubernetes.cluster"
NAMESPACES = "kubernetes.namespaces"
PODS = "kubernetes.pods"
CLUSTER_ROLE_BINDINGS = "kubernetes.cluster_role_bindings"
ROLE_BINDINGS = "kubernetes.role_bindings"
CLUSTER_ROLES = "kubernetes.cluster_roles"
ROLES = "kubernetes.roles"
NETWORK_POLICIES = "kubernetes.network_policies"


@dataclass(frozen=True)
class Kind:
    """One list the collector reads: its evidence name, the RBAC resource it needs, its path."""
    evidence: str
    resource: str          # "pods", "clusterrolebindings.rbac.authorization.k8s.io"
    path: str              # GET path of the cluster-wide list
    api: str               # the kubernetes client's API class
    method: str            # its list method

    @property
    def needs(self) -> str:
        """What the credentials need, named in a denied record."""
        return f"RBAC permission to list {self.resource} (get and list, cluster-wide)"


RBAC = "/apis/rbac.authorization.k8s.io/v1"
KINDS: tuple[Kind, ...] = (
    Kind(NAMESPACES, "namespaces", "/api/v1/namespaces", "CoreV1Api", "list_namespace"),
    Kind(PODS, "pods", "/api/v1/pods", "CoreV1Api", "list_pod_for_all_namespaces"),
    Kind(CLUSTER_ROLE_BINDINGS, "clusterrolebindings.rbac.authorization.k8s.io",
         f"{RBAC}/clusterrolebindings", "RbacAuthorizationV1Api", "list_cluster_role_binding"),
    Kind(ROLE_BINDINGS, "rolebindings.rbac.authorization.k8s.io", f"{RBAC}/rolebindings",
         "RbacAuthorizationV1Api", "list_role_binding_for_all_namespaces"),
    Kind(CLUSTER_ROLES, "clusterroles.rbac.authorization.k8s.io", f"{RBAC}/clusterroles",
         "RbacAuthorizationV1Api", "list_cluster_role"),
    Kind(ROLES, "roles.rbac.authorization.k8s.io", f"{RBAC}/roles", "RbacAuthorizationV1Api",
         "list_role_for_all_namespaces"),
    Kind(NETWORK_POLICIES, "networkpolicies.networking.k8s.io",
         "/apis/networking.k8s.io/v1/networkpolicies", "NetworkingV1Api",
         "list_network_policy_for_all_namespaces"),
)

SUBJECT = re.compile(r"^(User|Group):\S+$|^ServiceAccount:[a-z0-9]([-a-z0-9]*[a-z0-9])?/\S+$")
NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")


class EksCluster(BaseModel):
    """``eks: {name: prod-eks, region: us-east-1}``."""
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$")
    region: str = Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d+$")


class ClusterConfig(BaseModel):
    """One cluster: exactly one of ``context``, ``eks`` or ``server`` (with ``token``, and
    ``ca_file`` unless the server's certificate is signed by a public CA)."""
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, description="how findings name the cluster; default: the "
                             "context name, the EKS cluster name or the server's host")
    context: str | None = Field(None, min_length=1, description="a context of the kubeconfig")
    eks: EksCluster | None = None
    server: str | None = Field(None, description="the API server's URL (https)")
    token: SecretStr | None = Field(None, description="a bearer token, as ${ENV_VAR}")
    ca_file: str | None = Field(None, min_length=1, description="PEM file of the CA that signed "
                                "the API server's certificate")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and not NAME.match(value):
            raise ValueError("expected a cluster name of letters, digits, '.', '_' or '-'")
        return value

    @field_validator("server")
    @classmethod
    def _server(cls, value: str | None) -> str | None:
        return None if value is None else https_or_loopback(value, "server URL")

    @model_validator(mode="after")
    def _one_way(self) -> "ClusterConfig":
        ways = [w for w in ("context", "eks", "server") if getattr(self, w) is not None]
        if len(ways) != 1:
            raise ValueError("give exactly one of context, eks or server")
        if self.server is None and (self.token is not None or self.ca_file is not None):
            raise ValueError("token and ca_file go with server, not with context or eks")
        if self.server is not None and self.token is None:
            raise ValueError("a server entry needs a token (as ${ENV_VAR})")
        return self

    @property
    def label(self) -> str:
        """The cluster's name in evidence scopes and findings."""
        if self.name:
            return self.name
        if self.eks is not None:
            return self.eks.name
        # an EKS context is often an ARN, a host may be IPv6: other characters become "-"
        found = self.context if self.context is not None else urlsplit(self.server or "").hostname
        return re.sub(r"[^A-Za-z0-9._-]", "-", found or "cluster")


class Config(BaseModel):
    """The ``kubernetes:`` config section."""
    model_config = ConfigDict(extra="forbid")
    clusters: list[ClusterConfig] = Field(min_length=1)
    system_namespaces: list[str] = ["kube-system", "kube-public", "kube-node-lease"]
    allowed_admin_subjects: list[str] = Field(
        default_factory=list, description='subjects that may hold cluster-admin, e.g. '
        '"Group:platform-admins", "User:alice@example.com", "ServiceAccount:ci/deployer"')
    max_retries: int = max_retries_field()
    max_workers: int = Field(4, ge=1, le=16, description="lists read at once (the kinds of a "
                             "cluster, and the clusters, side by side)")

    @field_validator("allowed_admin_subjects")
    @classmethod
    def _subjects(cls, value: list[str]) -> list[str]:
        bad = [s for s in value if not SUBJECT.match(s)]
        if bad:
            raise ValueError(f"expected Kind:name subjects (User:alice, Group:admins, "
                             f"ServiceAccount:namespace/name), got {bad[0]!r}")
        return value

    @model_validator(mode="after")
    def _unique(self) -> "Config":
        labels = [c.label for c in self.clusters]
        twice = sorted({n for n in labels if labels.count(n) > 1})
        if twice:
            raise ValueError(f"two clusters are named {twice[0]!r}: give each a distinct name")
        return self


def scope_of(cluster: str) -> str:
    """The evidence scope of a cluster, and the prefix of its findings: ``k8s:<cluster>``."""
    return f"k8s:{cluster}"


def settings(config: Config) -> dict[str, Any]:
    return {"system_namespaces": list(config.system_namespaces),
            "allowed_admin_subjects": list(config.allowed_admin_subjects)}


ROLE_NAME = "attest-reader"


def cluster_role_yaml() -> str:
    """The least-privilege ClusterRole (``get`` and ``list`` on exactly the kinds read, no
    Secrets) and its ClusterRoleBinding, generated from KINDS (``attest permissions kubernetes``)."""
    groups: dict[str, list[str]] = {}
    for kind in KINDS:
        name, _, group = kind.resource.partition(".")
        groups.setdefault(group, []).append(name)
    rules = "".join(f"  - apiGroups: [{group or chr(34) * 2}]\n"
                    f"    resources: [{', '.join(names)}]\n"
                    f"    verbs: [get, list]\n" for group, names in groups.items())
    return (f"apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n"
            f"  name: {ROLE_NAME}\nrules:\n{rules}---\n"
            f"apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n"
            f"  name: {ROLE_NAME}\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n"
            f"  kind: ClusterRole\n  name: {ROLE_NAME}\nsubjects:\n"
            f"  - kind: Group                # the EKS access entry's group, or your IdP's group\n"
            f"    name: attest-readers\n    apiGroup: rbac.authorization.k8s.io\n"
            f"  - kind: ServiceAccount       # a `server` entry's token: kubectl -n attest create "
            f"token attest\n    name: attest\n    namespace: attest\n")


SOURCE = Source(
    name="kubernetes", title="Kubernetes", order=50, config=Config,
    collector="collectors.kubernetes.collector:KubernetesCollector",
    produces=(CLUSTER,) + tuple(k.evidence for k in KINDS),
    sdks=("kubernetes", "boto3", "botocore"),   # boto3: EKS clusters' endpoint and token
    demo="collectors.kubernetes.demo:start_demo",
    permissions="collectors.kubernetes.source:cluster_role_yaml",
    reads_with="kubernetes (the official client: kubeconfig contexts, EKS, or a server and token)",
)
