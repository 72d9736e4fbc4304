"""EKS controls: pure rule tests on literal payloads shaped as the EKS API reference gives
DescribeCluster and DescribeClusterVersions, then the collector against moto (which lacks
DescribeClusterVersions) and against the demo's front (which answers it)."""
from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from attest.demo.http import LocalServer
from attest.model import EvidenceState
from collectors.aws import demo as seed_aws
from collectors.aws.demo import ACCOUNT, client
from tests.collectors.aws_fixtures import NOW, collect, evaluate, make, record

HOME, EU = "us-east-1", "eu-west-1"
EKS_CONTROLS = ("aws.eks.control_plane_logging", "aws.eks.secrets_encryption",
                "aws.eks.endpoint_not_public", "aws.eks.supported_version")


def cluster(name: str = "prod", *, version: str = "1.34", region: str = HOME,
            logs: list[str] | None = None, disabled: list[str] | None = None,
            key: str | None = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            public: bool = True, private: bool = True, cidrs: list[str] | None = None) -> dict[str, Any]:
    """One item of aws.eks.clusters: DescribeCluster's answer (API reference shape)."""
    logging = [{"types": logs if logs is not None else ["api", "audit", "authenticator"],
                "enabled": True}]
    if disabled:
        logging.append({"types": disabled, "enabled": False})
    described = {
        "name": name, "arn": f"arn:aws:eks:{region}:{ACCOUNT}:cluster/{name}",
        "createdAt": "2025-04-02T10:15:31.000000Z", "version": version,
        "endpoint": "https://A1B2C3D4E5F6A7B8C9D0E1F2A3B4C5D6.gr7.us-east-1.eks.amazonaws.com",
        "roleArn": f"arn:aws:iam::{ACCOUNT}:role/eks-cluster-role",
        "resourcesVpcConfig": {"subnetIds": ["subnet-0a1b2c3d4e5f60001", "subnet-0a1b2c3d4e5f60002"],
                               "securityGroupIds": [], "clusterSecurityGroupId": "sg-0a1b2c3d4e5f60003",
                               "vpcId": "vpc-0a1b2c3d4e5f60004", "endpointPublicAccess": public,
                               "endpointPrivateAccess": private,
                               "publicAccessCidrs": cidrs if cidrs is not None else ["0.0.0.0/0"]},
        "kubernetesNetworkConfig": {"serviceIpv4Cidr": "172.20.0.0/16", "ipFamily": "ipv4"},
        "logging": {"clusterLogging": logging},
        "identity": {"oidc": {"issuer": "https://oidc.eks.us-east-1.amazonaws.com/id/A1B2C3D4"}},
        "status": "ACTIVE", "certificateAuthority": {"data": "LS0tLS1CRUdJTi..."},
        "platformVersion": "eks.9", "tags": {},
    }
    if key:
        described["encryptionConfig"] = [{"resources": ["secrets"], "provider": {"keyArn": key}}]
    return {"name": name, "DescribeCluster": {"cluster": described}}


def clusters(*items: dict[str, Any], region: str = HOME, state: str = "ok", unknown=None):
    ev = make("aws.eks.clusters", {"clusters": [i["name"] for i in items], "Clusters": list(items)},
              region, state=state, detail="" if state == "ok" else "eks:DescribeCluster was denied")
    return replace(ev, unknown=unknown) if unknown else ev


def version(v: str, status: str, standard_end: str, extended_end: str) -> dict[str, Any]:
    """One ClusterVersionInformation (API reference fields; timestamps as boto3 gives them,
    written to JSON)."""
    return {"clusterVersion": v, "clusterType": "eks", "defaultPlatformVersion": "eks.9",
            "defaultVersion": False, "releaseDate": "2025-10-02T00:00:00Z",
            "endOfStandardSupportDate": f"{standard_end}T00:00:00Z",
            "endOfExtendedSupportDate": f"{extended_end}T00:00:00Z",
            "status": status.lower().replace("_", "-"), "versionStatus": status,
            "kubernetesPatchVersion": f"{v}.5"}


