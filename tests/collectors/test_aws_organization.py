"""aws.organization: every account of the AWS Organization, entered through one role, against
moto's Organizations and STS (real HTTP; a loopback proxy refuses the AssumeRole calls a test
chooses). Moto keeps each account's resources apart: a role assumed in a member account reaches
that account's own estate."""
from __future__ import annotations

import json
import threading

import pytest

from attest.cli import main
from attest.model import EvidenceState, Status
from collectors.aws.collector import ACCOUNT_EVIDENCE, AwsCollector
from collectors.aws.demo import client
from collectors.aws.source import Config
from collectors.base import CollectContext
from tests.collectors.aws_fixtures import (AWS_CONTROLS, NOW, DenyingProxy, FailingFirst,
                                           OrganizationsAsAws,
                                           collect, deny_assume_role, evaluate, member_client,
                                           member_credentials, organization, record)

HOME = "us-east-1"
ROLE = "attest-audit"
EXTERNAL_ID = "acme-attest-7f3a"
ORG = "aws:organization:global"
STRONG_POLICY = dict(MinimumPasswordLength=16, RequireSymbols=True, RequireNumbers=True,
                     RequireUppercaseCharacters=True, RequireLowercaseCharacters=True,
                     PasswordReusePrevention=24, MaxPasswordAge=90)


def org_config(**extra):
    return {"organization": {"role_name": ROLE, "external_id": EXTERNAL_ID, **extra}}


def test_every_account_is_scanned_and_one_that_cannot_be_entered_is_error_for_itself(moto):
    ids = organization(moto, ["payments", "sandbox"])
    payments, sandbox, management = ids["payments"], ids["sandbox"], ids["management"]
    member_client(moto, payments, "iam").update_account_password_policy(**STRONG_POLICY)
    member_client(moto, payments, "s3").create_bucket(Bucket="acme-payments-ledger")
    client(moto, "s3").create_bucket(Bucket="acme-management-trail")

    proxy = DenyingProxy(moto, deny_assume_role(sandbox))
    with proxy as url:
        records = collect(url, [HOME], **org_config())

    listing = record(records, "aws.organizations.accounts", ORG)
    assert listing.state is EvidenceState.OK
    assert listing.payload["Selection"]["in_scope"] == sorted([management, payments, sandbox])
    assert {a["Id"] for a in listing.payload["Accounts"]} == {management, payments, sandbox}
    assert listing.payload["Organization"]["MasterAccountId"] == management
    # each account read through the role, with the external id, in its own estate
    identity = record(records, "aws.sts.caller_identity", f"aws:{payments}:global").payload
    assert identity["Arn"].endswith(f":assumed-role/{ROLE}/attest")
    assert proxy.count(f"ExternalId={EXTERNAL_ID}".encode()) == 3
    buckets = record(records, "aws.s3.buckets", f"aws:{payments}:global").payload["Buckets"]
    assert [b["Name"] for b in buckets] == ["acme-payments-ledger"]
    # the account whose role cannot be assumed: every record denied, naming it and the role
    refused = [r for r in records if r.scope == f"aws:{sandbox}:global"]
    assert sorted(r.name for r in refused) == sorted(ACCOUNT_EVIDENCE)
    for r in refused:
        assert r.state is EvidenceState.DENIED
        assert f"account {sandbox} could not be identified: sts:AssumeRole was denied" in r.detail
        assert f"arn:aws:iam::{sandbox}:role/{ROLE}" in r.detail
    assert not [r for r in records if f":{sandbox}:" in r.scope and r.scope.endswith(HOME)]

    # judged: the other accounts keep their verdicts; the refused one is error, for itself only
    policy = evaluate("aws.iam.password_policy", records)
    by_scope = {f.resource.split(":")[1]: f.status for f in policy.findings}
    assert by_scope == {payments: Status.PASS, management: Status.FAIL, sandbox: Status.ERROR}
    assert policy.status is Status.FAIL
    encrypted = evaluate("aws.s3.encrypted", records)
    errors = [f for f in encrypted.findings if f.status is Status.ERROR]
    assert [f.resource for f in errors] == [f"aws:{sandbox}:global"]
    assert {f.resource for f in encrypted.findings} >= {"arn:aws:s3:::acme-payments-ledger",
                                                        "arn:aws:s3:::acme-management-trail"}


