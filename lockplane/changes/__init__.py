"""Change kinds: one module each. Importing this package registers all of them."""

from __future__ import annotations

from importlib import import_module
from pathlib import Path

from .base import REGISTRY, Assessment, Change, Lock, Order, Safety

_NOT_KINDS = {"__init__", "base", "render", "table_parts"}

for _path in sorted(Path(__file__).parent.glob("*.py")):
    if _path.stem not in _NOT_KINDS:
        import_module(f"{__name__}.{_path.stem}")

__all__ = ["REGISTRY", "Assessment", "Change", "Lock", "Order", "Safety"]