VERSIONS = [version("1.34", "STANDARD_SUPPORT", "2026-12-02", "2027-12-02"),
            version("1.32", "EXTENDED_SUPPORT", "2026-03-23", "2027-03-23"),
            version("1.29", "UNSUPPORTED", "2025-03-23", "2026-03-23")]


def versions(items=VERSIONS, region: str = HOME, state: str = "ok"):
    return make("aws.eks.cluster_versions", {"clusterVersions": list(items)} if state == "ok" else None,
                region, state=state, detail="" if state == "ok" else
                "eks:DescribeClusterVersions: the endpoint does not support this operation (404)")


def findings(result) -> list[tuple[str, str, str]]:
    return [(f.resource.rsplit("/", 1)[-1], f.status.value, f.detail) for f in result.findings]


# --- aws.eks.control_plane_logging --------------------------------------------------------

def test_logging_needs_api_audit_and_authenticator_enabled():
    result = evaluate("aws.eks.control_plane_logging", [clusters(
        cluster("prod", logs=["api", "audit", "authenticator", "scheduler"]),
        cluster("dev", logs=["api", "audit"], disabled=["authenticator"]),
        cluster("old", logs=[]))])
    assert result.status.value == "fail"
    assert findings(result) == [
        ("prod", "pass", "control plane logs enabled: api, audit, authenticator, scheduler"),
        ("dev", "fail", "control plane log types not enabled: authenticator"),
        ("old", "fail", "control plane log types not enabled: api, audit, authenticator")]
    assert evaluate("aws.eks.control_plane_logging", [clusters(cluster("dev", logs=["api", "audit"]))],
                    required_types=["api", "audit"]).status.value == "pass"
    assert evaluate("aws.eks.control_plane_logging", [clusters()]).status.value == "not_applicable"
    assert evaluate("aws.eks.control_plane_logging", [clusters(state="denied")]).status.value == "error"


# --- aws.eks.secrets_encryption -------------------------------------------------------------

def test_secrets_encryption_needs_a_kms_key_covering_secrets():
    other = cluster("other")
    other["DescribeCluster"]["cluster"]["encryptionConfig"] = [
        {"resources": ["configmaps"], "provider": {"keyArn": "arn:aws:kms:us-east-1:1:key/x"}}]
    result = evaluate("aws.eks.secrets_encryption",
                      [clusters(cluster("prod"), cluster("staging", key=None), other)])
    assert result.status.value == "fail"
    assert [(n, s) for n, s, _ in findings(result)] == [("prod", "pass"), ("staging", "fail"),
                                                        ("other", "fail")]
    assert "key/1234abcd" in result.findings[0].detail
    assert evaluate("aws.eks.secrets_encryption", [clusters(cluster())]).status.value == "pass"


# --- aws.eks.endpoint_not_public -------------------------------------------------------------

def test_endpoint_private_or_limited_cidrs_pass_open_to_the_internet_fails():
    result = evaluate("aws.eks.endpoint_not_public", [clusters(
        cluster("private", public=False, cidrs=["0.0.0.0/0"]),   # EKS reports the default CIDR
        cluster("vpn", cidrs=["198.51.100.0/24", "203.0.113.7/32"]),
        cluster("open", cidrs=["198.51.100.0/24", "0.0.0.0/0"]))])
    assert findings(result) == [
        ("private", "pass", "the API endpoint is private"),
        ("vpn", "pass", "the public API endpoint is limited to 198.51.100.0/24, 203.0.113.7/32"),
        ("open", "fail", "the API endpoint is public and open to 0.0.0.0/0")]
    assert result.status.value == "fail"


# --- aws.eks.supported_version ---------------------------------------------------------------

