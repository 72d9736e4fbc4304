"""The Kubernetes client as attest uses it: one configured client per cluster, raw paged lists.

attest calls the official ``kubernetes`` client's list methods (it builds the URL, adds the
bearer token or client certificate, verifies the server's certificate) with
``_preload_content=False``, so each evidence payload is the raw JSON the API server sent, not a
model dump. Retries (429 from API Priority and Fairness, 5xx, no answer), ``limit``/``continue``
paging and failure states are the shared HTTP layer's (:mod:`collectors.http`).
"""
from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path
from typing import Any, Callable

from attest.model import EvidenceState
from collectors.http import TIMEOUTS, Http, HttpError, Paged, Request, Response, Unreachable
from collectors.kubernetes import eks
from collectors.kubernetes.source import ClusterConfig, Kind, scope_of

DEFAULT_KUBECONFIG = "~/.kube/config"


class ConnectFailed(Exception):
    """A cluster that could not even be addressed: its evidence all carries this state."""

    def __init__(self, state: EvidenceState, detail: str) -> None:
        super().__init__(detail)
        self.state, self.detail = state, detail


def kubeconfig_files() -> str:
    """``$KUBECONFIG`` (one or more files, ``:``-separated), else ``~/.kube/config``; read when
    a scan runs, not when the client is imported."""
    return os.environ.get("KUBECONFIG") or DEFAULT_KUBECONFIG


def configuration(cluster: ClusterConfig, workdir: Path,
                  aws_session: Callable[..., Any] | None = None) -> tuple[Any, dict[str, Any]]:
    """The client ``Configuration`` for one cluster, and how it was reached (for the evidence).

    Raises :class:`ConnectFailed` when the cluster cannot be addressed (no such context, a
    kubeconfig that skips TLS verification, an EKS cluster that cannot be described...)."""
    from kubernetes import client

    conf = client.Configuration()
    if cluster.server is not None:
        conf.host = cluster.server
        assert cluster.token is not None
        conf.api_key = {"authorization": f"Bearer {cluster.token.get_secret_value()}"}
        if cluster.ca_file:
            ca = Path(cluster.ca_file).expanduser()
            if not ca.is_file():
                raise ConnectFailed(EvidenceState.ERROR, f"ca_file {ca} is not a file")
            conf.ssl_ca_cert = str(ca)
        how: dict[str, Any] = {"server": cluster.server, "ca_file": cluster.ca_file}
    elif cluster.context is not None:
        how = _from_kubeconfig(conf, cluster.context)
    else:
        how = _from_eks(conf, cluster, workdir, aws_session)
    if not conf.verify_ssl:
        raise ConnectFailed(EvidenceState.ERROR, f"context {cluster.context} sets "
                            "insecure-skip-tls-verify: attest verifies every API server's "
                            "certificate; give the cluster's certificate-authority instead")
    conf.verify_ssl = True
    conf.retries = False          # the shared HTTP layer retries, not urllib3
    return conf, how


def _from_kubeconfig(conf: Any, context: str) -> dict[str, Any]:
    from kubernetes import config as kube_config
    files = kubeconfig_files()
    try:
        kube_config.load_kube_config(config_file=files, context=context,
                                     client_configuration=conf, persist_config=False)
    except (kube_config.ConfigException, OSError, ValueError) as exc:
        raise ConnectFailed(EvidenceState.ERROR,
                            f"kubeconfig {files}, context {context}: {exc}"[:400]) from None
    return {"context": context, "kubeconfig": files}


