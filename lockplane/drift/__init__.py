"""Drift across environments: what each live database has that its desired schema does
not, what it lacks, what differs, and what the migration histories say.

The engine's API (no Prefect here; flows and ``lockplane drift check`` call it):

- :func:`targets_from_config` — the environments of lockplane.toml as :class:`Target`
  (database URL, desired schema, how to load it, accepted ``ignore`` patterns);
- :func:`check_drift` — check targets concurrently, returning a :class:`DriftReport`:
  per environment an :class:`EnvironmentReport` (status clean | drift | unreachable |
  error, :class:`DriftItem` list, ignored items, migration-history findings, a stable
  ``fingerprint``), and :class:`Comparison` of environments with each other;
  ``DriftReport.exit_code`` is the CLI's (0 clean, 4 drift, 1 not every environment
  could be checked);
- :func:`describe_changes` — the planner's changes (``diff(reference, subject)``) as
  drift items in words; :func:`fingerprint` — sha256 of normalised sorted drift;
- :mod:`lockplane.drift.ignore` — ``[TYPE:]GLOB`` patterns on object keys;
- :mod:`lockplane.drift.history` — migration histories compared across environments;
- :func:`render` — ``text``, ``markdown`` or ``json`` (``REPORT_FORMAT``, documented in
  README "Drift").
"""

from .check import (
    EXIT_CLEAN,
    EXIT_DRIFT,
    EXIT_NOT_CHECKED,
    REPORT_FORMAT,
    Comparison,
    DriftReport,
    EnvironmentReport,
    Target,
    check_drift,
    default_context,
    fingerprint,
    targets_from_config,
)
from .history import EnvironmentHistory, HistoryFinding, compare_histories, read_history
from .ignore import IgnoreRule, parse_rules, split_ignored
from .items import DriftItem, Wording, describe_changes
from .render import render

__all__ = [
    "EXIT_CLEAN", "EXIT_DRIFT", "EXIT_NOT_CHECKED", "REPORT_FORMAT", "Comparison",
    "DriftItem", "DriftReport", "EnvironmentHistory", "EnvironmentReport", "HistoryFinding",
    "IgnoreRule", "Target", "Wording", "check_drift", "compare_histories",
    "default_context", "describe_changes", "fingerprint", "parse_rules", "read_history",
    "render", "split_ignored", "targets_from_config",
]
