"""Pure rule tests for admin ports open to the internet and public RDS instances."""
from __future__ import annotations

from tests.collectors.aws_fixtures import evaluate, make

ACCT = "123456789012"


def sg(group_id, *permissions):
    return {"GroupId": group_id, "GroupName": group_id, "IpPermissions": list(permissions)}


def rule(protocol="tcp", low=22, high=22, v4=(), v6=()):
    return {"IpProtocol": protocol, "FromPort": low, "ToPort": high,
            "IpRanges": [{"CidrIp": c} for c in v4], "Ipv6Ranges": [{"CidrIpv6": c} for c in v6]}


def groups(*items, state="ok"):
    return [make("aws.ec2.security_groups", {"SecurityGroups": list(items)} if state == "ok" else None,
                 "us-east-1", state=state, detail="" if state == "ok" else "ec2:DescribeSecurityGroups was denied")]


def status(control, records):
    return evaluate(control, records).status.value


def test_no_open_admin_ports_passes():
    safe = [sg("web", rule(low=443, high=443, v4=["0.0.0.0/0"]), rule(v4=["10.0.0.0/8"])),
            sg("dns", rule("udp", 53, 53, v4=["0.0.0.0/0"]))]
    result = evaluate("aws.ec2.no_open_admin_ports", groups(*safe))
    assert result.status.value == "pass"
    assert result.findings[0].resource == f"arn:aws:ec2:us-east-1:{ACCT}:security-group/web"


def test_open_admin_ports_fail_for_every_shape_of_rule():
    cases = {
        "22 (SSH) from 0.0.0.0/0": rule(v4=["0.0.0.0/0"]),
        "3389 (RDP) from ::/0": rule(low=3389, high=3389, v6=["::/0"]),
        "22 (SSH) from 0.0.0.0/0, 3389 (RDP) from 0.0.0.0/0": rule("-1", None, None, v4=["0.0.0.0/0"]),
        "22 (SSH) from ::/0": rule("tcp", 0, 1024, v6=["::/0"]),
    }
    for expected, permission in cases.items():
        result = evaluate("aws.ec2.no_open_admin_ports", groups(sg("bad", permission)))
        assert result.status.value == "fail", expected
        assert result.findings[0].detail == f"open to the internet: {expected}"


def test_open_admin_ports_unknown_is_an_error():
    assert status("aws.ec2.no_open_admin_ports", groups(state="denied")) == "error"
    assert status("aws.ec2.no_open_admin_ports", groups(sg("web")) + [
        make("aws.ec2.security_groups", {"SecurityGroups": [sg("x")]}, "eu-west-1", state="partial",
             detail="page 2: ec2:DescribeSecurityGroups failed")]) == "error"


def test_rds_not_public():
    def db(name, public):
        return {"DBInstanceArn": f"arn:aws:rds:us-east-1:{ACCT}:db:{name}", "PubliclyAccessible": public}

    def instances(*items, state="ok"):
        return [make("aws.rds.instances", {"DBInstances": list(items)} if state == "ok" else None,
                     "us-east-1", state=state, detail="" if state == "ok" else "rds:DescribeDBInstances was denied")]

    assert status("aws.rds.not_public", instances(db("a", False))) == "pass"
    result = evaluate("aws.rds.not_public", instances(db("a", False), db("b", True)))
    assert result.status.value == "fail"
    assert [f.resource for f in result.findings if f.status.value == "fail"] == [
        f"arn:aws:rds:us-east-1:{ACCT}:db:b"]
    assert status("aws.rds.not_public", instances()) == "not_applicable"
    assert status("aws.rds.not_public", instances(state="denied")) == "error"
