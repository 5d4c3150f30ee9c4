"""Notification tasks: chat news about migrations, never a reason to fail one."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from blocks.slack_notifier import SlackNotifier
from lockplane.dsn import redact


@task(name="notify", cache_policy=NO_CACHE)
def notify_task(notifier: str | None, text: str) -> bool:
    """Post ``text`` through the SlackNotifier block named ``notifier``, if any.

    A chat outage must not fail (or roll back) a migration, so errors are logged, not
    raised. Returns whether the message was posted.
    """
    if not notifier:
        return False
    try:
        SlackNotifier.load(notifier).notify(redact(text))
    except Exception as exc:  # noqa: BLE001 - see docstring
        get_run_logger().warning("could not notify %s: %s", notifier,
                                 redact(str(exc).splitlines()[0] if str(exc) else repr(exc)))
        return False
    return True
