"""Kubernetes: namespaces, pods, RBAC bindings and roles, network policies of every cluster.

For each configured cluster (a kubeconfig context, an EKS cluster, or a server with a token) the
collector lists each kind cluster-wide, every page, into one record per kind: ``{"pages": [<raw
list body>, ...]}``, scope ``k8s:<cluster>``; then ``kubernetes.cluster``: how the cluster was
reached and the settings its controls judge by (the system namespaces and the subjects allowed to
hold cluster-admin), ``unreachable`` (or the failure's state) when the cluster was not reached. A list the credentials may not read is ``denied`` naming the verb and resource;
a cluster that cannot be reached is ``unreachable`` (or ``error``) for that cluster only.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterator

from pydantic import BaseModel

from attest.model import Evidence, EvidenceState
from collectors.base import CollectContext
from collectors.http import Http, HttpError, RetryPolicy
from collectors.kubernetes.api import ConnectFailed, KubeReader, configuration
from collectors.kubernetes.source import (CLUSTER, KINDS, SOURCE, ClusterConfig, Config, Kind,
                                          scope_of, settings)

PAGE_SIZE = 500


class KubernetesCollector:
    source: ClassVar[str] = SOURCE.name
    Config: ClassVar[type[BaseModel]] = Config
    produces: ClassVar[tuple[str, ...]] = SOURCE.produces

    def __init__(self, config: Config, policy: RetryPolicy = RetryPolicy(),
                 page_size: int = PAGE_SIZE, aws_session: Callable[..., Any] | None = None,
                 **timing: Any) -> None:
        """``page_size``: items per list page (``limit``); ``aws_session``: the boto3 session
        factory for EKS clusters; ``timing``: ``sleep`` and ``clock`` for tests."""
        self.config, self.policy, self.page_size = config, policy, page_size
        self.aws_session, self.timing = aws_session, timing
        self.calls = 0      # requests sent to API servers, every cluster (benchmarks, tests)

    def collect(self, ctx: CollectContext) -> Iterator[Evidence]:
        with tempfile.TemporaryDirectory(prefix="attest-kubernetes-") as workdir:
            for cluster in self.config.clusters:
                yield from self._cluster(ctx, cluster, Path(workdir))

    def _cluster(self, ctx: CollectContext, cluster: ClusterConfig, workdir: Path) -> Iterator[Evidence]:
        label = cluster.label
        scope = scope_of(label)
        record = {"name": label, **settings(self.config)}
        failed: tuple[EvidenceState, str] | None = None
        try:
            conf, how = configuration(cluster, workdir, self.aws_session)
        except ConnectFailed as exc:
            failed = (exc.state, exc.detail)
        except Exception as exc:  # noqa: BLE001 - a broken kubeconfig stays with its cluster
            failed = (EvidenceState.ERROR, f"unexpected {type(exc).__name__}: {exc}"[:400])
        if failed is not None:
            state, detail = failed
            ctx.log.warning("kubernetes %s: %s", label, detail)
            for kind in KINDS:
                yield ctx.evidence(kind.evidence, scope, None, state=state,
                                   detail=f"cluster {label}: {detail}",
                                   request={"operation": f"GET {kind.path}"})
            yield ctx.evidence(CLUSTER, scope, {**record, "connection": None}, state=state,
                               detail=f"cluster {label}: {detail}")
            return
        from kubernetes.client import ApiClient
        http = Http(SOURCE.name, scope, policy=self.policy, base_url=conf.host, **self.timing)
        lists: list[Evidence] = []
        try:
            with ApiClient(conf) as api_client:
                reader = KubeReader(api_client, http, self.page_size)
                for kind in KINDS:
                    ctx.progress(f"kubernetes {label}: {kind.resource}")
                    lists.append(ctx.guarded(kind.evidence, scope,
                                             lambda kind=kind: self._list(ctx, reader, kind, scope),
                                             request={"operation": f"GET {kind.path}"}))
                    yield lists[-1]
        finally:
            self.calls += http.calls
        # The cluster as reached: how, and the settings its controls judge by. When no list got
        # an answer at all, neither did the cluster.
        if http.dead is not None and all(e.state is EvidenceState.UNREACHABLE for e in lists):
            yield ctx.evidence(CLUSTER, scope, {**record, "connection": how},
                               state=EvidenceState.UNREACHABLE, detail=http.dead.detail)
        else:
            yield ctx.evidence(CLUSTER, scope, {**record, "connection": how})

    def _list(self, ctx: CollectContext, reader: KubeReader, kind: Kind, scope: str) -> Evidence:
        request: dict[str, Any] = {"operation": f"GET {kind.path}",
                                   "params": {"limit": self.page_size}}
        try:
            paged = reader.list(kind)
        except HttpError as exc:
            return ctx.evidence(kind.evidence, scope, {"pages": []}, state=exc.state,
                                detail=exc.detail, request={**request, "pages": 0})
        request["pages"] = paged.pages
        if paged.broken is not None:
            return ctx.evidence(kind.evidence, scope, {"pages": paged.items},
                                state=EvidenceState.PARTIAL,
                                detail=f"page {paged.pages + 1} failed: {paged.broken.detail}",
                                request=request)
        return ctx.evidence(kind.evidence, scope, {"pages": paged.items}, request=request)
