"""Exports of Lockplane plans to other migration tools (``lockplane export --to ...``)."""