def _from_eks(conf: Any, cluster: ClusterConfig, workdir: Path,
              aws_session: Callable[..., Any] | None) -> dict[str, Any]:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    assert cluster.eks is not None
    name, region = cluster.eks.name, cluster.eks.region
    session = (aws_session or boto3.Session)(region_name=region)
    try:
        described = eks.describe(session, name, region)
        bearer = eks.token(session, name, region)
    except (BotoCoreError, ClientError) as exc:
        state, detail = eks.failure(exc, name, region)
        eks.record_failure(exc, scope_of(cluster.label), name, region, state, detail)
        raise ConnectFailed(state, detail) from None
    endpoint = described.get("endpoint")
    authority = (described.get("certificateAuthority") or {}).get("data")
    if not endpoint or not authority:
        raise ConnectFailed(EvidenceState.ERROR, f"EKS cluster {name} in {region} has no endpoint "
                            f"or certificate authority yet (status {described.get('status')})")
    try:
        pem = base64.b64decode(authority, validate=True)
    except ValueError:
        raise ConnectFailed(EvidenceState.ERROR, f"EKS cluster {name} in {region}: its "
                            "certificateAuthority.data is not base64") from None
    ca = workdir / f"eks-{region}-{name}-ca.crt"
    ca.write_bytes(pem)
    conf.host = endpoint.rstrip("/")
    conf.ssl_ca_cert = str(ca)
    conf.api_key = {"authorization": f"Bearer {bearer}"}
    minted = time.monotonic()

    def refresh(configuration: Any) -> None:
        nonlocal minted
        if time.monotonic() - minted > eks.REFRESH_AFTER:
            configuration.api_key = {"authorization": f"Bearer {eks.token(session, name, region)}"}
            minted = time.monotonic()
    conf.refresh_api_key_hook = refresh
    return {"eks": {"name": name, "region": region, "arn": described.get("arn")},
            "server": conf.host}


def sdk_call(call: Callable[[], Any]) -> Response:
    """One attempt through the client: its raw answer, whatever the status. No answer at all
    (refused, DNS, timeout, a certificate that does not verify) raises Unreachable."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError as TransportError
    try:
        raw = call()
    except AttributeError as exc:
        # The client wraps a TLS failure in an ApiException without a body, then fails decoding
        # that body: the ApiException is this error's context.
        wrapped = exc.__context__
        if isinstance(wrapped, ApiException) and not wrapped.status:
            raise Unreachable(" ".join(str(wrapped.reason or "TLS failure").split())[:300]) from None
        raise
    except ApiException as exc:
        if not exc.status:    # the same wrapping, should the client stop failing on it
            raise Unreachable(" ".join(str(exc.reason or "TLS failure").split())[:300]) from None
        text = exc.body.decode("utf-8", "replace") if isinstance(exc.body, bytes) else (exc.body or "")
        return Response(exc.status, _headers(exc.headers), _parse(text), text)
    except (TransportError, OSError) as exc:
        raise Unreachable(f"{type(exc).__name__}: {exc}"[:300]) from None
    try:
        text = raw.data.decode("utf-8", "replace")
    finally:
        raw.release_conn()
    return Response(raw.status, _headers(raw.headers), _parse(text), text)


def _headers(headers: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in (headers or {}).items():
        key = key.lower()
        out[key] = f"{out[key]}, {value}" if key in out else value
    return out


def _parse(text: str) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


class KubeReader:
    """Raw, paged lists of one cluster through the client and the shared HTTP layer."""

    def __init__(self, api_client: Any, http: Http, page_size: int) -> None:
        self.api_client, self.http, self.page_size = api_client, http, page_size

    def list(self, kind: Kind) -> Paged:
        """Every page of ``kind`` (``limit``, then ``continue`` while the server gives one); the
        first page failing raises HttpError, a later one failing is ``broken``."""
        from kubernetes import client
        method = getattr(getattr(client, kind.api)(self.api_client), kind.method)

        def request(token: str | None) -> Request:
            kwargs: dict[str, Any] = {"limit": self.page_size, "_preload_content": False,
                                      "_request_timeout": TIMEOUTS.pair()}
            if token:
                kwargs["_continue"] = token
            return Request(f"GET {kind.path}", lambda: sdk_call(lambda: method(**kwargs)),
                           kind.needs)

        def next_of(response: Response) -> Request | None:
            token = ((response.body or {}).get("metadata") or {}).get("continue")
            return request(token) if token else None

        def items_of(response: Response) -> list[Any]:
            body = response.body
            if not isinstance(body, dict) or not isinstance(body.get("items"), list):
                raise HttpError(EvidenceState.ERROR, f"GET {kind.path}: the answer is not a "
                                "Kubernetes list", response.status, response)
            return [body]
        return self.http.pages(request(None), next_of, items_of)
