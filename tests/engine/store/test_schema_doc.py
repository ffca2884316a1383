"""docs/schema.md describes the store as it is: every table and column of a fresh store, with its type, and no
table or column that is not there."""

import re

from engine.store import DuckDBStore
from tests.conftest import ROOT

DOC = ROOT / "docs" / "schema.md"
HEADING = re.compile(r"^### `(\w+)`\s*$")
ROW = re.compile(r"^\| `(\w+)` \| ([A-Z][A-Z0-9 (),]*) \|")


def documented() -> dict[str, dict[str, str]]:
    """{table: {column: type}} from the page's `### \\`table\\`` headings and the table rows under each."""
    found: dict[str, dict[str, str]] = {}
    table = None
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if heading := HEADING.match(line):
            table = heading.group(1)
            assert table not in found, f"docs/schema.md describes {table} twice"
            found[table] = {}
        elif line.startswith("## "):
            table = None
        elif table is not None and (row := ROW.match(line)):
            found[table][row.group(1)] = row.group(2).strip()
    return found


def actual(tmp_path) -> dict[str, dict[str, str]]:
    """{table: {column: type}} of a fresh store's base tables (the metric views are not tables)."""
    store = DuckDBStore(tmp_path / "firstline.duckdb")
    try:
        rows = store.execute(
            "SELECT c.table_name, c.column_name, c.data_type FROM information_schema.columns c "
            "JOIN information_schema.tables t USING (table_catalog, table_schema, table_name) "
            "WHERE t.table_type = 'BASE TABLE' AND t.table_schema = 'main' ORDER BY c.table_name, c.ordinal_position")
    finally:
        store.close()
    found: dict[str, dict[str, str]] = {}
    for table, column, data_type in rows:
        found.setdefault(table, {})[column] = data_type
    return found


def test_every_table_and_column_of_the_store_is_documented_with_its_type(tmp_path):
    doc, store = documented(), actual(tmp_path)
    missing = [f"{table}.{column} ({kind})" for table, columns in store.items() for column, kind in columns.items()
               if column not in doc.get(table, {})]
    assert not missing, "not in docs/schema.md: " + ", ".join(missing)
    wrong = [f"{table}.{column}: {doc[table][column]} in the doc, {kind} in the store"
             for table, columns in store.items() for column, kind in columns.items()
             if doc[table][column] != kind]
    assert not wrong, "types differ:\n" + "\n".join(wrong)


def test_the_doc_names_no_table_or_column_that_does_not_exist(tmp_path):
    doc, store = documented(), actual(tmp_path)
    assert sorted(set(doc) - set(store)) == [], "docs/schema.md describes tables the store does not have"
    extra = [f"{table}.{column}" for table, columns in doc.items() for column in columns
             if column not in store.get(table, {})]
    assert not extra, "docs/schema.md describes columns the store does not have: " + ", ".join(extra)


def test_the_doc_was_read_at_all():
    doc = documented()
    assert len(doc) > 20 and all(doc.values()), "the headings or rows of docs/schema.md changed shape"
    assert "(metrics.md)" in DOC.read_text(encoding="utf-8")
