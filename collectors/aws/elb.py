"""Load balancers of a region: application, network and gateway (``elbv2``) and classic (``elb``).

The listing is one call; the listeners, rules, attributes and policies are read per load
balancer, and a load balancer whose reads fail is named in ``unknown`` by its ARN.
"""
from __future__ import annotations

from typing import Any

from collectors.aws.detail import finish, read_each
from collectors.aws.session import Target


def listeners(t: Target) -> dict[str, Any]:
    """``DescribeLoadBalancers`` (every page); each load balancer gains ``Listeners`` (the raw
    ``DescribeListeners`` list, every page), and each plain-HTTP listener its ``Rules`` (the raw
    ``DescribeRules`` list), which say whether it only redirects to HTTPS."""
    listing = t.shared_list("elbv2", "DescribeLoadBalancers")

    def read(lb: dict[str, Any]) -> dict[str, Any]:
        arn = lb["LoadBalancerArn"]
        found = (t.paginate("elbv2", "DescribeListeners", LoadBalancerArn=arn) or {}).get(
            "Listeners", [])
        for listener in found:
            if listener.get("Protocol") == "HTTP":
                listener["Rules"] = (t.paginate("elbv2", "DescribeRules",
                                                ListenerArn=listener["ListenerArn"]) or {}).get(
                    "Rules", [])
        return {**lb, "Listeners": found}

    found, unknown = read_each(listing.get("LoadBalancers", []), read,
                               key=lambda lb: lb["LoadBalancerArn"])
    return finish({**listing, "LoadBalancers": found}, unknown, "load balancers")


def attributes(t: Target) -> dict[str, Any]:
    """``DescribeLoadBalancers`` (every page); each load balancer gains its ``Attributes`` (the
    raw ``DescribeLoadBalancerAttributes`` list: access logs, deletion protection...)."""
    listing = t.shared_list("elbv2", "DescribeLoadBalancers")

    def read(lb: dict[str, Any]) -> dict[str, Any]:
        arn = lb["LoadBalancerArn"]
        answer = t.call("elbv2", "DescribeLoadBalancerAttributes", what=arn,
                        LoadBalancerArn=arn) or {}
        return {**lb, "Attributes": answer.get("Attributes", [])}

    found, unknown = read_each(listing.get("LoadBalancers", []), read,
                               key=lambda lb: lb["LoadBalancerArn"])
    return finish({**listing, "LoadBalancers": found}, unknown, "load balancers")


def classic_arn(t: Target, name: str) -> str:
    return (f"arn:{t.account.partition}:elasticloadbalancing:{t.region}:{t.account.id}"
            f":loadbalancer/{name}")


def classic(t: Target) -> dict[str, Any]:
    """Classic load balancers: ``DescribeLoadBalancers`` (every page; listeners are inline with
    the names of their policies); each one with an HTTPS or SSL listener gains the raw
    ``DescribeLoadBalancerPolicies`` answer (a negotiation policy's
    ``Reference-Security-Policy`` names the predefined policy it copies)."""
    listing = t.paginate("elb", "DescribeLoadBalancers") or {}

    def read(lb: dict[str, Any]) -> dict[str, Any]:
        protocols = {(d.get("Listener") or {}).get("Protocol", "").upper()
                     for d in lb.get("ListenerDescriptions", [])}
        if not protocols & {"HTTPS", "SSL"}:
            return lb
        name = lb["LoadBalancerName"]
        return {**lb, "DescribeLoadBalancerPolicies": t.call(
            "elb", "DescribeLoadBalancerPolicies", what=name, LoadBalancerName=name)}

    found, unknown = read_each(listing.get("LoadBalancerDescriptions", []), read,
                               key=lambda lb: classic_arn(t, lb["LoadBalancerName"]))
    return finish({**listing, "LoadBalancerDescriptions": found}, unknown, "load balancers")
