"""Prefect flows: Lockplane's runbooks (apply a migration, check drift, ...)."""
