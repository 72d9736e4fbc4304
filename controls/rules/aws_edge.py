"""Edge controls: TLS on load balancers, load balancer access logs, IMDSv2 on instances,
certificates in use that are about to expire."""
from __future__ import annotations

from typing import Any, Iterator

from attest.model import Finding, errored, failed, parse_time, passed
from controls.rules import EvidenceView, rule
from controls.rules._aws import offered

ENCRYPTED = ("HTTPS", "TLS", "SSL")


# --- aws.elb.https_only ---------------------------------------------------------------------

def _redirects_to_https(actions: list[dict[str, Any]]) -> bool:
    return bool(actions) and all(
        a.get("Type") == "redirect"
        and (a.get("RedirectConfig") or {}).get("Protocol", "").upper() == "HTTPS"
        for a in actions)


def _v2_problems(lb: dict[str, Any], allowed: set[str]) -> list[str]:
    problems = []
    for listener in lb.get("Listeners", []):
        protocol, port = listener.get("Protocol", "?"), listener.get("Port")
        if protocol in ENCRYPTED:
            policy = listener.get("SslPolicy")
            if policy not in allowed:
                problems.append(f"{protocol}:{port} uses {policy or 'no security policy'}")
        elif protocol == "HTTP":
            rules = listener.get("Rules")
            default = listener.get("DefaultActions", [])
            if rules is None:
                rules = [{"Actions": default}]
            if not _redirects_to_https(default) or not all(
                    _redirects_to_https(r.get("Actions", [])) for r in rules):
                problems.append(f"HTTP:{port} serves plain HTTP (not only a redirect to HTTPS)")
        else:
            problems.append(f"{protocol}:{port} is not encrypted by the load balancer")
    return problems


def _negotiation_policy(lb: dict[str, Any], names: list[str]) -> str | None:
    """The predefined policy (``Reference-Security-Policy``) of a classic listener's SSL
    negotiation policy; ``custom`` for a hand-made one; None when it has none."""
    described = (lb.get("DescribeLoadBalancerPolicies") or {}).get("PolicyDescriptions", [])
    for policy in described:
        if policy.get("PolicyName") in names and policy.get("PolicyTypeName") == "SSLNegotiationPolicyType":
            for attribute in policy.get("PolicyAttributeDescriptions", []):
                if attribute.get("AttributeName") == "Reference-Security-Policy":
                    return attribute.get("AttributeValue")
            return "custom"
    return None


def _classic_problems(lb: dict[str, Any], allowed: set[str]) -> list[str]:
    problems = []
    for description in lb.get("ListenerDescriptions", []):
        listener = description.get("Listener") or {}
        protocol, port = listener.get("Protocol", "?").upper(), listener.get("LoadBalancerPort")
        if protocol not in ENCRYPTED:
            problems.append(f"{protocol}:{port} is not encrypted (a classic load balancer cannot "
                            "redirect to HTTPS)")
            continue
        policy = _negotiation_policy(lb, description.get("PolicyNames", []))
        if policy not in allowed:
            problems.append(f"{protocol}:{port} uses "
                            + {None: "no SSL negotiation policy",
                               "custom": "a custom SSL negotiation policy"}.get(policy, policy))
    return problems


@rule("aws.elb.https_only")
def elb_https_only(ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    allowed = set(params["allowed_ssl_policies"] or [])
    for _, _, _, payload in offered(ev.get("aws.elbv2.listeners")):
        for lb in payload.get("LoadBalancers", []):
            if lb.get("Type") == "gateway":
                continue    # GENEVE to appliances: no TLS to terminate
            problems = _v2_problems(lb, allowed)
            if problems:
                yield failed(lb["LoadBalancerArn"], "; ".join(problems))
            else:
                listeners = ", ".join(f"{li['Protocol']}:{li['Port']}" for li in lb.get("Listeners", []))
                yield passed(lb["LoadBalancerArn"], f"listeners {listeners or 'none'}: TLS with an "
                                                    "allowed policy or a redirect to HTTPS")
    for _, account, region, payload in offered(ev.get("aws.elb.load_balancers")):
        for lb in payload.get("LoadBalancerDescriptions", []):
            arn = f"arn:aws:elasticloadbalancing:{region}:{account}:loadbalancer/{lb['LoadBalancerName']}"
            problems = _classic_problems(lb, allowed)
            if problems:
                yield failed(arn, "classic load balancer: " + "; ".join(problems))
            else:
                yield passed(arn, "classic load balancer: every listener uses TLS with an allowed "
                                  "policy")


# --- aws.elb.access_logs --------------------------------------------------------------------

@rule("aws.elb.access_logs")
def elb_access_logs(ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    for _, _, _, payload in offered(ev.get("aws.elbv2.attributes")):
        for lb in payload.get("LoadBalancers", []):
            if lb.get("Type") not in ("application", "network"):
                continue
            attributes = {a.get("Key"): a.get("Value") for a in lb.get("Attributes", [])}
            if attributes.get("access_logs.s3.enabled") == "true":
                bucket = attributes.get("access_logs.s3.bucket") or "?"
                yield passed(lb["LoadBalancerArn"], f"access logs to s3://{bucket}")
            else:
                yield failed(lb["LoadBalancerArn"], f"{lb['Type']} load balancer writes no access logs")


# --- aws.ec2.imdsv2 -------------------------------------------------------------------------

@rule("aws.ec2.imdsv2")
def ec2_imdsv2(ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    for _, account, region, payload in offered(ev.get("aws.ec2.instances")):
        for reservation in payload.get("Reservations", []):
            for instance in reservation.get("Instances", []):
                if (instance.get("State") or {}).get("Name") != "running":
                    continue
                arn = f"arn:aws:ec2:{region}:{account}:instance/{instance['InstanceId']}"
                options = instance.get("MetadataOptions") or {}
                if options.get("HttpEndpoint") == "disabled":
                    yield passed(arn, "instance metadata service disabled")
                elif options.get("HttpTokens") == "required":
                    yield passed(arn, "IMDSv2 required")
                else:
                    yield failed(arn, f"IMDSv1 allowed (HttpTokens {options.get('HttpTokens', 'unset')})")


# --- aws.acm.certificates_valid -------------------------------------------------------------

@rule("aws.acm.certificates_valid")
def acm_certificates_valid(ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    min_days = params["min_days"]
    for _, _, _, payload in offered(ev.get("aws.acm.certificates")):
        for cert in payload.get("CertificateSummaryList", []):
            if not cert.get("InUse"):
                continue
            arn, domain = cert["CertificateArn"], cert.get("DomainName", "?")
            not_after = parse_time(cert.get("NotAfter"))
            if not_after is None:
                yield errored(arn, f"{domain}: in use, expiry unknown (status {cert.get('Status')})")
                continue
            days = (not_after - ev.now).days
            if days < 0:
                yield failed(arn, f"{domain}: in use and expired {-days} days ago")
            elif days < min_days:
                yield failed(arn, f"{domain}: in use and expires in {days} days "
                                  f"(on {not_after.date()}; min {min_days})")
            else:
                yield passed(arn, f"{domain}: expires in {days} days")
