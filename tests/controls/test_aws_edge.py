"""Pure rule tests for load balancer TLS and access logs, IMDSv2 and certificate expiry (literal
payloads as boto3 returns DescribeLoadBalancers/Listeners/Rules/Attributes, DescribeInstances
and ListCertificates)."""
from __future__ import annotations

from datetime import timedelta

from tests.collectors.aws_fixtures import NOW, evaluate, make

ACCT = "123456789012"
ALB = f"arn:aws:elasticloadbalancing:us-east-1:{ACCT}:loadbalancer/app/web/50dc6c495c0c9188"
NLB = f"arn:aws:elasticloadbalancing:us-east-1:{ACCT}:loadbalancer/net/mqtt/2b1a5c3d4e5f6a7b"
REDIRECT = [{"Type": "redirect", "RedirectConfig": {"Protocol": "HTTPS", "Port": "443",
                                                    "StatusCode": "HTTP_301"}}]
FORWARD = [{"Type": "forward", "TargetGroupArn": "arn:aws:elasticloadbalancing:...:targetgroup/web/1"}]


def status(control, records, **params):
    return evaluate(control, records, **params).status.value


def listener(protocol, port, policy=None, default=FORWARD, rules=None):
    out = {"ListenerArn": f"{ALB}/{port}", "Protocol": protocol, "Port": port, "DefaultActions": default}
    if policy:
        out["SslPolicy"] = policy
    if protocol == "HTTP":
        out["Rules"] = rules if rules is not None else [{"IsDefault": True, "Priority": "default",
                                                         "Actions": default}]
    return out


def v2(*lbs, state="ok", unknown=None):
    return make("aws.elbv2.listeners", {"LoadBalancers": [
        {"LoadBalancerArn": arn, "Type": kind, "Listeners": list(listeners)} for arn, kind, listeners in lbs]}
        if state != "denied" else None, "us-east-1", state=state, unknown=unknown,
        detail="" if state == "ok" else "elasticloadbalancing:DescribeListeners was denied")


def classic(*listeners, policies=()):
    """A classic load balancer: (protocol, port, policy names) listeners and its policies."""
    return make("aws.elb.load_balancers", {"LoadBalancerDescriptions": [{
        "LoadBalancerName": "legacy", "ListenerDescriptions": [
            {"Listener": {"Protocol": p, "LoadBalancerPort": port, "InstanceProtocol": "HTTP",
                          "InstancePort": 80}, "PolicyNames": list(names)} for p, port, names in listeners],
        "DescribeLoadBalancerPolicies": {"PolicyDescriptions": list(policies)}}]}, "eu-west-1")


def negotiation(name, reference=None):
    attributes = [{"AttributeName": "Protocol-TLSv1.2", "AttributeValue": "true"}]
    if reference:
        attributes.append({"AttributeName": "Reference-Security-Policy", "AttributeValue": reference})
    return {"PolicyName": name, "PolicyTypeName": "SSLNegotiationPolicyType",
            "PolicyAttributeDescriptions": attributes}


def no_classic():
    return make("aws.elb.load_balancers", {"LoadBalancerDescriptions": []}, "eu-west-1")


# --- aws.elb.https_only ---------------------------------------------------------------------

def test_https_only_passes_tls_listeners_with_allowed_policies_and_redirects():
    records = [v2((ALB, "application", [listener("HTTPS", 443, "ELBSecurityPolicy-TLS13-1-2-2021-06"),
                                        listener("HTTP", 80, default=REDIRECT)]),
                  (NLB, "network", [listener("TLS", 8883, "ELBSecurityPolicy-TLS13-1-2-Res-2021-06")]),
                  ("arn:gwy", "gateway", [listener("GENEVE", 6081)])),
               classic(("HTTPS", 443, ["tls12"]),
                       policies=[negotiation("tls12", "ELBSecurityPolicy-TLS-1-2-2017-01")])]
    result = evaluate("aws.elb.https_only", records)
    assert result.status.value == "pass"
    assert {f.resource for f in result.findings} == {
        ALB, NLB, f"arn:aws:elasticloadbalancing:eu-west-1:{ACCT}:loadbalancer/legacy"}


def test_https_only_fails_old_policies_plain_http_and_tcp():
    cases = {
        "uses ELBSecurityPolicy-2016-08": listener("HTTPS", 443, "ELBSecurityPolicy-2016-08"),
        "HTTP:80 serves plain HTTP": listener("HTTP", 80),
        "TCP:1883 is not encrypted": listener("TCP", 1883),
    }
    for expected, bad in cases.items():
        result = evaluate("aws.elb.https_only", [v2((ALB, "application", [bad])), no_classic()])
        assert result.status.value == "fail" and expected in result.findings[0].detail, expected
    forwarding_rule = listener("HTTP", 80, default=REDIRECT, rules=[
        {"Priority": "1", "Actions": FORWARD}, {"IsDefault": True, "Actions": REDIRECT}])
    assert status("aws.elb.https_only", [v2((ALB, "application", [forwarding_rule])), no_classic()]) == "fail"
    # a stricter allowed list turns an otherwise good policy into a failure
    good = [v2((ALB, "application", [listener("HTTPS", 443, "ELBSecurityPolicy-TLS13-1-2-2021-06")])),
            no_classic()]
    assert status("aws.elb.https_only", good,
                  allowed_ssl_policies=["ELBSecurityPolicy-TLS13-1-3-2021-06"]) == "fail"


