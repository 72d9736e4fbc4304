"""Kubernetes controls: admin bindings, privileged workloads, Pod Security Admission, network
policies.

Every list record holds the raw pages the API server sent (``{"pages": [<list>, ...]}``), scope
``k8s:<cluster>``; ``kubernetes.cluster`` of the same scope carries the settings the scan was
given (system namespaces, subjects allowed to hold cluster-admin). Findings name the cluster and
the object: ``k8s:<cluster>:<Kind>/<namespace>/<name>``, with ``-`` as the namespace of a
cluster-scoped object (``k8s:prod:ClusterRoleBinding/-/ops-admins``, ``k8s:prod:Namespace/-/web``).
"""
from __future__ import annotations

from typing import Any, Iterator

from attest.model import Evidence, Finding, errored, failed, passed
from controls.rules import EvidenceView, rule

CLUSTER = "kubernetes.cluster"
PSA_ENFORCE = "pod-security.kubernetes.io/enforce"
ENFORCING = ("baseline", "restricted")
FINISHED = ("Succeeded", "Failed")     # pods that no longer run


def cluster_of(record: Evidence) -> str:
    return record.scope.split(":", 1)[1]


def resource(cluster: str, kind: str, namespace: str | None, name: str) -> str:
    return f"k8s:{cluster}:{kind}/{namespace or '-'}/{name}"


def items(record: Evidence | None) -> Iterator[dict[str, Any]]:
    for page in ((record.payload or {}).get("pages") or []) if record is not None else []:
        yield from page.get("items") or []


def _meta(obj: dict[str, Any]) -> tuple[str | None, str]:
    meta = obj.get("metadata") or {}
    return meta.get("namespace"), meta.get("name", "?")


def _settings(ev: EvidenceView, record: Evidence) -> dict[str, Any] | None:
    return ev.payload(CLUSTER, record.scope)


# --- kubernetes.cluster_admin_bindings ----------------------------------------------------

def _allows_everything(role: dict[str, Any]) -> bool:
    """One rule with ``*`` in verbs, resources and apiGroups together."""
    return any("*" in (r.get("verbs") or []) and "*" in (r.get("resources") or [])
               and "*" in (r.get("apiGroups") or []) for r in role.get("rules") or [])


def subject_name(subject: dict[str, Any], binding_namespace: str | None) -> str:
    """``User:alice``, ``Group:admins``, ``ServiceAccount:<namespace>/<name>``."""
    kind, name = subject.get("kind", "?"), subject.get("name", "?")
    if kind == "ServiceAccount":
        return f"ServiceAccount:{subject.get('namespace') or binding_namespace or '?'}/{name}"
    return f"{kind}:{name}"


