"""Prefect blocks: configuration documents that flows load by name."""

from __future__ import annotations

from prefect.blocks.core import Block

from .database_target import DatabaseTarget, SafetyLevel
from .slack_notifier import SlackNotifier

__all__ = ["ALL_BLOCKS", "DatabaseTarget", "SafetyLevel", "SlackNotifier", "register_blocks"]

ALL_BLOCKS: tuple[type[Block], ...] = (DatabaseTarget, SlackNotifier)


def register_blocks() -> list[str]:
    """Register every Lockplane block type with the current Prefect API (idempotent).

    Needed once per server so the UI offers them in its block catalogue; saving a block
    from Python registers its own type anyway. Returns the block type slugs.
    """
    for block in ALL_BLOCKS:
        block.register_type_and_schema()
    return [block.get_block_type_slug() for block in ALL_BLOCKS]
