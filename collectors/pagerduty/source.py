"""The PagerDuty source: its config section and what it is (no SDK imported here)."""
from __future__ import annotations

import os
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from attest.sources import Source
from collectors.base import max_retries_field

SERVICES = "pagerduty.services"
ESCALATION_POLICIES = "pagerduty.escalation_policies"
SCHEDULES = "pagerduty.schedules"
USERS = "pagerduty.users"
INCIDENTS = "pagerduty.incidents"


class Config(BaseModel):
    """The ``pagerduty:`` config section."""
    model_config = ConfigDict(extra="forbid")
    token: SecretStr = Field(min_length=1, description="a read-only REST API key")
    base_url: str = Field("https://api.pagerduty.com",
                          description="REST API v2 base URL; EU accounts: https://api.eu.pagerduty.com")
    incident_lookback_days: int = Field(30, ge=1, le=180, description=(
        "pagerduty.incidents: since the last good read, at most this many days back (PagerDuty "
        "searches at most 6 months)"))
    max_retries: int = max_retries_field()
    max_workers: int = Field(4, ge=1, le=16, description=(
        "requests in flight at once: the lists side by side, then each schedule's and each "
        "incident's detail reads (within the rate limit the HTTP layer paces)"))
    ca_file: str | None = Field(None, description=(
        "a PEM bundle of the CA certificates to trust instead of the system's (a TLS-inspecting "
        "proxy, a private CA); certificate checks are never turned off"))

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        """https only: the ``pagerduty`` client refuses any other scheme, loopback included."""
        value = (value or "").strip().rstrip("/")
        parts = urlsplit(value)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError("expected an https:// URL such as https://api.pagerduty.com "
                             "(the PagerDuty client accepts https only)")
        if parts.path or parts.query or parts.fragment:
            raise ValueError("expected the API's base URL alone, such as https://api.pagerduty.com")
        return value

    @field_validator("ca_file")
    @classmethod
    def _ca_file(cls, value: str | None) -> str | None:
        if value is None:
            return None
        path = os.path.expanduser(value)
        if not os.path.isfile(path):
            raise ValueError(f"no such file: {value}")
        return path


def scope_of(config: Config) -> str:
    """``pagerduty:<the account's API host>``, e.g. ``pagerduty:api.pagerduty.com`` or
    ``pagerduty:api.eu.pagerduty.com`` (no port: the demo's fake keeps its scope, and so its
    incident window, from one run to the next whatever port it gets)."""
    return f"pagerduty:{urlsplit(config.base_url).hostname}"


SOURCE = Source(
    name="pagerduty", title="PagerDuty", order=45, config=Config,
    collector="collectors.pagerduty.collector:PagerDutyCollector",
    produces=(SERVICES, ESCALATION_POLICIES, SCHEDULES, USERS, INCIDENTS), sdks=("pagerduty", "httpx2"),
    demo="collectors.pagerduty.demo:start_demo",
    reads_with="pagerduty (the REST API v2 client; a read-only API key)",
)
