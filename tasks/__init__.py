"""Prefect tasks: thin wrappers around Lockplane engine calls."""