def test_a_fault_sts_answers_to_assume_role_gets_the_full_retry_budget(moto):
    """sts:AssumeRole makes a few quick tries (FIRST_CONTACT: a dead endpoint costs seconds);
    a 5xx answered on each of them shows STS alive, so the call is made again with the full
    budget: five 503s in a row (more than the quick tries) cost nothing, not the account."""
    from collectors.aws.session import FIRST_CONTACT
    ids = organization(moto, ["payments"])
    payments = ids["payments"]
    member_client(moto, payments, "iam").update_account_password_policy(**STRONG_POLICY)
    role = f"iam%3A%3A{payments}%3Arole".encode()
    proxy = FailingFirst(moto, lambda region, service, body: (
        service == "sts" and b"Action=AssumeRole" in body and role in body), times=5)
    with proxy as url:
        records = collect(url, [HOME], **org_config())
    assert proxy.failed == 5 > FIRST_CONTACT["max_attempts"]
    assert proxy.count(b"Action=AssumeRole") == 6 + 1     # 5 faults + the answer, + management's
    assert [r for r in records if payments in r.scope]
    assert not [(r.name, r.scope, r.detail) for r in records if not r.state.known]
    policy = evaluate("aws.iam.password_policy", records)
    assert {f.resource.split(":")[1]: f.status for f in policy.findings}[payments] is Status.PASS


def test_include_ous_at_any_depth_exclusions_and_closed_accounts(moto):
    ids = organization(moto, ["web", "db", "legacy", "lab", "closed"])
    org = client(moto, "organizations")
    workloads = org.create_organizational_unit(ParentId=ids["root"], Name="workloads")
    workloads = workloads["OrganizationalUnit"]["Id"]
    prod = org.create_organizational_unit(ParentId=workloads, Name="prod")["OrganizationalUnit"]["Id"]
    for name, parent in (("web", workloads), ("db", prod), ("legacy", prod), ("closed", prod)):
        org.move_account(AccountId=ids[name], SourceParentId=ids["root"], DestinationParentId=parent)
    org.close_account(AccountId=ids["closed"])

    records = collect(moto, [HOME], **org_config(include_ous=[workloads],
                                                 exclude_accounts=[ids["legacy"]]))
    selection = record(records, "aws.organizations.accounts", ORG).payload["Selection"]
    assert selection["in_scope"] == sorted([ids["web"], ids["db"]])
    assert selection["out_of_scope"] == {
        ids["management"]: "not under include_ous", ids["lab"]: "not under include_ous",
        ids["legacy"]: "in exclude_accounts", ids["closed"]: "not active (SUSPENDED)"}
    units = record(records, "aws.organizations.accounts", ORG).payload["OrganizationalUnits"]
    assert [u["Id"] for u in units] == [workloads, prod]
    scanned = {r.scope.split(":")[1] for r in records if r.name == "aws.sts.caller_identity"}
    assert scanned == {ids["web"], ids["db"]}


