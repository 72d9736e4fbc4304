"""The GitHub source: its config section and what it is (no SDK imported here)."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from attest.sources import Source
from collectors.base import https_or_loopback, max_retries_field

ORG = "github.org"
MEMBERS_2FA = "github.members_2fa_disabled"
REPOS = "github.repos"
BRANCHES = "github.branch_protection"
ORG_RULESETS = "github.org_rulesets"
DEPENDABOT = "github.dependabot_alerts"
PULLS = "github.merged_pulls"

class Config(BaseModel):
    """The ``github:`` config section. Give ``token`` or the three GitHub App settings."""
    model_config = ConfigDict(extra="forbid")
    org: str = Field(min_length=1)
    base_url: str = "https://api.github.com"
    token: SecretStr | None = None
    app_id: int | None = None
    installation_id: int | None = None
    private_key_path: str | None = None
    private_key: SecretStr | None = None
    include_archived: bool = False
    changes_lookback_days: int = Field(30, ge=1, le=30)
    max_retries: int = max_retries_field()
    max_rate_limit_wait: int = Field(300, ge=0, le=3600,
                                     description="longest wait (s) for a rate-limit reset")
    timeout: int = Field(30, ge=1, le=300)
    max_workers: int = Field(4, ge=1, le=16, description="reads run concurrently (within the rate "
                                                         "limit the HTTP layer paces)")

    @field_validator("base_url")
    @classmethod
    def _https_or_loopback(cls, value: str) -> str:
        return https_or_loopback(value, "base_url")

    @model_validator(mode="after")
    def _one_auth(self) -> "Config":
        app = (self.app_id, self.installation_id, self.private_key_path or self.private_key)
        if self.token is not None and any(x is not None for x in app):
            raise ValueError("give either token or GitHub App settings, not both")
        if self.token is None and not all(x is not None for x in app):
            raise ValueError("give token, or app_id + installation_id + private_key_path "
                             "(or private_key)")
        if self.private_key_path and self.private_key:
            raise ValueError("give private_key_path or private_key, not both")
        return self


SOURCE = Source(
    name="github", title="GitHub", order=20, config=Config,
    collector="collectors.github.collector:GithubCollector",
    produces=(ORG, MEMBERS_2FA, REPOS, BRANCHES, ORG_RULESETS, DEPENDABOT, PULLS),
    sdks=("github",),
    demo="collectors.github.demo:start_demo",
    reads_with="PyGithub (REST, GitHub App auth) and GraphQL through its requester",
)