def test_version_in_standard_support_passes_extended_fails_naming_its_end_date():
    result = evaluate("aws.eks.supported_version", [
        clusters(cluster("prod", version="1.34"), cluster("staging", version="1.32"),
                 cluster("legacy", version="1.29")), versions()])
    assert result.status.value == "fail"
    assert findings(result) == [
        ("prod", "pass", "Kubernetes 1.34 is in standard support until 2026-12-02"),
        ("staging", "fail", "Kubernetes 1.32 is in extended support, which ends 2027-03-23 "
                            "(standard support ended 2026-03-23)"),
        ("legacy", "fail", "Kubernetes 1.29 is no longer supported (extended support ended "
                           "2026-03-23)")]


def test_version_judged_by_each_region_s_own_answer():
    eu_versions = [version("1.34", "EXTENDED_SUPPORT", "2026-12-02", "2027-12-02")]
    result = evaluate("aws.eks.supported_version", [
        clusters(cluster("prod")), versions(),
        clusters(cluster("eu", region=EU), region=EU), versions(eu_versions, region=EU)])
    assert [(n, s) for n, s, _ in findings(result)] == [("eu", "fail"), ("prod", "pass")]


def test_version_unknown_is_an_error_never_a_pass():
    # DescribeClusterVersions not offered (moto): error, whatever the version
    result = evaluate("aws.eks.supported_version", [clusters(cluster("prod")), versions(state="error")])
    assert result.status.value == "error"
    assert {f.status.value for f in result.findings} == {"error"}
    assert any("does not support this operation" in f.detail for f in result.findings)
    # a version the answer does not list
    result = evaluate("aws.eks.supported_version", [clusters(cluster("x", version="1.99")), versions()])
    assert result.status.value == "error" and "not among the versions" in result.findings[0].detail
    # no cluster: nothing to judge, even when the versions could not be read in another region
    assert evaluate("aws.eks.supported_version", [clusters(), versions()]).status.value == "not_applicable"


def test_version_status_from_the_deprecated_field_or_the_dates():
    old_style = {k: v for k, v in version("1.32", "EXTENDED_SUPPORT", "2026-03-23", "2027-03-23").items()
                 if k != "versionStatus"}
    assert evaluate("aws.eks.supported_version", [
        clusters(cluster(version="1.32")), versions([old_style])]).status.value == "fail"
    dates_only = {k: v for k, v in version("1.34", "STANDARD_SUPPORT", "2026-12-02", "2027-12-02").items()
                  if k not in ("versionStatus", "status")}
    assert evaluate("aws.eks.supported_version", [clusters(cluster()), versions([dates_only])],
                    now=NOW).status.value == "pass"
    later = evaluate("aws.eks.supported_version", [clusters(cluster()), versions([dates_only])],
                     now=NOW.replace(year=2027))
    assert later.status.value == "fail" and "ends 2027-12-02" in later.findings[0].detail


def test_a_cluster_that_could_not_be_described_is_an_error_the_others_are_judged():
    arn = f"arn:aws:eks:{HOME}:{ACCOUNT}:cluster/staging"
    record_ = clusters(cluster("prod"), state="partial", unknown={arn: "eks:DescribeCluster was denied"})
    result = evaluate("aws.eks.secrets_encryption", [record_])
    assert {(f.resource.rsplit("/", 1)[-1], f.status.value) for f in result.findings} == {
        ("prod", "pass"), ("staging", "error")}
    assert result.status.value == "error"


# --- through the collector --------------------------------------------------------------------

def test_moto_lacks_describe_cluster_versions_so_the_version_is_an_error(moto):
    seed_aws._eks_cluster(client(moto, "eks"), "prod", "1.34", logs=seed_aws.ALL_LOGS,
                          key="arn:aws:kms:us-east-1:123456789012:key/k", public=False)
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    # moto as it is (the demo's server answers DescribeClusterVersions itself), same state
    with LocalServer(seed_aws.GAPS.wrap(DomainDispatcherApplication(create_backend_app))) as plain:
        records = collect(plain, [HOME])
    versions_ = record(records, "aws.eks.cluster_versions", f"aws:{ACCOUNT}:{HOME}")
    assert versions_.state is EvidenceState.ERROR
    assert "does not support this operation (404)" in versions_.detail
    assert evaluate("aws.eks.supported_version", records).status.value == "error"
    clusters_ = record(records, "aws.eks.clusters", f"aws:{ACCOUNT}:{HOME}")
    assert clusters_.state is EvidenceState.OK
    assert clusters_.request["operations"] == ["eks:DescribeCluster", "eks:ListClusters"]
    for control in EKS_CONTROLS[:3]:
        assert evaluate(control, records).status.value == "pass", control