def test_an_organization_that_cannot_be_listed_is_error_never_no_accounts(moto):
    organization(moto, ["payments"])
    explicit = "arn:aws:iam::210987654321:role/attest-audit"
    deny = lambda region, service, body: service == "organizations"  # noqa: E731
    with DenyingProxy(moto, deny) as url:
        records = collect(url, [HOME], accounts=[{"role_arn": explicit}], **org_config())
    listing = record(records, "aws.organizations.accounts", ORG)
    assert listing.state is EvidenceState.DENIED
    assert "organizations:DescribeOrganization was denied" in listing.detail
    unknown = [r for r in records if r.scope == ORG and r.name != listing.name]
    assert sorted(r.name for r in unknown) == sorted(ACCOUNT_EVIDENCE)
    assert all("the organization's accounts are unknown" in r.detail for r in unknown)
    # the accounts listed under `accounts` are scanned all the same; the default chain is not
    scanned = {r.scope.split(":")[1] for r in records
               if r.name == "aws.sts.caller_identity" and r.state is EvidenceState.OK}
    assert scanned == {"210987654321"}
    judged = evaluate("aws.guardduty.enabled", records)
    assert {(f.resource, f.status) for f in judged.findings
            if f.status is Status.ERROR} == {(ORG, Status.ERROR)}
    assert judged.status in (Status.ERROR, Status.FAIL)


def test_accounts_and_organization_together_scan_each_account_once(moto):
    ids = organization(moto, ["payments"])
    outside = "arn:aws:iam::210987654321:role/auditor"            # not in the organization
    payments = f"arn:aws:iam::{ids['payments']}:role/break-glass-audit"   # listed on purpose
    proxy = DenyingProxy(moto, lambda region, service, body: False)
    with proxy as url:
        records = collect(url, [HOME], accounts=[{"role_arn": outside}, {"role_arn": payments}],
                          **org_config())
    identities = [r for r in records if r.name == "aws.sts.caller_identity"]
    assert sorted(r.scope.split(":")[1] for r in identities) == sorted(
        [ids["management"], ids["payments"], "210987654321"])
    assert record(records, "aws.sts.caller_identity",
                  f"aws:{ids['payments']}:global").payload["Arn"].split("/")[-2] == "break-glass-audit"
    assert proxy.count(b"break-glass-audit") == 1 and proxy.count(b"attest-audit") == 1


def test_units_split_the_organization_and_collect_only_the_units_named(moto):
    ids = organization(moto, ["payments", "sandbox"])
    collector = AwsCollector(Config(endpoint_url=moto, regions=[HOME], **org_config()))
    ctx = CollectContext(now=NOW)
    assert collector.units(ctx) == ["organization", *sorted([ids["management"], ids["payments"],
                                                             ids["sandbox"]])]
    records = list(collector.collect(ctx, units={ids["payments"]}))
    assert {r.scope.split(":")[1] for r in records} == {ids["payments"]}
    only_listing = list(collector.collect(ctx, units={"organization"}))
    assert [r.name for r in only_listing] == ["aws.organizations.accounts"]


@pytest.mark.parametrize("max_accounts", [1, 2])
def test_accounts_are_scanned_at_most_max_accounts_at_once(moto, monkeypatch, max_accounts):
    organization(moto, ["a", "b", "c"])
    active, peak, lock = [0], [0], threading.Lock()
    inner = AwsCollector._collect_account

    def counted(self, ctx, account):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        try:
            yield from inner(self, ctx, account)
        finally:
            with lock:
                active[0] -= 1

    monkeypatch.setattr(AwsCollector, "_collect_account", counted)
    records = collect(moto, [HOME], max_accounts=max_accounts, **org_config())
    assert len([r for r in records if r.name == "aws.sts.caller_identity"]) == 4
    assert peak[0] == max_accounts


def test_organization_config_is_checked():
    from pydantic import ValidationError
    for bad in ({"role_name": "attest audit"}, {"role_name": ROLE, "include_ous": ["workloads"]},
                {"role_name": ROLE, "exclude_accounts": ["12345"]}, {"role_name": ROLE, "x": 1},
                {}):
        with pytest.raises(ValidationError):
            Config(organization=bad)
    assert Config(organization={"role_name": "audit/attest-audit"}).organization.role_name


# --- listed from a delegated administrator, or from an account that may not list it ---------

