"""The accounts of an AWS Organization: listed with the default credentials, entered by a role.

:func:`list_organization` reads the organization (``organizations:DescribeOrganization``), every
account in it (``organizations:ListAccounts``) and, when ``include_ous`` names OUs, the accounts
under each of them at any depth (``ListAccountsForParent`` and ``ListOrganizationalUnitsForParent``,
recursively). It is called with the default credentials: the management account, or a delegated
administrator (a member account registered as delegated administrator for an AWS service, or
allowed by the organization's delegation policy). Who asked is recorded (``sts:GetCallerIdentity``),
and a listing refused to any other account names that account and what it lacks. A listing that
does not hold the organization's management account is not the organization's account list (AWS
always lists it; moto 5.2.5 answers a member account's ``ListAccounts`` with an empty list): it is
``error``, never "no accounts".

The answers, and which accounts are in scope and why the others are not, are one evidence record,
``aws.organizations.accounts`` at scope ``aws:organization:global``: the auditor sees which
accounts the scan covered. An account is in scope when it is ACTIVE, not in ``exclude_accounts``
and, with ``include_ous``, under one of them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from attest.calls import reading
from attest.logs import log_call
from attest.model import Evidence, EvidenceState
from collectors.aws.session import Account, CallFailed, SessionFactory, Target, failure
from collectors.aws_errors import failed_entry
from collectors.base import CollectContext

EVIDENCE = "aws.organizations.accounts"
SCOPE = "aws:organization:global"


@dataclass
class Listing:
    """What the organization says: its record, and the account ids in scope (sorted)."""
    record: Evidence
    account_ids: list[str] = field(default_factory=list)
    partition: str = "aws"

    def role_arn(self, account_id: str, role_name: str) -> str:
        return f"arn:{self.partition}:iam::{account_id}:role/{role_name}"


def list_organization(config: Any, ctx: CollectContext, endpoint_url: str | None,
                      factory: SessionFactory, page_size: int | None = None) -> Listing:
    """The organization's accounts in scope (``config``: the ``aws.organization`` section).

    A listing that fails is a record with state ``denied``/``error`` naming the refused action,
    and no account is in scope from the organization (its controls are then ``error``)."""
    account = Account("organization", factory, endpoint_url)
    t = Target(account, "us-east-1", page_size=page_size)
    selection = {"role_name": config.role_name, "include_ous": list(config.include_ous),
                 "exclude_accounts": list(config.exclude_accounts)}
    caller: dict[str, Any] = {}
    organization: dict[str, Any] = {}
    try:
        with reading(EVIDENCE):
            account.open()
            t.region = account.home_region
            caller = t.call("sts", "GetCallerIdentity", first_contact=True) or {}
            organization = (t.call("organizations", "DescribeOrganization")
                            or {}).get("Organization", {})
            accounts = (t.paginate("organizations", "ListAccounts") or {}).get("Accounts", [])
            units, under = _walk(t, config.include_ous) if config.include_ous else ([], None)
    except CallFailed as exc:   # the call recorded itself among the failed calls
        return Listing(_record(ctx, t, None, exc.state, _refused(exc, caller, organization)))
    except (BotoCoreError, ClientError) as exc:   # no session (e.g. no such profile)
        failed = failure(exc, "organizations:ListAccounts")
        log_call("aws", SCOPE, "organizations:ListAccounts", 0.0, failed.state.value,
                 failed.detail, failed=failed_entry(exc, "organizations:ListAccounts",
                                                    failed.state, t.region, evidence=EVIDENCE))
        return Listing(_record(ctx, t, None, failed.state, failed.detail))
    except Exception as exc:  # noqa: BLE001 - an unexpected answer stays with this record
        ctx.log.warning("aws %s: %s: %s", EVIDENCE, type(exc).__name__, exc)
        return Listing(_record(ctx, t, None, EvidenceState.ERROR, f"{type(exc).__name__}: {exc}"))
    management = str(organization.get("MasterAccountId") or "")
    listed = {str(a.get("Id", "")) for a in accounts}
    if not accounts or (management and management not in listed):
        # AWS always lists the management account: this is not the organization's account list
        return Listing(_record(ctx, t, None, EvidenceState.ERROR, (
            f"organizations:ListAccounts, called from account {_who(caller)}, answered "
            f"{len(accounts)} account(s) without the organization's management account "
            f"{management or '(unknown)'}: not the organization's account list. "
            + _needs(caller, management))))
    excluded = set(config.exclude_accounts)
    in_scope: list[str] = []
    out_of_scope: dict[str, str] = {}
    for entry in accounts:
        account_id = str(entry.get("Id", ""))
        state = entry.get("State") or entry.get("Status") or "ACTIVE"
        if state != "ACTIVE":
            out_of_scope[account_id] = f"not active ({state})"
        elif account_id in excluded:
            out_of_scope[account_id] = "in exclude_accounts"
        elif under is not None and account_id not in under:
            out_of_scope[account_id] = "not under include_ous"
        else:
            in_scope.append(account_id)
    caller_id = str(caller.get("Account", ""))
    payload = {"Organization": organization, "Accounts": accounts,
               "Caller": {"Account": caller_id, "Arn": caller.get("Arn"),
                          "As": "management account" if caller_id == management
                          else "delegated administrator"},
               "Selection": {**selection, "in_scope": sorted(in_scope),
                             "out_of_scope": dict(sorted(out_of_scope.items()))}}
    if config.include_ous:
        payload["OrganizationalUnits"] = units
    partition = str(organization.get("Arn", "arn:aws:")).split(":")[1] or "aws"
    return Listing(_record(ctx, t, payload, EvidenceState.OK, ""), sorted(in_scope), partition)


def _who(caller: dict[str, Any]) -> str:
    """``111122223333 (arn:aws:sts::111122223333:assumed-role/attest-nightly/i-0abc)``."""
    if not caller:
        return "(unknown: sts:GetCallerIdentity did not answer)"
    return f"{caller.get('Account')} ({caller.get('Arn')})"


def _needs(caller: dict[str, Any], management: str) -> str:
    """What the listing needs, said for the account that asked."""
    account = str(caller.get("Account", "")) if caller else ""
    actions = ("organizations:DescribeOrganization and organizations:ListAccounts (with "
               "include_ous also ListAccountsForParent and ListOrganizationalUnitsForParent; "
               "`attest permissions aws` grants them)")
    if not management:
        return (f"The identity needs {actions}, in the organization's management account or in "
                "a delegated administrator account.")
    if account == management:
        return f"{account} is the management account: its identity needs {actions}."
    return (f"Account {account or '(unknown)'} is not the organization's management account "
            f"({management}) and, to list the accounts, must be a delegated administrator: "
            f"register it from the management account (aws organizations "
            f"register-delegated-administrator --account-id {account or '<id>'} "
            f"--service-principal <an AWS service's principal>, or a delegation policy allowing "
            f"it organizations:ListAccounts), or run attest in the management account; its "
            f"identity needs {actions}.")


def _refused(exc: CallFailed, caller: dict[str, Any], organization: dict[str, Any]) -> str:
    """The detail of a listing that failed: AWS's words, the account that asked and, when the
    organization refused, what it needs."""
    if not caller:
        return exc.detail
    management = str(organization.get("MasterAccountId") or "")
    detail = f"{exc.detail} (called from account {_who(caller)})"
    if exc.state is EvidenceState.DENIED:
        detail += ". " + _needs(caller, management)
    return detail


def _walk(t: Target, roots: list[str]) -> tuple[list[dict[str, Any]], set[str]]:
    """Every OU under ``roots`` (breadth first) with its direct accounts and child OUs; and the
    ids of every account under them."""
    units: list[dict[str, Any]] = []
    under: set[str] = set()
    queue, seen = list(roots), set()
    while queue:
        parent = queue.pop(0)
        if parent in seen:
            continue
        seen.add(parent)
        accounts = (t.paginate("organizations", "ListAccountsForParent", ParentId=parent)
                    or {}).get("Accounts", [])
        children = (t.paginate("organizations", "ListOrganizationalUnitsForParent", ParentId=parent)
                    or {}).get("OrganizationalUnits", [])
        ids = sorted(str(a.get("Id")) for a in accounts)
        child_ids = [str(c.get("Id")) for c in children]
        units.append({"Id": parent, "AccountIds": ids, "ChildOrganizationalUnitIds": child_ids})
        under.update(ids)
        queue.extend(child_ids)
    return units, under


def _record(ctx: CollectContext, t: Target, payload: Any, state: EvidenceState,
            detail: str) -> Evidence:
    request = {"operations": sorted(t.requested), "region": t.region}
    return ctx.evidence(EVIDENCE, SCOPE, payload, state=state, detail=detail, request=request)
