"""Kubernetes: namespaces, pods, RBAC bindings and roles, network policies of every cluster.

For each configured cluster (a kubeconfig context, an EKS cluster, or a server with a token) the
collector lists each kind cluster-wide, every page, into one record per kind: ``{"pages": [<raw
list body>, ...]}``, scope ``k8s:<cluster>``; then ``kubernetes.cluster``: how the cluster was
reached and the settings its controls judge by (the system namespaces and the subjects allowed to
hold cluster-admin), ``unreachable`` (or the failure's state) when the cluster was not reached.
A list the credentials may not read is ``denied`` naming the verb and resource; a cluster that
cannot be reached is ``unreachable`` (or ``error``) for that cluster only. The lists (of one
cluster, and of every cluster) are read ``max_workers`` at once, each one's pages in order; the
records come out cluster by cluster in a fixed order.
"""
from __future__ import annotations

import contextlib
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
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

    def __init__(self, config: Config, policy: RetryPolicy | None = None,
                 page_size: int = PAGE_SIZE, aws_session: Callable[..., Any] | None = None,
                 **timing: Any) -> None:
        """``page_size``: items per list page (``limit``); ``aws_session``: the boto3 session
        factory for EKS clusters; ``timing``: ``sleep`` and ``clock`` for tests."""
        self.config, self.page_size = config, page_size
        self.policy = policy or RetryPolicy.of(config)
        self.aws_session, self.timing = aws_session, timing
        self.calls = 0      # requests sent to API servers, every cluster (benchmarks, tests)

    def collect(self, ctx: CollectContext) -> Iterator[Evidence]:
        # Every cluster's lists go into one pool of max_workers threads, so that the lists of a
        # cluster, and the clusters, are read side by side; the records are yielded cluster by
        # cluster, each cluster's kinds in a fixed order, whatever order the reads finish in.
        with tempfile.TemporaryDirectory(prefix="attest-kubernetes-") as workdir, \
                contextlib.ExitStack() as clients, \
                ThreadPoolExecutor(self.config.max_workers,
                                   thread_name_prefix="attest-kubernetes") as pool:
            started = [self._start(ctx, cluster, Path(workdir), pool, clients)
                       for cluster in self.config.clusters]
            for cluster in started:
                yield from self._finish(ctx, cluster)

    def _start(self, ctx: CollectContext, cluster: ClusterConfig, workdir: Path,
               pool: ThreadPoolExecutor, clients: contextlib.ExitStack) -> "_Started":
        """Reach one cluster and hand its lists to the pool (or note why it cannot be reached)."""
        label = cluster.label
        started = _Started(label, scope_of(label), {"name": label, **settings(self.config)})
        try:
            conf, started.how = configuration(cluster, workdir, self.aws_session)
        except ConnectFailed as exc:
            started.failed = (exc.state, exc.detail)
        except Exception as exc:  # noqa: BLE001 - a broken kubeconfig stays with its cluster
            started.failed = (EvidenceState.ERROR, f"unexpected {type(exc).__name__}: {exc}"[:400])
        if started.failed is not None:
            return started
        from kubernetes.client import ApiClient
        # as many pooled connections as reads may be in flight (urllib3 would discard the rest)
        conf.connection_pool_maxsize = max(conf.connection_pool_maxsize or 0,
                                           self.config.max_workers)
        started.http = Http(SOURCE.name, started.scope, policy=self.policy, base_url=conf.host,
                            **self.timing)
        reader = KubeReader(clients.enter_context(ApiClient(conf)), started.http, self.page_size)
        ctx.progress(f"kubernetes {label}: {', '.join(kind.resource.split('.')[0] for kind in KINDS)}")
        started.lists = [pool.submit(ctx.guarded, kind.evidence, started.scope,
                                     lambda kind=kind: self._list(ctx, reader, kind, started.scope),
                                     {"operation": f"GET {kind.path}"}) for kind in KINDS]
        return started

    def _finish(self, ctx: CollectContext, cluster: "_Started") -> Iterator[Evidence]:
        label, scope, record = cluster.label, cluster.scope, cluster.record
        if cluster.failed is not None:
            state, detail = cluster.failed
            ctx.log.warning("kubernetes %s: %s", label, detail)
            for kind in KINDS:
                yield ctx.evidence(kind.evidence, scope, None, state=state,
                                   detail=f"cluster {label}: {detail}",
                                   request={"operation": f"GET {kind.path}"})
            yield ctx.evidence(CLUSTER, scope, {**record, "connection": None}, state=state,
                               detail=f"cluster {label}: {detail}")
            return
        http = cluster.http
        assert http is not None
        lists: list[Evidence] = []
        try:
            for future in cluster.lists:
                lists.append(future.result())
                yield lists[-1]
        finally:
            self.calls += http.calls
        # The cluster as reached: how, and the settings its controls judge by. When no list got
        # an answer at all, neither did the cluster.
        if http.dead is not None and all(e.state is EvidenceState.UNREACHABLE for e in lists):
            yield ctx.evidence(CLUSTER, scope, {**record, "connection": cluster.how},
                               state=EvidenceState.UNREACHABLE, detail=http.dead.detail)
        else:
            yield ctx.evidence(CLUSTER, scope, {**record, "connection": cluster.how})

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


@dataclass
class _Started:
    """One cluster whose lists are being read: its name, scope, settings record, how it was
    reached, and the pending list reads (in KINDS order); or why it could not be reached."""
    label: str
    scope: str
    record: dict[str, Any]
    how: dict[str, Any] | None = None
    failed: tuple[EvidenceState, str] | None = None
    http: Http | None = None
    lists: list[Future[Evidence]] = field(default_factory=list)