def test_a_delegated_administrator_lists_and_scans_every_account(moto, monkeypatch):
    """attest runs in a member account registered as delegated administrator (for GuardDuty):
    it lists the organization, records that it did so as a delegated administrator, and
    enters every account (the management account and itself included) through the role."""
    ids = organization(moto, ["security", "payments"])
    security, payments, management = ids["security"], ids["payments"], ids["management"]
    client(moto, "organizations").register_delegated_administrator(
        AccountId=security, ServicePrincipal="guardduty.amazonaws.com")
    member_client(moto, payments, "s3").create_bucket(Bucket="acme-payments-ledger")
    creds = member_credentials(moto, security)
    for name, value in creds.items():
        monkeypatch.setenv(name, value)                 # attest runs in the security account

    proxy = OrganizationsAsAws(moto, management, {creds["AWS_ACCESS_KEY_ID"]: security})
    with proxy as url:
        records = collect(url, [HOME], **org_config())

    listing = record(records, "aws.organizations.accounts", ORG)
    assert listing.state is EvidenceState.OK, listing.detail
    assert listing.payload["Caller"] == {
        "Account": security, "As": "delegated administrator",
        "Arn": f"arn:aws:sts::{security}:assumed-role/OrganizationAccountAccessRole/attest-nightly"}
    assert listing.payload["Organization"]["MasterAccountId"] == management
    assert listing.payload["Selection"]["in_scope"] == sorted([management, security, payments])
    assert proxy.answered == [("ListAccounts", security, "delegated administrator")]
    for account in (management, security, payments):
        identity = record(records, "aws.sts.caller_identity", f"aws:{account}:global")
        assert identity.state is EvidenceState.OK
        assert identity.payload["Arn"] == f"arn:aws:sts::{account}:assumed-role/{ROLE}/attest"
    buckets = record(records, "aws.s3.buckets", f"aws:{payments}:global").payload["Buckets"]
    assert [b["Name"] for b in buckets] == ["acme-payments-ledger"]
    assert not [r for r in records if r.scope == ORG and r.name != listing.name]


def test_neither_management_nor_delegated_administrator_is_one_clear_error_never_a_pass(
        moto, monkeypatch, tmp_path, capsys):
    """attest runs in a member account that is no delegated administrator: AWS refuses its
    ListAccounts. The listing is denied naming the account, the management account and what to
    do; every AWS control is error (none passes, nothing is scanned), and `attest scan` exits 3
    as the README's exit codes say."""
    ids = organization(moto, ["security", "sandbox"])
    sandbox, management = ids["sandbox"], ids["management"]
    client(moto, "organizations").register_delegated_administrator(
        AccountId=ids["security"], ServicePrincipal="guardduty.amazonaws.com")
    creds = member_credentials(moto, sandbox)
    for name, value in creds.items():
        monkeypatch.setenv(name, value)

    proxy = OrganizationsAsAws(moto, management, {creds["AWS_ACCESS_KEY_ID"]: sandbox})
    with proxy as url:
        records = collect(url, [HOME], **org_config())
        config = tmp_path / "attest.yaml"
        config.write_text(f"output_dir: ev\naws:\n  endpoint_url: {url}\n  regions: [{HOME}]\n"
                          f"  organization: {{role_name: {ROLE}}}\n", encoding="utf-8")
        code = main(["scan", "--config", str(config), "--only", "aws", "--format", "json"])
    listing = record(records, "aws.organizations.accounts", ORG)
    assert listing.state is EvidenceState.DENIED
    detail = listing.detail
    assert detail.startswith("organizations:ListAccounts was denied: AccessDeniedException")
    assert f"called from account {sandbox} (arn:aws:sts::{sandbox}:assumed-role/" in detail
    assert (f"Account {sandbox} is not the organization's management account ({management}) and, "
            "to list the accounts, must be a delegated administrator") in detail
    assert f"register-delegated-administrator --account-id {sandbox}" in detail
    assert proxy.answered[0] == ("ListAccounts", sandbox, "refused")
    assert not [r for r in records if r.scope != ORG]                     # nothing scanned
    for cid in AWS_CONTROLS:
        assert evaluate(cid, records).status is Status.ERROR, cid

    results = json.loads(capsys.readouterr().out)
    assert code == 3
    assert {c["status"] for c in results["controls"]} == {"error"}
    assert len(results["controls"]) == len(AWS_CONTROLS)


