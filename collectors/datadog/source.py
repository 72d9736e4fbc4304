"""The Datadog source: its config section and what it is (no SDK imported here)."""
from __future__ import annotations

import re
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from attest.sources import Source
from collectors.base import https_or_loopback, max_retries_field

MONITORS = "datadog.monitors"
DOWNTIMES = "datadog.downtimes"
LOG_INDEXES = "datadog.log_indexes"

_SITE = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$")


class Config(BaseModel):
    """The ``datadog:`` config section."""
    model_config = ConfigDict(extra="forbid")
    site: str = Field("datadoghq.com", description="Datadog site, e.g. datadoghq.eu, us5.datadoghq.com")
    host: str | None = Field(None, description="full API base URL; overrides site (a proxy or a fake)")
    api_key: SecretStr = Field(min_length=1)
    app_key: SecretStr = Field(min_length=1)
    page_size: int = Field(1000, ge=1, le=1000, description="monitors/downtimes per page")
    max_retries: int = max_retries_field()
    max_workers: int = Field(4, ge=1, le=16, description="reads run concurrently (monitors, "
                             "downtimes, log indexes; within the rate limit the HTTP layer paces)")

    @field_validator("site")
    @classmethod
    def _site(cls, value: str) -> str:
        value = value.strip().lower()
        if not _SITE.match(value):
            raise ValueError("expected a Datadog site such as datadoghq.com or datadoghq.eu "
                             "(no scheme; use 'host' for a full URL)")
        return value

    @field_validator("host")
    @classmethod
    def _host(cls, value: str | None) -> str | None:
        return None if value is None else https_or_loopback(value, "host")


def base_url(config: Config) -> str:
    """The API base URL: ``host`` when given, else ``https://api.<site>``."""
    return config.host or f"https://api.{config.site}"


def scope_of(config: Config) -> str:
    """``datadog:<site>``, or ``datadog:<host[:port]>`` when a host URL is configured."""
    return f"datadog:{urlparse(config.host).netloc}" if config.host else f"datadog:{config.site}"


# What each call needs; named in the detail of a denied record.
SOURCE = Source(
    name="datadog", title="Datadog", order=40, config=Config,
    collector="collectors.datadog.collector:DatadogCollector",
    produces=(MONITORS, DOWNTIMES, LOG_INDEXES), sdks=("datadog_api_client",),
    demo="collectors.datadog.demo:start_demo",
    reads_with="datadog-api-client (v1/v2 API, any site)",
)