def test_https_only_classic_listeners():
    for listeners, policies, expected in (
            ([("HTTPS", 443, [])], [], "uses no SSL negotiation policy"),
            ([("HTTPS", 443, ["mine"])], [negotiation("mine")], "a custom SSL negotiation policy"),
            ([("SSL", 443, ["old"])], [negotiation("old", "ELBSecurityPolicy-2016-08")],
             "uses ELBSecurityPolicy-2016-08"),
            ([("HTTP", 80, [])], [], "cannot redirect")):
        result = evaluate("aws.elb.https_only", [classic(*listeners, policies=policies), v2()])
        assert result.status.value == "fail" and expected in result.findings[0].detail, expected


def test_https_only_an_unreadable_load_balancer_is_an_error_the_others_judged():
    partial = v2((ALB, "application", [listener("HTTP", 80, default=REDIRECT)]), state="partial",
                 unknown={NLB: "elasticloadbalancing:DescribeListeners was denied"})
    result = evaluate("aws.elb.https_only", [partial, no_classic()])
    assert result.status.value == "error"
    assert {f.resource: f.status.value for f in result.findings} == {ALB: "pass", NLB: "error"}
    assert status("aws.elb.https_only", [v2(state="denied"), no_classic()]) == "error"


# --- aws.elb.access_logs --------------------------------------------------------------------

def attributes(*lbs):
    return [make("aws.elbv2.attributes", {"LoadBalancers": [
        {"LoadBalancerArn": arn, "Type": kind, "Attributes": [
            {"Key": "access_logs.s3.enabled", "Value": "true" if on else "false"},
            {"Key": "access_logs.s3.bucket", "Value": "acme-lb-logs" if on else ""},
            {"Key": "deletion_protection.enabled", "Value": "false"}]} for arn, kind, on in lbs]},
        "us-east-1")]


def test_access_logs():
    result = evaluate("aws.elb.access_logs", attributes((ALB, "application", True), ("gwy", "gateway", False)))
    assert result.status.value == "pass" and result.findings[0].detail == "access logs to s3://acme-lb-logs"
    result = evaluate("aws.elb.access_logs", attributes((ALB, "application", True), (NLB, "network", False)))
    assert result.status.value == "fail"
    assert [f.resource for f in result.findings if f.status.value == "fail"] == [NLB]
    partial = make("aws.elbv2.attributes", {"LoadBalancers": []}, "us-east-1", state="partial",
                   unknown={ALB: "elasticloadbalancing:DescribeLoadBalancerAttributes was denied"})
    result = evaluate("aws.elb.access_logs", [partial])
    assert result.status.value == "error" and result.findings[0].resource == ALB


# --- aws.ec2.imdsv2 -------------------------------------------------------------------------

def instances(*items, region="us-east-1"):
    return [make("aws.ec2.instances", {"Reservations": [{"ReservationId": "r-1", "Instances": [
        {"InstanceId": iid, "State": {"Code": 16 if state == "running" else 80, "Name": state},
         "MetadataOptions": {"State": "applied", "HttpTokens": tokens, "HttpEndpoint": endpoint,
                             "HttpPutResponseHopLimit": 1}}
        for iid, state, tokens, endpoint in items]}]}, region)]


def test_imdsv2():
    good = instances(("i-1", "running", "required", "enabled"), ("i-2", "running", "optional", "disabled"),
                     ("i-3", "stopped", "optional", "enabled"))
    result = evaluate("aws.ec2.imdsv2", good)
    assert result.status.value == "pass" and len(result.findings) == 2
    result = evaluate("aws.ec2.imdsv2", instances(("i-4", "running", "optional", "enabled"), region="eu-west-1"))
    assert result.status.value == "fail"
    assert result.findings[0].resource == f"arn:aws:ec2:eu-west-1:{ACCT}:instance/i-4"
    assert result.findings[0].detail == "IMDSv1 allowed (HttpTokens optional)"
    denied = make("aws.ec2.instances", None, "ap-south-1", state="denied",
                  detail="ec2:DescribeInstances was denied")
    assert status("aws.ec2.imdsv2", good + [denied]) == "error"


# --- aws.acm.certificates_valid -------------------------------------------------------------

def certificates(*items):
    """ListCertificates' CertificateSummary (with InUse and NotAfter, as AWS returns them)."""
    return [make("aws.acm.certificates", {"CertificateSummaryList": [
        {"CertificateArn": f"arn:aws:acm:us-east-1:{ACCT}:certificate/{name}", "DomainName": f"{name}.example",
         "Type": "IMPORTED", "Status": "ISSUED", "InUse": in_use, "KeyAlgorithm": "RSA_2048",
         **({"NotAfter": NOW + timedelta(days=days)} if days is not None else {})}
        for name, in_use, days in items]}, "us-east-1")]


def test_certificates_valid():
    result = evaluate("aws.acm.certificates_valid", certificates(("www", True, 200), ("spare", False, 3)))
    assert result.status.value == "pass" and result.findings[0].detail == "www.example: expires in 200 days"
    soon = evaluate("aws.acm.certificates_valid", certificates(("portal", True, 12)))
    assert soon.status.value == "fail" and "in use and expires in 12 days" in soon.findings[0].detail
    assert status("aws.acm.certificates_valid", certificates(("portal", True, 12)), min_days=10) == "pass"
    expired = evaluate("aws.acm.certificates_valid", certificates(("old", True, -3)))
    assert expired.status.value == "fail" and "expired 3 days ago" in expired.findings[0].detail
    assert status("aws.acm.certificates_valid", certificates(("pending", True, None))) == "error"
