"""Acme Rockets' GitHub organization for the demo: a realistic mix of passing and failing controls.

The expected status of every GitHub control is written next to the world that produces it; a test
runs the real collector against it and checks the engine agrees.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from collectors.github.demo.world import (
    Alert, Member, Protection, Pull, Repo, Review, Ruleset, World)

ORG = "acme-rockets"


def acme_world(now: datetime) -> tuple[World, dict[str, str]]:
    day = timedelta(days=1)
    full = Protection()
    repos = [
        Repo("launch-control", protection=full),
        Repo("flight-software", protection=Protection(required_reviews=2)),
        # protected by its own ruleset only (no classic protection)
        Repo("ground-station", security_updates=False, rulesets=[Ruleset(
            7001, "main is protected", {"pull_request": 1, "non_fast_forward": True,
                                        "deletion": True, "required_status_checks": ["ci/test"]})]),
        # covered by the organization's ruleset for web-* repositories
        Repo("web-portal", private=False, secret_scanning=False),
        Repo("web-docs", private=False, secret_scanning=False),
        # protection requires reviews but lets force pushes through and runs no checks
        Repo("mission-planner", protection=Protection(allow_force_pushes=True, status_checks=None)),
        Repo("telemetry-ui"),  # unprotected
        # a ruleset that is only evaluated, not enforced: does not count
        Repo("payload-sim", protection=full, rulesets=[Ruleset(
            7002, "trial: stricter reviews", {"pull_request": 2}, enforcement="evaluate")]),
        Repo("old-rocket-v1", archived=True, vulnerability_alerts=False, security_updates=False),
    ]
    org_ruleset = Ruleset(9001, "web baseline", {"pull_request": 1, "non_fast_forward": True,
                                                 "deletion": True,
                                                 "required_status_checks": ["deploy-preview"]},
                          repo_include=["web-*"])
    members = [Member(login) for login in ("alice-launch", "bob-orbit", "carol-thrust",
                                           "dmitri-fuel", "eve-guidance")]
    alerts = [
        Alert(1, "launch-control", "high", now - 4 * day, package="axios", cve_id="CVE-2023-45857",
              ghsa_id="GHSA-wf5p-g6vw-rhxx"),
        Alert(2, "flight-software", "critical", now - 40 * day),
        Alert(3, "web-portal", "medium", now - 120 * day, package="postcss",
              cve_id="CVE-2023-44270", ghsa_id="GHSA-7fh5-64p2-3v2j"),
        Alert(4, "old-rocket-v1", "critical", now - 400 * day),  # archived: skipped
    ]
    pulls = [
        Pull("launch-control", 42, "alice-launch", now - 2 * day,
             [Review("bob-orbit", now - 2 * day - timedelta(hours=3))]),
        Pull("flight-software", 118, "carol-thrust", now - 5 * day,
             [Review("alice-launch", now - 6 * day), Review("dmitri-fuel", now - 5 * day - timedelta(hours=1))]),
        Pull("ground-station", 9, "dmitri-fuel", now - 8 * day,
             [Review("eve-guidance", now - 8 * day - timedelta(minutes=30))]),
        # merged by its author with no review at all
        Pull("telemetry-ui", 7, "eve-guidance", now - 3 * day, title="Hotfix: chart colours"),
        # into a feature branch, not the default branch: out of scope
        Pull("mission-planner", 31, "bob-orbit", now - 1 * day, base="feature/trajectory"),
    ]
    world = World(org=ORG, now=now, two_factor_requirement_enabled=True, members=members,
                  repos=repos, org_rulesets=[org_ruleset], alerts=alerts, pulls=pulls)
    expected = {
        "github.org_2fa_required": "pass",
        "github.members_2fa": "pass",
        "github.branch_review_required": "fail",       # telemetry-ui
        "github.branch_force_push_blocked": "fail",    # mission-planner, telemetry-ui
        "github.branch_status_checks": "fail",         # mission-planner, telemetry-ui
        "github.dependabot_alerts": "pass",
        "github.dependabot_security_updates": "fail",  # ground-station
        "github.vulnerability_sla": "fail",            # critical alert #2, 40 days old
        "github.secret_scanning": "pass",              # web-* are public
        "github.changes_reviewed": "fail",             # telemetry-ui#7
    }
    return world, expected