def test_the_demo_front_answers_describe_cluster_versions_beside_moto(moto):
    expected = seed_aws.seed(moto, seed_aws.REGIONS, NOW)
    with seed_aws.versions_front() as front:
        records = collect(front, [HOME, EU])
    versions_ = record(records, "aws.eks.cluster_versions", f"aws:{ACCOUNT}:{HOME}")
    assert versions_.state is EvidenceState.OK
    listed = {v["clusterVersion"]: v["versionStatus"] for v in versions_.payload["clusterVersions"]}
    assert listed["1.32"] == "EXTENDED_SUPPORT" and listed["1.30"] == "UNSUPPORTED"   # includeAll
    assert {c: evaluate(c, records).status.value for c in EKS_CONTROLS} == {
        c: expected[c] for c in EKS_CONTROLS}
    staging = [f for f in evaluate("aws.eks.supported_version", records).findings
               if f.resource.endswith("/acme-staging")]
    assert staging[0].detail.startswith("Kubernetes 1.32 is in extended support, which ends 2027-03-23")


def _denying_describe(name: str) -> LocalServer:
    """The demo front, but DescribeCluster of ``name`` is refused (403 AccessDeniedException)."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    inner = seed_aws.cluster_versions_app(DomainDispatcherApplication(create_backend_app))

    def app(environ, start_response):
        if environ.get("PATH_INFO") == f"/clusters/{name}":
            body = json.dumps({"message": f"User: arn:aws:iam::{ACCOUNT}:user/attest is not "
                               f"authorized to perform: eks:DescribeCluster"}).encode()
            start_response("403 Forbidden", [("Content-Type", "application/json"),
                                             ("x-amzn-ErrorType", "AccessDeniedException")])
            return [body]
        return inner(environ, start_response)
    return LocalServer(app)


def test_one_cluster_denied_costs_only_that_cluster(moto):
    eks = client(moto, "eks")
    for name, key in (("prod", "arn:aws:kms:us-east-1:123456789012:key/k"), ("staging", None)):
        seed_aws._eks_cluster(eks, name, "1.34", logs=seed_aws.ALL_LOGS, key=key, public=False)
    with _denying_describe("staging") as url:
        records = collect(url, [HOME])
    got = record(records, "aws.eks.clusters", f"aws:{ACCOUNT}:{HOME}")
    assert got.state is EvidenceState.PARTIAL
    assert list(got.unknown) == [f"arn:aws:eks:{HOME}:{ACCOUNT}:cluster/staging"]
    assert "eks:DescribeCluster was denied (staging)" in next(iter(got.unknown.values()))
    assert [c["name"] for c in got.payload["Clusters"]] == ["prod"]
    result = evaluate("aws.eks.secrets_encryption", records)
    assert {(f.resource.rsplit("/", 1)[-1], f.status.value) for f in result.findings} == {
        ("prod", "pass"), ("staging", "error")}


def test_a_region_without_clusters_needs_no_versions(moto):
    records = collect(moto, [HOME, EU])      # plain moto, no cluster: DescribeClusterVersions not called
    for region in (HOME, EU):
        versions_ = record(records, "aws.eks.cluster_versions", f"aws:{ACCOUNT}:{region}")
        assert versions_.state is EvidenceState.ABSENT
        assert versions_.detail == f"no EKS cluster in {region}: its versions were not read"
    assert {c: evaluate(c, records).status.value for c in EKS_CONTROLS} == {
        c: "not_applicable" for c in EKS_CONTROLS}