def test_moto_s_empty_listing_for_a_member_account_is_error_not_no_accounts(moto, monkeypatch):
    """Straight to moto, a member account that is no delegated administrator gets an empty
    ListAccounts (moto does not refuse it, as AWS would). A listing without the management
    account is not the organization's: error, naming the account; never "no accounts"."""
    ids = organization(moto, ["sandbox"])
    sandbox, management = ids["sandbox"], ids["management"]
    for name, value in member_credentials(moto, sandbox).items():
        monkeypatch.setenv(name, value)
    records = collect(moto, [HOME], **org_config())
    listing = record(records, "aws.organizations.accounts", ORG)
    assert listing.state is EvidenceState.ERROR
    assert listing.detail.startswith(
        f"organizations:ListAccounts, called from account {sandbox} (arn:aws:sts::{sandbox}:"
        "assumed-role/OrganizationAccountAccessRole/attest-nightly), answered 0 account(s) "
        f"without the organization's management account {management}: not the organization's "
        "account list."), listing.detail
    assert "must be a delegated administrator" in listing.detail
    assert not [r for r in records if r.scope != ORG]                     # nothing scanned
    for cid in AWS_CONTROLS:
        assert evaluate(cid, records).status is Status.ERROR, cid


def test_the_management_account_says_so_and_a_refusal_there_names_the_permission(moto):
    ids = organization(moto, ["payments"])
    records = collect(moto, [HOME], **org_config())
    caller = record(records, "aws.organizations.accounts", ORG).payload["Caller"]
    assert (caller["Account"], caller["As"]) == (ids["management"], "management account")
    deny = lambda region, service, body, target: target.endswith(".ListAccounts")  # noqa: E731
    with DenyingProxy(moto, deny, with_target=True) as url:
        refused = record(collect(url, [HOME], **org_config()), "aws.organizations.accounts", ORG)
    assert refused.state is EvidenceState.DENIED
    assert (f"{ids['management']} is the management account: its identity needs "
            "organizations:DescribeOrganization and organizations:ListAccounts") in refused.detail


def test_memory_an_account_holds_is_let_go_of_region_by_region_and_when_it_is_read(moto):
    """Memory that does not grow with the organization (issue 9): every account's session uses
    the one botocore data loader (the service models are held once), an account's reads go
    region by region and each region's clients are let go of when its reads are done, and a
    read account keeps no session or client."""
    from collectors.aws import session as aws_session
    organization(moto, ["a", "b"])
    regions = [HOME, "eu-west-1", "ap-south-1"]
    collector = AwsCollector(Config(endpoint_url=moto, regions=regions, max_workers=2, **org_config()))
    ctx = CollectContext(now=NOW)
    loaders, live_regions = set(), []
    inner = aws_session.Clients.get

    def watched(self, service, region, first_contact=False):
        client = inner(self, service, region, first_contact)
        loaders.add(id(self.session._session.get_component("data_loader")))
        live_regions.append(len({key[1] for key in self._cache} - {HOME}))
        return client

    aws_session.Clients.get = watched
    try:
        records = list(collector.collect(ctx))
    finally:
        aws_session.Clients.get = inner
    assert {r.scope.split(":")[1] for r in records if r.name == "aws.sts.caller_identity"} \
        and all(r.state is EvidenceState.OK for r in records if r.name == "aws.sts.caller_identity")
    assert len(loaders) == 1                                   # one loader for every account
    assert max(live_regions) <= 2 < len(regions) * 3            # never every region's clients
    accounts = collector._plan.accounts
    assert len(accounts) == 3 and all(a.session is None and a.clients is None for a in accounts)
    order = [region for _, region in collector._plan_reads(regions)]
    regional = [r for r in order if r != "global"]
    assert regional == sorted(regional, key=regions.index)      # region by region
