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
from tests.collectors.aws_fixtures import NOW, collect, organization

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

    # the whole collection, the organization's listing included (every OU read from its root)
    root = organization(moto, [])["root"]
    records = collect(moto, list(seed_aws.REGIONS), session_factory=recording_session,
                      organization={"role_name": "attest-audit", "include_ous": [root]})
    # everything answered; the one region without an EKS cluster needs no EKS versions
    assert {(r.name, r.scope, r.state.value) for r in records if r.state.value != "ok"} == {
        ("aws.eks.cluster_versions", f"aws:{seed_aws.ACCOUNT}:{seed_aws.REGIONS[2]}", "absent")}
    # sts:AssumeRole is the scanning identity's own permission (README: AWS), not the audit role's
    assert "sts:AssumeRole" in called
    assert called - {"sts:AssumeRole"} == set(specs.required_actions())


def test_readme_stackset_template_with_the_generated_policy_passes_cfn_lint():
    """The member-account role the README documents (README: AWS, "Every account of an AWS
    Organization") is a valid CloudFormation template once the generated policy is pasted in,
    and is the role the config example names, trusting only the scanner with the external id."""
    import re
    from pathlib import Path

    import yaml
    from cfnlint.api import ManualArgs, lint
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    block, = [b for b in re.findall(r"```yaml\n(.*?)```", readme, re.S)
              if "AWSTemplateFormatVersion" in b]
    placeholder = '{"Version": "2012-10-17", "Statement": []}   # <- `attest permissions aws`'
    assert placeholder in block
    template = block.replace(placeholder, json.dumps(specs.iam_policy()))
    assert lint(template, config=ManualArgs(regions=["us-east-1"])) == []
    config, = [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", readme, re.S)
               if "organization:" in b and "role_name" in b]
    role = yaml.load(template, Loader=_CfnLoader)["Resources"]["AttestAuditRole"]["Properties"]
    assert role["RoleName"] == config["aws"]["organization"]["role_name"]
    statement, = role["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Condition"] == {"StringEquals": {"sts:ExternalId": {"Ref": "ExternalId"}}}
    assert role["Policies"][0]["PolicyDocument"] == specs.iam_policy()


class _CfnLoader(__import__("yaml").SafeLoader):
    """YAML with CloudFormation's short tags (!Ref X -> {"Ref": "X"})."""


_CfnLoader.add_constructor("!Ref", lambda loader, node: {"Ref": loader.construct_scalar(node)})
