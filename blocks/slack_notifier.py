"""SlackNotifier: post migration news (plans waiting for approval, results, drift)."""

from __future__ import annotations

from typing import Any

from prefect.blocks.core import Block
from pydantic import Field, SecretStr
from slack_sdk import WebClient


class SlackNotifier(Block):
    """A Slack channel that Lockplane flows post to, through a bot token."""

    _block_type_name = "Lockplane Slack Notifier"
    _block_type_slug = "lockplane-slack-notifier"
    _description = "Posts Lockplane migration plans, approvals, results and drift to Slack."

    bot_token: SecretStr = Field(description="Slack bot token (xoxb-...).")
    channel: str = Field(description="Channel name or id, e.g. #db-changes.")
    base_url: str | None = Field(
        default=None,
        description="Slack Web API base URL; leave empty for Slack itself (tests point it "
                    "at a local stand-in).")

    def _client(self) -> WebClient:
        kwargs: dict[str, Any] = {"token": self.bot_token.get_secret_value()}
        if self.base_url:
            # slack-sdk joins method names onto base_url, so it must end with a slash.
            kwargs["base_url"] = self.base_url.rstrip("/") + "/"
        return WebClient(**kwargs)

    def notify(self, text: str, blocks: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """Post ``text`` (and optional Block Kit ``blocks``); return Slack's answer.

        ``text`` is plain text: '&', '<' and '>' are escaped as Slack asks, so that what
        it quotes (a plan's descriptions, names from a schema, an approver's name and
        comment from a form, error messages) cannot make Slack control sequences:
        '<!channel>' pinged the whole channel, '<https://x|approve here>' was a link."""
        text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        response = self._client().chat_postMessage(channel=self.channel, text=text,
                                                   blocks=blocks)
        return dict(response.data) if isinstance(response.data, dict) else {}
