"""Collection and evaluation helpers for the AWS tests (real HTTP, no SDK mocks); the moto
server fixtures (``moto_url``, ``moto``) are in tests/conftest.py."""
from __future__ import annotations

import http.client
import re
import threading
from datetime import datetime, timezone
from typing import Any, Callable
from urllib.parse import urlsplit

from attest.demo.http import LocalServer
from attest.engine import evaluate_control
from attest.model import ControlResult, Evidence, EvidenceState
from collectors.aws.collector import AwsCollector, Config
from collectors.base import CollectContext
from controls import catalog_by_id

NOW = datetime(2026, 11, 22, 2, 0, tzinfo=timezone.utc)
AWS_CONTROLS = sorted(cid for cid in catalog_by_id() if cid.startswith("aws."))


def collect(url: str, regions: list[str] | str = ("us-east-1", "eu-west-1"), *,
            session_factory: Any = None, progress: Callable[[str], None] | None = None,
            **config: Any) -> list[Evidence]:
    cfg = Config(endpoint_url=url, regions=list(regions) if regions != "all" else "all", **config)
    collector = AwsCollector(cfg, **({"session_factory": session_factory} if session_factory else {}))
    ctx = CollectContext(now=NOW, progress=progress or (lambda step: None))
    return list(collector.collect(ctx))


def evaluate(control_id: str, records: list[Evidence], now: datetime = NOW,
             **params: Any) -> ControlResult:
    control = catalog_by_id()[control_id]
    return evaluate_control(control, records, control.param_values(params), now)


def statuses(records: list[Evidence], now: datetime = NOW) -> dict[str, str]:
    return {cid: evaluate(cid, records, now).status.value for cid in AWS_CONTROLS}


def make(name: str, payload: Any, region: str = "global", *, account: str = "123456789012",
         state: str = "ok", detail: str = "", unknown: dict[str, str] | None = None) -> Evidence:
    """A literal evidence record for pure rule tests (``unknown``: a partial record's resources
    that could not be read)."""
    return Evidence(name=name, scope=f"aws:{account}:{region}", state=EvidenceState(state),
                    payload=payload, detail=detail, unknown=dict(unknown or {}))


def record(records: list[Evidence], name: str, scope: str) -> Evidence:
    found = [r for r in records if r.name == name and r.scope == scope]
    assert len(found) == 1, f"{len(found)} records of {name} at {scope}"
    return found[0]


# --- a loopback proxy in front of moto that denies chosen requests --------------------------

CREDENTIAL_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/([a-z0-9-]+)/aws4_request")
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}


def _denial(service: str) -> tuple[str, bytes]:
    """A 403 body shaped like the service's protocol (EC2, query, REST-XML or JSON)."""
    if service == "ec2":
        return "text/xml", (b"<Response><Errors><Error><Code>UnauthorizedOperation</Code><Message>"
                            b"You are not authorized to perform this operation.</Message></Error>"
                            b"</Errors><RequestID>attest-test</RequestID></Response>")
    if service in ("iam", "sts", "rds", "sns", "monitoring", "elasticloadbalancing"):
        return "text/xml", (b"<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>"
                            b"<Message>not authorized</Message></Error>"
                            b"<RequestId>attest-test</RequestId></ErrorResponse>")
    if service == "s3":
        return "application/xml", (b"<Error><Code>AccessDenied</Code><Message>Access Denied"
                                   b"</Message></Error>")
    return "application/x-amz-json-1.1", (b'{"__type":"AccessDeniedException",'
                                          b'"message":"not authorized"}')



def forward(upstream: Any, start_response: Any, method: str, path: str, body: bytes,
            headers: dict[str, str]) -> list[bytes]:
    """Send one request on to ``upstream`` (moto) and pass its answer back (the test proxies)."""
    conn = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
    finally:
        conn.close()
    start_response(f"{response.status} {response.reason}",
                   [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP])
    return [data]

