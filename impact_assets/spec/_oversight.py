"""People in the loop: who signs a release off, and where notices of breaches go.

Channel settings name environment variables for their secrets (an SMTP password, a webhook URL that
carries a token), never the secrets themselves: the spec is reviewed and versioned, secrets are not.
"""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from impact_assets.spec._base import Identifier, NonEmptyText, SpecModel

NOTICE_KINDS = (
    "breach",
    "action_opened",
    "escalation",
    "waiver_reopened",
    "sign_off_requested",
    "rollback",
    "run_failed",
)

DEFAULT_NOTICES_FILE = "{state_dir}/notifications/notices.jsonl"


class SignOffPolicy(SpecModel):
    """Who must sign a release off, and how many of them.

    With a policy, an ``approve`` of the register is a recommendation: the model version is promoted
    once ``required`` different approvers have signed it off. A rollback stays automatic.
    """

    approvers: tuple[NonEmptyText, ...] = Field(min_length=1)
    """People, or names of `roles`, who may sign off."""
    roles: dict[Identifier, tuple[NonEmptyText, ...]] = Field(default_factory=dict)
    """Roles named in `approvers` and the people who hold them."""
    required: int = Field(default=2, ge=1)
    """How many different approvers must sign (2: four eyes)."""
    proposer_may_sign: bool = False
    """Whether whoever proposed the model version (trained and registered it) may sign it off."""

    def people(self) -> dict[str, str | None]:
        """Each person who may sign, with the role through which they may (``None``: by name)."""
        found: dict[str, str | None] = {}
        for name in self.approvers:
            if name in self.roles:
                for person in self.roles[name]:
                    found.setdefault(person, name)
            else:
                found[name] = None
        return found

    @model_validator(mode="after")
    def _enough_people(self) -> SignOffPolicy:
        unused = sorted(set(self.roles) - set(self.approvers))
        if unused:
            raise ValueError(f"roles {unused} are declared but not among the approvers")
        if len(self.people()) < self.required:
            raise ValueError(
                f"{self.required} sign-offs are required but only {len(self.people())} people may sign: {sorted(self.people())}"
            )
        return self


class FileChannel(SpecModel):
    """Notices appended as JSON lines to a local file (the default channel)."""

    kind: Literal["file"]
    """Appends each notice to a file."""
    name: Identifier = "file"
    """Name of the channel in delivery records."""
    path: str = DEFAULT_NOTICES_FILE
    """File written (`{state_dir}` and `{project_dir}` are expanded; relative to the project)."""


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"{value!r} is not an http(s) URL with a host (e.g. https://hooks.example.org/impact)"
        )
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError as exc:
        raise ValueError(f"{value!r} has a malformed port: {exc}") from None
    return value


class WebhookChannel(SpecModel):
    """Notices POSTed as JSON to an HTTP endpoint (a generic webhook, Slack or Microsoft Teams)."""

    kind: Literal["webhook"]
    """POSTs each notice as JSON."""
    name: Identifier = "webhook"
    """Name of the channel in delivery records."""
    url: str | None = None
    """Endpoint, when it holds no secret."""
    url_env: str | None = None
    """Environment variable holding the endpoint (Slack and Teams webhook URLs carry a token)."""
    token_env: str | None = None
    """Environment variable holding a bearer token sent as `Authorization: Bearer ...`."""
    format: Literal["json", "slack"] = "json"
    """`json`: the notice itself; `slack`: `{"text": ...}`, which Slack and Teams incoming webhooks take."""
    timeout_seconds: float = Field(default=10.0, gt=0)
    """Seconds to wait for the endpoint."""

    @field_validator("url")
    @classmethod
    def _valid_url(cls, value: str | None) -> str | None:
        return None if value is None else _http_url(value)

    @model_validator(mode="after")
    def _one_endpoint(self) -> WebhookChannel:
        if (self.url is None) == (self.url_env is None):
            raise ValueError("give exactly one of url and url_env")
        return self


class SmtpChannel(SpecModel):
    """Notices sent as e-mail over SMTP."""

    kind: Literal["smtp"]
    """Sends each notice as an e-mail."""
    name: Identifier = "smtp"
    """Name of the channel in delivery records."""
    host: NonEmptyText
    """SMTP server."""
    port: int = Field(default=587, ge=1, le=65535)
    """SMTP port."""
    security: Literal["starttls", "ssl", "none"] = "starttls"
    """`starttls` (port 587), `ssl` (port 465) or `none` (a relay on loopback only)."""
    sender: NonEmptyText
    """From address."""
    to: tuple[NonEmptyText, ...] = Field(min_length=1)
    """Recipients."""
    username: str | None = None
    """Login, if the server wants one."""
    password_env: str | None = None
    """Environment variable holding the password."""
    timeout_seconds: float = Field(default=10.0, gt=0)
    """Seconds to wait for the server."""

    @field_validator("host")
    @classmethod
    def _bare_host(cls, value: str) -> str:
        if "/" in value or ":" in value or " " in value:
            raise ValueError(f"{value!r} is not a host name (give the port as `port`)")
        return value

    @model_validator(mode="after")
    def _login(self) -> SmtpChannel:
        if (self.username is None) != (self.password_env is None):
            raise ValueError("give both username and password_env, or neither")
        return self


Channel = Annotated[FileChannel | WebhookChannel | SmtpChannel, Field(discriminator="kind")]


class NotificationsSpec(SpecModel):
    """Where notices of breaches, actions, escalations, releases and failed runs are delivered."""

    channels: tuple[Channel, ...] = (FileChannel(kind="file"),)
    """Channels; each receives every notice of the kinds in `on` once. Default: a local JSON-lines file."""
    on: tuple[Literal[NOTICE_KINDS], ...] = NOTICE_KINDS  # type: ignore[valid-type]
    """Kinds of notices sent."""

    @model_validator(mode="after")
    def _unique_names(self) -> NotificationsSpec:
        names = [c.name for c in self.channels]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"channel names must be unique; repeated: {repeated}")
        return self
