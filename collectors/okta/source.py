"""The Okta source: its config section and what it is (no SDK imported here)."""
from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from attest.sources import Source
from collectors.base import https_or_loopback, max_retries_field

DEFAULT_SCOPES = ("okta.users.read", "okta.policies.read", "okta.logs.read")
POLICY_EVIDENCE = {
    "okta.policies.sign_on": "OKTA_SIGN_ON",
    "okta.policies.access": "ACCESS_POLICY",
    "okta.policies.password": "PASSWORD",
}


class Config(BaseModel):
    """The ``okta:`` config section: an SSWS API token, or an OAuth 2.0 service app."""
    model_config = ConfigDict(extra="forbid")
    org_url: str = Field(description="https://<org>.okta.com or your Okta custom domain")
    token: SecretStr | None = None
    client_id: str | None = None
    private_key: SecretStr | None = None
    private_key_path: str | None = None
    key_id: str | None = None
    scopes: list[str] = Field(default_factory=lambda: list(DEFAULT_SCOPES))
    rate_limit_max_wait: float = Field(60.0, ge=0, description="longest single wait on a rate limit (s)")
    timeout: int = Field(60, ge=1, description="per-request timeout (s)")
    rate_limit_share: float = Field(0.5, gt=0, le=1, description="the share of each rate-limit "
                                    "window attest may use; the rest is left to the org's other "
                                    "integrations")
    max_retries: int = max_retries_field()
    max_workers: int = Field(8, ge=1, le=64, description="detail reads (one user's factors) in "
                                                        "flight at once")
    # okta.system_log (user lifecycle, admin roles, group membership: the access population)
    access_lookback_days: int = Field(
        30, ge=1, le=90, description="the System Log is read since the last good read, at most "
                                     "this many days back (Okta keeps 90 days)")
    access_groups: list[str] = Field(
        default_factory=list, description="groups (names or ids) whose membership changes count "
                                          "as access events; empty: none")

    @field_validator("org_url")
    @classmethod
    def _org_url(cls, value: str) -> str:
        parts = urlsplit(https_or_loopback(value, "org URL"))
        if parts.path.strip("/") or parts.query:
            raise ValueError("must be the org URL only, without a path (https://acme.okta.com)")
        return f"{parts.scheme}://{parts.netloc}"

    @model_validator(mode="after")
    def _one_auth_mode(self) -> "Config":
        oauth = self.client_id is not None
        if (self.token is None) == (not oauth):
            raise ValueError("give either token (SSWS API token) or client_id with private_key "
                             "or private_key_path (OAuth 2.0 service app), not both")
        if oauth and (self.private_key is None) == (self.private_key_path is None):
            raise ValueError("an OAuth service app needs exactly one of private_key or "
                             "private_key_path")
        if oauth and not self.scopes:
            raise ValueError("an OAuth service app needs at least one scope")
        return self

    def sdk_settings(self) -> dict[str, Any]:
        """The SDK's ``client`` configuration (holds the secret: never log it)."""
        settings: dict[str, Any] = {"orgUrl": self.org_url, "requestTimeout": self.timeout,
                                    "rateLimit": {"maxRetries": 0},   # attest paces itself
                                    # an okta.yaml may turn the SDK's logging on; at DEBUG it
                                    # logs each request with its Authorization header
                                    "logging": {"enabled": False}}
        if self.token is not None:
            settings.update(authorizationMode="SSWS", token=self.token.get_secret_value())
        else:
            key = (self.private_key.get_secret_value() if self.private_key is not None
                   else Path(self.private_key_path or "").expanduser().read_text(encoding="utf-8"))
            settings.update(authorizationMode="PrivateKey", clientId=self.client_id,
                            scopes=list(self.scopes), privateKey=key)
            if self.key_id:
                settings["kid"] = self.key_id
        return settings


SOURCE = Source(
    name="okta", title="Okta", order=30, config=Config,
    collector="collectors.okta.collector:OktaCollector",
    produces=("okta.org", "okta.users", "okta.factors", *POLICY_EVIDENCE, "okta.system_log"),
    sdks=("okta", "aiohttp"),
    demo="collectors.okta.demo:start_demo",
    reads_with="okta (the management SDK: SSWS token or OAuth 2.0 service app)",
)