class DenyingProxy:
    """Forwards to moto, but answers 403 AccessDenied when ``deny(region, service, body)`` (with
    ``with_path``: ``deny(region, service, body, path)``, the path with its query string; with
    ``with_target``: ``deny(region, service, body, target)``, the X-Amz-Target header of a JSON
    protocol call, e.g. ``AWSOrganizationsV20161128.ListAccounts``)."""

    def __init__(self, upstream: str, deny: Callable[..., bool], *, with_path: bool = False,
                 with_target: bool = False) -> None:
        self.upstream = urlsplit(upstream)
        self.deny = deny
        self.with_path, self.with_target = with_path, with_target
        self.requests: list[tuple[str, bytes]] = []   # (X-Amz-Target, body) of each request
        self.paths: list[tuple[str, str, str]] = []   # (service, method, path?query) of each
        self.server = LocalServer(self.app)

    def count(self, needle: str | bytes) -> int:
        """Requests whose body (bytes) or X-Amz-Target header (str) contains ``needle``."""
        return sum(1 for target, body in self.requests
                   if (needle in body if isinstance(needle, bytes) else needle in target))

    def app(self, environ: dict[str, Any], start_response: Callable) -> list[bytes]:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        match = CREDENTIAL_SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
        region, service = match.groups() if match else ("", "")
        self.requests.append((environ.get("HTTP_X_AMZ_TARGET", ""), body))
        path = environ.get("REQUEST_URI") or environ["PATH_INFO"]
        self.paths.append((service, environ["REQUEST_METHOD"], path))
        extra = [path] if self.with_path else [environ.get("HTTP_X_AMZ_TARGET", "")] \
            if self.with_target else []
        if self.deny(region, service, body, *extra):
            return self.refuse(service, start_response)
        headers = {k[5:].replace("_", "-").title(): v for k, v in environ.items()
                   if k.startswith("HTTP_")}
        if environ.get("CONTENT_TYPE"):
            headers["Content-Type"] = environ["CONTENT_TYPE"]
        headers["Content-Length"] = str(len(body))
        return forward(self.upstream, start_response, environ["REQUEST_METHOD"],
                       environ.get("REQUEST_URI") or environ["PATH_INFO"], body, headers)

    def refuse(self, service: str, start_response: Callable) -> list[bytes]:
        content_type, payload = _denial(service)
        start_response("403 Forbidden", [("Content-Type", content_type),
                                         ("x-amzn-ErrorType", "AccessDeniedException")])
        return [payload]

    def __enter__(self) -> str:
        return self.server.start()

    def __exit__(self, *exc: Any) -> None:
        self.server.stop()


class FailingFirst(DenyingProxy):
    """Forwards to moto, but answers the first ``times`` requests that ``match(region, service,
    body)`` with a 503 ServiceUnavailable in the query protocol's error shape (STS, IAM...), a
    fault botocore retries."""

    def __init__(self, upstream: str, match: Callable[[str, str, bytes], bool], times: int) -> None:
        self.failed, self.left = 0, times
        self.lock = threading.Lock()

        def fail(region: str, service: str, body: bytes) -> bool:
            with self.lock:
                if self.left and match(region, service, body):
                    self.left -= 1
                    self.failed += 1
                    return True
                return False
        super().__init__(upstream, fail)

    def refuse(self, service: str, start_response: Callable) -> list[bytes]:
        start_response("503 Service Unavailable", [("Content-Type", "text/xml")])
        return [b"<ErrorResponse><Error><Type>Receiver</Type><Code>ServiceUnavailable</Code>"
                b"<Message>Service is unavailable</Message></Error>"
                b"<RequestId>attest-test</RequestId></ErrorResponse>"]


# --- an AWS Organization in moto ------------------------------------------------------------

def organization(url: str, members: list[str]) -> dict[str, str]:
    """Create an organization (the default credentials' account is its management account) with
    one member account per name; returns {"root": id, "management": id, name: account id...}.
    Moto keeps each account's resources apart: credentials of a role assumed in a member account
    reach that account's own (empty) estate."""
    from collectors.aws.demo import ACCOUNT, client
    org = client(url, "organizations")
    org.create_organization(FeatureSet="ALL")
    ids = {"root": org.list_roots()["Roots"][0]["Id"], "management": ACCOUNT}
    for name in members:
        status = org.create_account(AccountName=name, Email=f"{name}@acme.example")
        ids[name] = status["CreateAccountStatus"]["AccountId"]
    return ids


def member_client(url: str, account_id: str, service: str, region: str = "us-east-1",
                  role: str = "OrganizationAccountAccessRole") -> Any:
    """A client in a member account, through a role assumed there (as an administrator would)."""
    from collectors.aws.demo import client
    creds = client(url, "sts").assume_role(RoleArn=f"arn:aws:iam::{account_id}:role/{role}",
                                           RoleSessionName="seed")["Credentials"]
    return client(url, service, region, aws_access_key_id=creds["AccessKeyId"],
                  aws_secret_access_key=creds["SecretAccessKey"],
                  aws_session_token=creds["SessionToken"])


