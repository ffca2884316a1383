"""The metric views: versioned SQL files in `engine/store/metrics/`, installed on every open of the store.

Each file holds `CREATE OR REPLACE` statements (macros, then views) and the files run in name order, so a view
may use those of earlier files. They are not migrations: a view holds no data, and the file in the repository
is its one definition, so a changed definition replaces the old on the next open. What each view means, where
its definition comes from and its caveats: docs/metrics.md.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

METRICS_DIR = Path(__file__).parent / "metrics"


def view_files() -> list[Path]:
    """The metric definitions, in the order they are installed."""
    return sorted(METRICS_DIR.glob("*.sql"))


def view_statements() -> list[str]:
    """Every statement of the metric files, split by DuckDB's own parser (a `;` in a comment is no end)."""
    parser = duckdb.connect()
    try:
        return [statement.query for path in view_files()
                for statement in parser.extract_statements(path.read_text(encoding="utf-8"))]
    finally:
        parser.close()