@rule("kubernetes.cluster_admin_bindings")
def cluster_admin_bindings(ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    for crb_record in ev.get("kubernetes.cluster_role_bindings"):
        scope, cluster = crb_record.scope, cluster_of(crb_record)
        settings = _settings(ev, crb_record)
        if settings is None:
            yield errored(scope, "the cluster's settings (kubernetes.cluster) were not recorded")
            continue
        allowed = set(settings.get("allowed_admin_subjects") or [])
        cr_record = ev.one("kubernetes.cluster_roles", scope)
        role_record = ev.one("kubernetes.roles", scope)
        cluster_roles = {_meta(r)[1]: r for r in items(cr_record)}
        roles = {_meta(r): r for r in items(role_record)}
        bindings = [("ClusterRoleBinding", b) for b in items(crb_record)]
        bindings += [("RoleBinding", b) for b in items(ev.one("kubernetes.role_bindings", scope))]
        judged = 0
        for kind, binding in bindings:
            namespace, name = _meta(binding)
            where = resource(cluster, kind, namespace if kind == "RoleBinding" else None, name)
            ref = binding.get("roleRef") or {}
            ref_kind, ref_name = ref.get("kind"), ref.get("name", "?")
            if ref_kind == "ClusterRole" and ref_name == "cluster-admin":
                grants = "cluster-admin"
            elif ref_kind == "ClusterRole":
                if cr_record is None:
                    yield errored(where, f"its ClusterRole {ref_name} was not read")
                    continue
                role = cluster_roles.get(ref_name)
                if role is None or not _allows_everything(role):
                    continue
                grants = f"ClusterRole {ref_name} (every verb on every resource)"
            elif ref_kind == "Role":
                if role_record is None:
                    yield errored(where, f"its Role {namespace}/{ref_name} was not read")
                    continue
                role = roles.get((namespace, ref_name))
                if role is None or not _allows_everything(role):
                    continue
                grants = f"Role {ref_name} (every verb on every resource)"
            else:
                continue
            judged += 1
            subjects = [subject_name(s, namespace) for s in binding.get("subjects") or []]
            outside = [s for s in subjects
                       if s not in allowed and not s.split(":", 1)[1].startswith("system:")]
            if outside:
                yield failed(where, f"grants {grants} to {', '.join(outside)}")
            else:
                yield passed(where, f"grants {grants} only to allowed or system subjects: "
                                    + (", ".join(subjects) or "none"))
        if not judged:
            yield passed(scope, "no binding grants cluster-admin or a role allowing everything")


# --- kubernetes.privileged_workloads -------------------------------------------------------

CONTAINER_LISTS = (("containers", "container"), ("initContainers", "init container"),
                   ("ephemeralContainers", "ephemeral container"))


def pod_problems(pod: dict[str, Any]) -> list[str]:
    spec = pod.get("spec") or {}
    found = [flag for flag in ("hostNetwork", "hostPID", "hostIPC") if spec.get(flag) is True]
    for key, label in CONTAINER_LISTS:
        for container in spec.get(key) or []:
            context = container.get("securityContext") or {}
            if context.get("privileged") is True:
                found.append(f"{label} {container.get('name', '?')} is privileged")
            if context.get("allowPrivilegeEscalation") is True:
                found.append(f"{label} {container.get('name', '?')} allows privilege escalation")
    return found


@rule("kubernetes.privileged_workloads")
def privileged_workloads(ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    for record in ev.get("kubernetes.pods"):
        settings = _settings(ev, record)
        if settings is None:
            yield errored(record.scope, "the cluster's settings (kubernetes.cluster) were not recorded")
            continue
        system = set(settings.get("system_namespaces") or [])
        for pod in items(record):
            namespace, name = _meta(pod)
            if namespace in system:
                continue
            where = resource(cluster_of(record), "Pod", namespace, name)
            problems = pod_problems(pod)
            if problems:
                yield failed(where, "; ".join(problems))
            else:
                yield passed(where, "no privileged container, privilege escalation or host namespace")


# --- kubernetes.pod_security ---------------------------------------------------------------

@rule("kubernetes.pod_security")
def pod_security(ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    for record in ev.get("kubernetes.namespaces"):
        settings = _settings(ev, record)
        if settings is None:
            yield errored(record.scope, "the cluster's settings (kubernetes.cluster) were not recorded")
            continue
        system = set(settings.get("system_namespaces") or [])
        for namespace in items(record):
            _, name = _meta(namespace)
            if name in system:
                continue
            where = resource(cluster_of(record), "Namespace", None, name)
            level = ((namespace.get("metadata") or {}).get("labels") or {}).get(PSA_ENFORCE)
            if level in ENFORCING:
                yield passed(where, f"Pod Security Admission enforces {level}")
            elif level:
                yield failed(where, f"Pod Security Admission enforces {level} "
                                    "(baseline or restricted required)")
            else:
                yield failed(where, f"no {PSA_ENFORCE} label: Pod Security Admission enforces "
                                    "nothing here")


# --- kubernetes.network_policies -----------------------------------------------------------

@rule("kubernetes.network_policies")
def network_policies(ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    for record in ev.get("kubernetes.pods"):
        settings = _settings(ev, record)
        if settings is None:
            yield errored(record.scope, "the cluster's settings (kubernetes.cluster) were not recorded")
            continue
        system = set(settings.get("system_namespaces") or [])
        running: dict[str, int] = {}
        for pod in items(record):
            namespace, _ = _meta(pod)
            if namespace and namespace not in system \
                    and (pod.get("status") or {}).get("phase") not in FINISHED:
                running[namespace] = running.get(namespace, 0) + 1
        if not running:
            continue
        policies_record = ev.one("kubernetes.network_policies", record.scope)
        if policies_record is None:
            continue   # unreadable: the engine reports it as an error for this cluster
        policies: dict[str, list[str]] = {}
        for policy in items(policies_record):
            namespace, name = _meta(policy)
            policies.setdefault(namespace or "", []).append(name)
        for namespace, count in sorted(running.items()):
            where = resource(cluster_of(record), "Namespace", None, namespace)
            names = sorted(policies.get(namespace, []))
            if names:
                yield passed(where, f"{count} running pod(s); NetworkPolicy: {', '.join(names)}")
            else:
                yield failed(where, f"{count} running pod(s) and no NetworkPolicy")
