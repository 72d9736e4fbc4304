"""What the AWS collector reads, as data: one :class:`Spec` per evidence name.

Most evidence is "call these read-only operations (every page) and keep the answer"; a spec
says which service and operations, whether the answer is per region or account-wide, which
error codes mean "does not exist" (state ``absent``), and, for the awkward calls that need
code (credential report, per-bucket and per-key calls), the fetcher that does them.

The shipped read-only IAM policy (``iam-policy.json``) is generated from these specs by
:func:`iam_policy`; ``tests/test_permissions.py`` checks that the file is current and that it
covers every operation a full collection actually calls. Regenerate it with
``python -m collectors.aws.specs > collectors/aws/iam-policy.json``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

POLICY_FILE = Path(__file__).with_name("iam-policy.json")


@dataclass(frozen=True)
class Spec:
    name: str                                # evidence name
    service: str                             # boto3 client name
    scope: Literal["global", "regional"]     # aws:<account>:global or aws:<account>:<region>
    operations: tuple[str, ...]              # API operations this evidence needs
    fetch: str | None = None                 # special fetcher in FETCHERS; None: call each operation
    absent: tuple[str, ...] = ()             # error codes meaning "does not exist" -> state absent
    params: dict[str, Any] = field(default_factory=dict)  # "{account}" in strings is replaced


SPECS: tuple[Spec, ...] = (
    # account identity and regions: read first, by the collector itself
    Spec("aws.sts.caller_identity", "sts", "global", ("GetCallerIdentity",), fetch="prelude"),
    Spec("aws.ec2.regions", "ec2", "global", ("DescribeRegions",), fetch="prelude"),
    # IAM (global)
    Spec("aws.iam.credential_report", "iam", "global",
         ("GenerateCredentialReport", "GetCredentialReport"), fetch="credential_report"),
    Spec("aws.iam.account_summary", "iam", "global", ("GetAccountSummary",)),
    Spec("aws.iam.password_policy", "iam", "global", ("GetAccountPasswordPolicy",),
         absent=("NoSuchEntity",)),
    # S3 (global listing; per-bucket calls go to each bucket's region)
    Spec("aws.s3.buckets", "s3", "global",
         ("ListBuckets", "GetBucketLocation", "GetBucketEncryption", "GetPublicAccessBlock"),
         fetch="buckets"),
    Spec("aws.s3control.public_access_block", "s3control", "global", ("GetPublicAccessBlock",),
         absent=("NoSuchPublicAccessBlockConfiguration",), params={"AccountId": "{account}"}),
    # regional services
    Spec("aws.cloudtrail.trails", "cloudtrail", "regional",
         ("DescribeTrails", "GetTrailStatus", "GetEventSelectors"), fetch="trails"),
    Spec("aws.guardduty.detectors", "guardduty", "regional",
         ("ListDetectors", "GetDetector", "GetAdministratorAccount"), fetch="detectors"),
    Spec("aws.rds.instances", "rds", "regional", ("DescribeDBInstances",)),
    Spec("aws.rds.clusters", "rds", "regional", ("DescribeDBClusters",)),
    Spec("aws.kms.keys", "kms", "regional", ("ListKeys", "DescribeKey", "GetKeyRotationStatus"),
         fetch="keys"),
    Spec("aws.ec2.ebs_encryption_by_default", "ec2", "regional", ("GetEbsEncryptionByDefault",)),
    Spec("aws.ec2.vpcs", "ec2", "regional", ("DescribeVpcs",)),
    Spec("aws.ec2.flow_logs", "ec2", "regional", ("DescribeFlowLogs",)),
    Spec("aws.ec2.security_groups", "ec2", "regional", ("DescribeSecurityGroups",)),
    Spec("aws.config.recorders", "config", "regional",
         ("DescribeConfigurationRecorders", "DescribeConfigurationRecorderStatus")),
    # --- the controls an auditor expects (detection, access, data, edge) -------------------
    # IAM: every user, group and role with its inline and attached policies, and every
    # customer-managed policy with its versions, in one paginated call (no per-policy reads)
    Spec("aws.iam.authorization_details", "iam", "global", ("GetAccountAuthorizationDetails",),
         params={"Filter": ["User", "Role", "Group", "LocalManagedPolicy"]}),
    # S3 per-bucket settings, one record each (the bucket listing is read once per account)
    Spec("aws.s3.bucket_policies", "s3", "global",
         ("ListBuckets", "GetBucketLocation", "GetBucketPolicy", "GetBucketPolicyStatus"),
         fetch="bucket_policies"),
    Spec("aws.s3.bucket_acls", "s3", "global", ("ListBuckets", "GetBucketLocation", "GetBucketAcl"),
         fetch="bucket_acls"),
    Spec("aws.s3.bucket_versioning", "s3", "global",
         ("ListBuckets", "GetBucketLocation", "GetBucketVersioning", "GetObjectLockConfiguration"),
         fetch="bucket_versioning"),
    Spec("aws.guardduty.findings", "guardduty", "regional",
         ("ListDetectors", "ListFindings", "GetFindings"), fetch="findings"),
    Spec("aws.securityhub.hub", "securityhub", "regional", ("DescribeHub", "GetEnabledStandards"),
         fetch="hub"),
    Spec("aws.accessanalyzer.analyzers", "accessanalyzer", "regional", ("ListAnalyzers",)),
    Spec("aws.inspector2.account_status", "inspector2", "regional", ("BatchGetAccountStatus",),
         params={"accountIds": ["{account}"]}),
    Spec("aws.rds.snapshots", "rds", "regional",
         ("DescribeDBSnapshots", "DescribeDBSnapshotAttributes"), fetch="db_snapshots"),
    Spec("aws.rds.cluster_snapshots", "rds", "regional",
         ("DescribeDBClusterSnapshots", "DescribeDBClusterSnapshotAttributes"),
         fetch="cluster_snapshots"),
    Spec("aws.ec2.snapshots", "ec2", "regional", ("DescribeSnapshots", "DescribeSnapshotAttribute"),
         fetch="ebs_snapshots"),
    Spec("aws.ec2.snapshot_block_public_access", "ec2", "regional",
         ("GetSnapshotBlockPublicAccessState",)),
    Spec("aws.ec2.instances", "ec2", "regional", ("DescribeInstances",)),
    Spec("aws.ec2.volumes", "ec2", "regional", ("DescribeVolumes",)),
    Spec("aws.logs.log_groups", "logs", "regional", ("DescribeLogGroups",)),
    Spec("aws.logs.metric_filters", "logs", "regional", ("DescribeMetricFilters",)),
    Spec("aws.cloudwatch.alarms", "cloudwatch", "regional", ("DescribeAlarms",)),
    Spec("aws.sns.subscriptions", "sns", "regional", ("ListSubscriptions",)),
    Spec("aws.backup.plans", "backup", "regional", ("ListBackupPlans", "ListBackupSelections"),
         fetch="backup_plans"),
    Spec("aws.backup.protected_resources", "backup", "regional", ("ListProtectedResources",)),
    Spec("aws.elbv2.listeners", "elbv2", "regional",
         ("DescribeLoadBalancers", "DescribeListeners", "DescribeRules"), fetch="elbv2_listeners"),
    Spec("aws.elbv2.attributes", "elbv2", "regional",
         ("DescribeLoadBalancers", "DescribeLoadBalancerAttributes"), fetch="elbv2_attributes"),
    Spec("aws.elb.load_balancers", "elb", "regional",
         ("DescribeLoadBalancers", "DescribeLoadBalancerPolicies"), fetch="classic_load_balancers"),
    Spec("aws.acm.certificates", "acm", "regional", ("ListCertificates",),
         params={"Includes": {"keyTypes": ["RSA_1024", "RSA_2048", "RSA_3072", "RSA_4096",
                                           "EC_prime256v1", "EC_secp384r1", "EC_secp521r1"]}}),
    # EKS: each cluster's settings, and the region's Kubernetes versions with their support status
    Spec("aws.eks.clusters", "eks", "regional", ("ListClusters", "DescribeCluster"),
         fetch="eks_clusters"),
    Spec("aws.eks.cluster_versions", "eks", "regional", ("ListClusters", "DescribeClusterVersions"),
         fetch="eks_cluster_versions"),
    # the accounts of the AWS Organization (with aws.organization): read first, with the default
    # credentials, by collectors.aws.organization
    Spec("aws.organizations.accounts", "organizations", "global",
         ("DescribeOrganization", "ListAccounts", "ListAccountsForParent",
          "ListOrganizationalUnitsForParent"), fetch="organization"),
)

PRODUCES: tuple[str, ...] = tuple(s.name for s in SPECS)
# read before the accounts, by the collector itself, not once per account or region
FIRST = frozenset({"prelude", "organization"})

# IAM's action names where they differ from "<service>:<Operation>".
IAM_PREFIX = {"s3control": "s3", "accessanalyzer": "access-analyzer",
              "elbv2": "elasticloadbalancing", "elb": "elasticloadbalancing"}
IAM_ACTION_OVERRIDES = {
    ("s3", "ListBuckets"): "s3:ListAllMyBuckets",
    ("s3", "GetBucketEncryption"): "s3:GetEncryptionConfiguration",
    ("s3", "GetPublicAccessBlock"): "s3:GetBucketPublicAccessBlock",
    ("s3control", "GetPublicAccessBlock"): "s3:GetAccountPublicAccessBlock",
    ("s3", "GetBucketPolicyStatus"): "s3:GetBucketPolicyStatus",
    ("s3", "GetObjectLockConfiguration"): "s3:GetBucketObjectLockConfiguration",
    ("s3", "GetBucketVersioning"): "s3:GetBucketVersioning",
}


def iam_action(service: str, operation: str) -> str:
    """The IAM action that allows ``operation`` of the boto3 client ``service``."""
    return IAM_ACTION_OVERRIDES.get(
        (service, operation), f"{IAM_PREFIX.get(service, service)}:{operation}")


# Operations called other than as a read of SPECS: the role assumed in each account (with the
# credentials of the account attest runs in), and S3's HEAD that botocore itself sends to find
# a bucket's region after a redirect. Not reads of evidence, so not in the policy.
OTHER_OPERATIONS: dict[str, tuple[str, ...]] = {"sts": ("AssumeRole",), "s3": ("HeadBucket",)}


def client_operations() -> dict[str, frozenset[str]]:
    """service -> every operation attest's clients of it are asked for: what their service
    models are trimmed to (collectors.aws.client_costs.trimmed_loader)."""
    out: dict[str, set[str]] = {}
    for spec in SPECS:
        out.setdefault(spec.service, set()).update(spec.operations)
    for service, operations in OTHER_OPERATIONS.items():
        out.setdefault(service, set()).update(operations)
    return {service: frozenset(operations) for service, operations in out.items()}


def required_actions() -> list[str]:
    return sorted({iam_action(s.service, op) for s in SPECS for op in s.operations})


def iam_policy() -> dict[str, Any]:
    """The least-privilege, read-only IAM policy the collector needs (generated from SPECS)."""
    return {
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "AttestReadOnlyEvidence",
            "Effect": "Allow",
            "Action": required_actions(),
            "Resource": "*",
        }],
    }


def policy_json() -> str:
    return json.dumps(iam_policy(), indent=2) + "\n"


if __name__ == "__main__":
    print(policy_json(), end="")
