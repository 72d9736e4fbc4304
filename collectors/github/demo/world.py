"""The state behind the GitHub fake: a plain world that tests and the demo build.

Everything the fake answers is derived from these dataclasses, in the shapes of GitHub's REST
description (github/rest-api-description) and GraphQL schema.
"""
from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from attest.model import isoformat

OWNER, MEMBER = "owner", "member"


@dataclass
class Protection:
    """Classic branch protection of a default branch (None fields: that part is off)."""
    required_reviews: int | None = 1
    allow_force_pushes: bool = False
    allow_deletions: bool = False
    status_checks: list[str] | None = field(default_factory=lambda: ["ci/build"])
    enforce_admins: bool = True


@dataclass
class Ruleset:
    """A branch ruleset. ``rules``: {"pull_request": <approvals>, "non_fast_forward": True,
    "deletion": True, "required_status_checks": ["ci"]}; org rulesets also match repo names."""
    id: int
    name: str
    rules: dict[str, Any]
    enforcement: str = "active"
    ref_include: list[str] = field(default_factory=lambda: ["~DEFAULT_BRANCH"])
    ref_exclude: list[str] = field(default_factory=list)
    repo_include: list[str] = field(default_factory=lambda: ["~ALL"])
    repo_exclude: list[str] = field(default_factory=list)


@dataclass
class Repo:
    name: str
    id: int = 0
    private: bool = True
    archived: bool = False
    default_branch: str = "main"
    protection: Protection | None = None
    rulesets: list[Ruleset] = field(default_factory=list)
    vulnerability_alerts: bool = True
    security_updates: bool = True
    secret_scanning: bool = True


@dataclass
class Member:
    login: str
    two_factor: bool = True


@dataclass
class Alert:
    number: int
    repo: str
    severity: str
    created_at: datetime
    package: str = "lodash"
    ghsa_id: str = "GHSA-jf85-cpcp-j695"
    cve_id: str | None = "CVE-2019-10744"
    state: str = "open"


@dataclass
class Review:
    author: str
    submitted_at: datetime
    state: str = "APPROVED"


@dataclass
class Pull:
    repo: str
    number: int
    author: str
    merged_at: datetime
    reviews: list[Review] = field(default_factory=list)
    base: str | None = None  # None: the repo's default branch
    title: str = "Update dependencies"
    merged_by: str | None = None  # None: its author


@dataclass
class App:
    """A GitHub App installation: the fake verifies JWTs with ``public_key_pem``."""
    app_id: int
    installation_id: int
    public_key_pem: bytes


@dataclass
class World:
    org: str
    now: datetime
    tokens: dict[str, str] = field(default_factory=dict)      # token -> OWNER | MEMBER
    two_factor_requirement_enabled: bool = True
    members: list[Member] = field(default_factory=list)
    repos: list[Repo] = field(default_factory=list)
    org_rulesets: list[Ruleset] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    pulls: list[Pull] = field(default_factory=list)
    app: App | None = None
    rate_limited: int = 0          # answer the next N requests with 403 "API rate limit exceeded"
    throttled: int = 0             # answer the next N requests with 429 + Retry-After: 1
    graphql_rate_limited: int = 0  # answer the next N GraphQL queries with RATE_LIMITED
    search_forbidden: bool = False  # search answers FORBIDDEN (no Pull requests: read)
    calls: int = 0

    def __post_init__(self) -> None:
        for i, repo in enumerate(self.repos):
            repo.id = repo.id or 1000 + i

    def repo(self, name: str) -> Repo | None:
        return next((r for r in self.repos if r.name == name), None)

    def add_repo(self, repo: Repo) -> Repo:
        repo.id = repo.id or 1000 + len(self.repos)
        self.repos.append(repo)
        return repo


def cursor(index: int) -> str:
    return base64.b64encode(f"cursor:{index}".encode()).decode()


def uncursor(value: str | None) -> int:
    if not value:
        return 0
    try:
        return int(base64.b64decode(value).decode().split(":", 1)[1]) + 1
    except (ValueError, IndexError):
        return 0


def iso(dt: datetime) -> str:
    return isoformat(dt.astimezone(timezone.utc).replace(microsecond=0))


def node_id(kind: str, number: int) -> str:
    return base64.b64encode(f"0{len(kind)}:{kind}{number}".encode()).decode()
