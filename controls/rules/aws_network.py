"""Network exposure controls: admin ports open to the internet, public RDS instances."""
from __future__ import annotations

from typing import Any, Iterator

from attest.model import Finding, failed, passed
from controls.rules import EvidenceView, rule
from controls.rules._aws import offered

ADMIN_PORTS = {22: "SSH", 3389: "RDP"}
ANYWHERE = ("0.0.0.0/0", "::/0")


def _open_admin_ports(permission: dict[str, Any]) -> list[str]:
    """The admin ports a rule opens to the whole internet, e.g. ["22 (SSH) from 0.0.0.0/0"]."""
    protocol = str(permission.get("IpProtocol"))
    if protocol not in ("-1", "tcp", "6"):
        return []
    sources = [r.get("CidrIp") for r in permission.get("IpRanges", [])]
    sources += [r.get("CidrIpv6") for r in permission.get("Ipv6Ranges", [])]
    anywhere = [s for s in sources if s in ANYWHERE]
    if not anywhere:
        return []
    low, high = permission.get("FromPort"), permission.get("ToPort")
    if protocol == "-1" or low is None or low == -1:
        ports = list(ADMIN_PORTS)
    else:
        ports = [p for p in ADMIN_PORTS if low <= p <= high]
    return [f"{p} ({ADMIN_PORTS[p]}) from {s}" for p in ports for s in anywhere]


@rule("aws.ec2.no_open_admin_ports")
def no_open_admin_ports(ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    for _, account, region, payload in offered(ev.get("aws.ec2.security_groups")):
        for group in payload.get("SecurityGroups", []):
            arn = (group.get("SecurityGroupArn")
                   or f"arn:aws:ec2:{region}:{account}:security-group/{group['GroupId']}")
            opened = [o for p in group.get("IpPermissions", []) for o in _open_admin_ports(p)]
            if opened:
                yield failed(arn, "open to the internet: " + ", ".join(opened))
            else:
                yield passed(arn, "no admin port open to the internet")


@rule("aws.rds.not_public")
def rds_not_public(ev: EvidenceView, params: dict[str, Any]) -> Iterator[Finding]:
    for _, _, _, payload in offered(ev.get("aws.rds.instances")):
        for db in payload.get("DBInstances", []):
            if db.get("PubliclyAccessible"):
                yield failed(db["DBInstanceArn"], "publicly accessible")
            else:
                yield passed(db["DBInstanceArn"], "not publicly accessible")
