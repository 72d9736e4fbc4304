"""The shipped read-only IAM policy is the one generated from the AWS specs, and it allows
every operation a full collection actually calls (recorded with a botocore 'before-call' hook
during a collection against the seeded moto estate)."""
from __future__ import annotations

import json
import threading
from typing import Any

import boto3

from collectors.aws import demo as seed_aws
from collectors.aws import specs
from tests.collectors.aws_fixtures import NOW, collect

READ_ONLY_VERBS = ("Describe", "Get", "List", "BatchGet", "GenerateCredentialReport")


def test_shipped_policy_is_the_generated_one():
    shipped = specs.POLICY_FILE.read_text(encoding="utf-8")
    assert json.loads(shipped) == specs.iam_policy(), (
        "regenerate: python -m collectors.aws.specs > collectors/aws/iam-policy.json")
    assert shipped == specs.policy_json()


def test_policy_is_read_only():
    for action in specs.required_actions():
        assert action.split(":", 1)[1].startswith(READ_ONLY_VERBS), action
    statement, = specs.iam_policy()["Statement"]
    assert statement["Effect"] == "Allow" and statement["Resource"] == "*"


def test_policy_covers_exactly_what_a_full_collection_calls(moto):
    seed_aws.seed(moto, seed_aws.REGIONS, NOW)
    called: set[str] = set()
    lock = threading.Lock()

    def record(model: Any, **_: Any) -> None:
        with lock:
            called.add(specs.iam_action(model.service_model.service_name, model.name))

    def recording_session(**kwargs: Any) -> boto3.Session:
        session = boto3.Session(**kwargs)
        session.events.register("before-call", record)
        return session

    # moto lacks eks:DescribeClusterVersions: the demo's front answers it beside moto
    with seed_aws.versions_front() as front:
        records = collect(front, list(seed_aws.REGIONS), session_factory=recording_session)
    # everything answered; the one region without an EKS cluster needs no EKS versions
    assert {(r.name, r.scope, r.state.value) for r in records if r.state.value != "ok"} == {
        ("aws.eks.cluster_versions", f"aws:{seed_aws.ACCOUNT}:{seed_aws.REGIONS[2]}", "absent")}
    assert called == set(specs.required_actions())