def deny_assume_role(account_id: str) -> Callable[[str, str, bytes], bool]:
    """For :class:`DenyingProxy`: STS refuses to let anyone assume a role in ``account_id``."""
    needle = f"iam%3A%3A{account_id}%3Arole".encode()
    return lambda region, service, body: (service == "sts" and b"Action=AssumeRole" in body
                                          and needle in body)


# --- who may list an organization's accounts, as AWS decides it ------------------------------

ACCESS_KEY = re.compile(r"Credential=([^/]+)/")
ORG_READS = ("ListAccounts", "ListAccountsForParent", "ListOrganizationalUnitsForParent",
             "ListRoots")


class OrganizationsAsAws(DenyingProxy):
    """Forwards to moto, answering the Organizations reads as AWS does where moto does not.

    moto 5.2.5 keeps an organization in its management account's backend: a member account's
    ``ListAccounts`` (and the other listings) reads the member's own, empty backend, whether or
    not the member is a delegated administrator, and is never refused. AWS answers them only to
    the management account and to delegated administrators, and refuses any other account with
    ``AccessDeniedException``. This proxy does that: ``accounts`` maps the access key id of each
    credential the test hands out to its account; a listing asked by a delegated administrator
    (as moto's own ``ListDelegatedAdministrators`` says, asked at the time) is re-signed with the
    management account's credentials, so moto answers with the organization's data; one asked by
    any other member account is refused. ``DescribeOrganization`` (any member may call it, and
    moto answers it for members) and every other service go to moto unchanged."""

    def __init__(self, upstream: str, management: str, accounts: dict[str, str]) -> None:
        super().__init__(upstream, lambda region, service, body: False)
        self.management, self.accounts = management, accounts
        self.answered: list[tuple[str, str, str]] = []   # (operation, account, "forwarded"...)

    def _admins(self) -> set[str]:
        from collectors.aws.demo import client
        org = client(f"http://{self.upstream.netloc}", "organizations")
        return {a["Id"] for a in org.list_delegated_administrators()["DelegatedAdministrators"]}

    def app(self, environ: dict[str, Any], start_response: Callable) -> list[bytes]:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        operation = target.rpartition(".")[2]
        if not target.startswith("AWSOrganizations") or operation not in ORG_READS:
            return super().app(environ, start_response)
        key = ACCESS_KEY.search(environ.get("HTTP_AUTHORIZATION", ""))
        account = self.accounts.get(key.group(1) if key else "", self.management
                                    if key and key.group(1) == "testing" else "")
        if account == self.management:
            self.answered.append((operation, account, "management account"))
            return super().app(environ, start_response)
        if account and account in self._admins():
            self.answered.append((operation, account, "delegated administrator"))
            return self._as_management(environ, start_response, target)
        self.answered.append((operation, account, "refused"))
        environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        start_response("400 Bad Request", [("Content-Type", "application/x-amz-json-1.1")])
        return [b'{"__type":"AccessDeniedException","Message":"You don\'t have permissions to '
                b'access this resource."}']

    def _as_management(self, environ: dict[str, Any], start_response: Callable,
                       target: str) -> list[bytes]:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        from collectors.aws.demo import ENV
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        url = f"http://{self.upstream.netloc}/"
        request = AWSRequest(method="POST", url=url, data=body, headers={
            "Content-Type": environ.get("CONTENT_TYPE") or "application/x-amz-json-1.1",
            "X-Amz-Target": target})
        SigV4Auth(Credentials(ENV["AWS_ACCESS_KEY_ID"], ENV["AWS_SECRET_ACCESS_KEY"]),
                  "organizations", "us-east-1").add_auth(request)
        return forward(self.upstream, start_response, "POST", "/", body, dict(request.headers))


def member_credentials(url: str, account_id: str, role: str = "OrganizationAccountAccessRole",
                       session: str = "attest-nightly") -> dict[str, str]:
    """The credentials of a role in a member account, as the environment variables of the
    default credential chain (attest running in that account)."""
    from collectors.aws.demo import client
    creds = client(url, "sts").assume_role(RoleArn=f"arn:aws:iam::{account_id}:role/{role}",
                                           RoleSessionName=session)["Credentials"]
    return {"AWS_ACCESS_KEY_ID": creds["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
            "AWS_SESSION_TOKEN": creds["SessionToken"]}
