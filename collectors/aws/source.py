"""The AWS source: its config section and what it is (no SDK imported here).

The collector is :mod:`collectors.aws.collector`; the demo (moto's server, seeded) is
:mod:`collectors.aws.demo`.
"""
from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from attest.sources import WITHOUT_CONFIG_FILE, Source
from collectors.aws.specs import PRODUCES


class AccountConfig(BaseModel):
    """One account: a role to assume (``role_arn``, optional ``external_id``, ``session_name``)
    with the default credentials, or a named ``profile``."""
    model_config = ConfigDict(extra="forbid")
    role_arn: str | None = Field(None, pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$")
    external_id: str | None = None          # not a secret: it only guards against confused deputies
    session_name: str | None = Field(None, pattern=r"^[\w+=,.@-]{2,64}$")
    profile: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> "AccountConfig":
        if bool(self.role_arn) == bool(self.profile):
            raise ValueError("give either role_arn or profile")
        if self.profile and (self.external_id or self.session_name):
            raise ValueError("external_id and session_name go with role_arn, not profile")
        return self


class OrganizationConfig(BaseModel):
    """Every active account of the AWS Organization, entered through the same role in each.

    The accounts are listed with the default credentials (the management account, or a delegated
    administrator of AWS Organizations); the role ``arn:<partition>:iam::<id>:role/<role_name>``
    is assumed in each. ``include_ous``: only the accounts under these OUs (or roots), at any
    depth; empty = every account. ``exclude_accounts``: never these."""
    model_config = ConfigDict(extra="forbid")
    role_name: str = Field(pattern=r"^[\w+=,.@-]+(/[\w+=,.@-]+)*$", max_length=512)
    external_id: str | None = None          # not a secret: it only guards against confused deputies
    session_name: str | None = Field(None, pattern=r"^[\w+=,.@-]{2,64}$")
    include_ous: list[Annotated[str, Field(pattern=r"^(ou-[0-9a-z]{4,32}-[0-9a-z]{8,32}|r-[0-9a-z]{4,32})$")]] = []
    exclude_accounts: list[Annotated[str, Field(pattern=r"^\d{12}$")]] = []


REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d+")


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")
    regions: Literal["all"] | list[str] = "all"   # "all": the account's enabled regions
    endpoint_url: str | None = None               # e.g. a moto server; used for every call
    accounts: list[AccountConfig] = []            # empty: the default credential chain
    # every account of the AWS Organization (with `accounts`: both, each account once)
    organization: OrganizationConfig | None = None
    page_size: int | None = Field(None, ge=1)     # small pages (tests); raised to each API's minimum
    max_workers: int = Field(8, ge=1, le=64)      # reads at once within one account
    max_accounts: int = Field(4, ge=1, le=64)     # accounts scanned at once

    @field_validator("regions", mode="before")
    @classmethod
    def _regions(cls, value: Any) -> Any:
        if value == "all" or (isinstance(value, list) and value and all(
                isinstance(r, str) and REGION.fullmatch(r) for r in value)):
            return value
        raise ValueError("expected 'all' or a list of region names such as [us-east-1, eu-west-1]")


SOURCE = Source(
    name="aws", title="AWS", order=10, config=Config,
    collector="collectors.aws.collector:AwsCollector",
    produces=PRODUCES, sdks=("boto3", "botocore"),
    demo="collectors.aws.demo:start_demo",
    permissions="collectors.aws.specs:policy_json",
    enabled_without_config=WITHOUT_CONFIG_FILE,
    reads_with="boto3 (every region, every account)",
)
