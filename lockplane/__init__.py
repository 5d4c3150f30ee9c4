"""Lockplane: safe, understandable, boring database schema changes."""

__version__ = "0.1.0"
