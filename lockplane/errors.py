"""Errors that the CLI maps to exit codes (DESIGN.md, "Exit codes").

Every error carries one line meant for a human at 2 AM: what went wrong and where.
Never put a password in one; use ``dsn.redact`` on anything that may hold a DSN.
"""

from __future__ import annotations


class LockplaneError(Exception):
    """Base class. ``exit_code`` is what the CLI exits with."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class BadInput(LockplaneError):
    """Malformed input, unknown type, missing file, unreachable database: exit 2."""

    exit_code = 2


class ConfirmationNeeded(BadInput):
    """A command that asks before it changes anything ran where it cannot ask (standard
    input is not a terminal) and without --auto-approve: a usage error (exit 2), not a
    safety refusal: nothing was judged unsafe."""

    def __init__(self, what: str = "applied") -> None:
        super().__init__(f"not {what}: confirmation needed, but standard input is not a "
                         "terminal; pass --auto-approve, or run the command interactively")


class SafetyRefusal(LockplaneError):
    """Refused for safety: dangerous step, hash mismatch, phase out of order: exit 3."""

    exit_code = 3


class ExecutionFailed(LockplaneError):
    """The database rejected a step; the transaction was rolled back: exit 1."""

    exit_code = 1
    # A failed non-transactional step whose clean-up ran to the end (nothing of it left)
    cleaned_up = False


class Diverged(ExecutionFailed):
    """Every step ran, but the database ended at a hash other than the plan's target
    (the steps stay applied; the history row is marked ``diverged``): exit 1."""


class DriftFound(LockplaneError):
    """The live database differs from the desired schema: exit 4."""

    exit_code = 4
