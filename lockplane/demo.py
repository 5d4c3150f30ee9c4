"""The embedded demo: plan and apply a change on a local SQLite database, no server needed."""

from __future__ import annotations

import sqlite3

from .execute import ApplyOptions, apply_plan
from .inputs import make_dir
from .integrity import plan_key, seal_plan
from .plan import build_plan
from .report import err, print_plan
from .sources import SourceContext, load_schema

CURRENT = """
CREATE TABLE users (
  id INTEGER PRIMARY KEY,
  email TEXT NOT NULL,
  name TEXT
);
CREATE TABLE posts (
  id INTEGER PRIMARY KEY,
  user_id INTEGER NOT NULL REFERENCES users (id),
  title TEXT NOT NULL,
  body TEXT
);
"""

DESIRED = """
CREATE TABLE users (
  id INTEGER PRIMARY KEY,
  email TEXT NOT NULL UNIQUE,
  name TEXT,
  created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX users_name_idx ON users (name);
CREATE TABLE posts (
  id INTEGER PRIMARY KEY,
  user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  title TEXT NOT NULL,
  body TEXT,
  published INTEGER NOT NULL DEFAULT 0 CHECK (published IN (0, 1))
);
CREATE INDEX posts_user_idx ON posts (user_id);
"""


def run_demo(directory: str) -> None:
    root = make_dir(directory, "demo directory")
    db_path = root / "demo.db"
    db_path.unlink(missing_ok=True)
    with sqlite3.connect(db_path) as conn:
        conn.executescript(CURRENT)
        conn.executemany("INSERT INTO users (email, name) VALUES (?, ?)",
                         [(f"user{i}@example.com", f"User {i}") for i in range(1, 101)])
        conn.executemany("INSERT INTO posts (user_id, title) VALUES (?, ?)",
                         [(1 + i % 100, f"Post {i}") for i in range(500)])
    schema_dir = root / "schema"
    schema_dir.mkdir(exist_ok=True)
    (schema_dir / "schema.sql").write_text(DESIRED.lstrip())
    dsn = f"sqlite:///{db_path}"
    err.print(f"[bold]Demo database:[/] {db_path} (100 users, 500 posts)")
    err.print(f"[bold]Desired schema:[/] {schema_dir / 'schema.sql'}\n")
    ctx = SourceContext(dialect="sqlite")
    plan = build_plan(load_schema(dsn, ctx), load_schema(str(schema_dir), ctx))
    plan_path = root / "plan.json"
    plan_path.write_text(seal_plan(plan, plan_key()).to_json() + "\n")
    print_plan(plan)
    err.print(f"\nPlan written to {plan_path}. Applying (validated on a shadow copy first)...")
    result = apply_plan(plan, dsn, ApplyOptions(safety="moderate"),
                        report=lambda m: err.print(f"[dim]{m}[/]"))
    err.print(f"[green]Applied[/] {result.steps_run} step(s); database hash "
              f"{result.hash_after[:12]} (the plan's target: {plan.target_hash[:12]})")
    again = build_plan(load_schema(dsn, ctx), load_schema(str(schema_dir), ctx))
    err.print(f"Re-planning against the desired schema: {len(again.steps)} step(s).")
    with sqlite3.connect(db_path) as conn:
        users = conn.execute("SELECT count(*) FROM users").fetchone()[0]
        posts = conn.execute("SELECT count(*) FROM posts").fetchone()[0]
    err.print(f"Rows kept: {users} users, {posts} posts. Rollback plan: "
              f"lockplane plan-rollback --plan {plan_path}")
