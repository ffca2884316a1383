"""Imports follow the data flow: firstline (CLI) -> web -> engine -> (rules, knowledge) -> core; inside the
engine, each room imports only the rooms below it; SQL lives in engine/store/ alone."""

import ast
import re
from pathlib import Path

import engine

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("core", "knowledge", "rules", "engine", "web", "firstline")
ALLOWED = {
    "core": set(),
    "knowledge": {"core"},
    "rules": {"core"},
    "engine": {"core", "knowledge", "rules"},
    "web": {"core", "engine", "knowledge", "rules"},
    "firstline": {"core", "engine", "knowledge", "rules", "web"},
}
# engine's rooms, and the rooms each may import. The store imports no other room (a PostgreSQL store must be
# swappable behind it); the chat never imports healing (it acts through the actuator, as the monitor does).
ROOMS = {
    "store": set(),
    "infra": set(),
    "access": {"store"},
    "actions": {"store", "infra"},
    "decision": {"store", "actions", "infra"},
    "learning": {"store", "decision"},
    "healing": {"store", "actions", "decision", "infra"},
    "chat": {"store", "actions", "decision", "infra", "learning"},
    "desk": {"store", "infra", "chat"},
    "analytics": {"store"},
    # Reaching users when a person answered: the e-mail, the mail server, presence and the outbox's sender.
    "notify": {"store"},
    # A month of traffic through the real product: users chat, the monitor heals, deciders decide.
    "traffic": {"store", "infra", "access", "actions", "decision", "learning", "healing", "chat", "desk",
                "analytics"},
}
COMPOSITION_ROOT = "engine/wiring.py"  # builds every room from the settings, so it may import them all


def imported_modules(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def imported_packages(path: Path) -> set[str]:
    return {name.split(".")[0] for name in imported_modules(path)} & set(PACKAGES)


def test_no_import_goes_against_the_data_flow():
    wrong = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for target in imported_packages(path) - ALLOWED[package] - {package}:
                wrong.append(f"{path.relative_to(ROOT)} imports {target}")
    assert not wrong, "reverse imports:\n" + "\n".join(wrong)


def test_every_engine_module_lives_in_a_room():
    loose = [p.name for p in (ROOT / "engine").glob("*.py") if p.name not in ("__init__.py", "wiring.py")]
    assert not loose, f"modules outside any room: {loose}"
    assert {p.name for p in (ROOT / "engine").iterdir() if (p / "__init__.py").exists()} == set(ROOMS)


def test_each_room_imports_only_the_rooms_below_it():
    wrong = []
    for room, allowed in ROOMS.items():
        for path in (ROOT / "engine" / room).rglob("*.py"):
            rooms = {name.split(".")[1] for name in imported_modules(path)
                     if name.startswith("engine.") and name.count(".") >= 1}
            for target in rooms - allowed - {room}:
                wrong.append(f"{path.relative_to(ROOT)} imports engine.{target}")
    assert not wrong, "imports against the rooms' order:\n" + "\n".join(wrong)


def test_the_room_check_sees_a_wrong_import(tmp_path):
    path = tmp_path / "x.py"
    path.write_text("from engine.healing.monitor import Monitor\nimport engine.chat.voice\n", encoding="utf-8")
    assert {name.split(".")[1] for name in imported_modules(path)} == {"healing", "chat"}


SQL = re.compile(r"\b(SELECT\s+\S.*\bFROM|INSERT\s+(OR\s+\w+\s+)?INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|"
                 r"CREATE\s+(TABLE|VIEW|INDEX)|ALTER\s+TABLE|DROP\s+TABLE)\b")  # our SQL's keywords are upper case
# Adapters that act on the operator's own systems speak those systems' languages; they are not the store.
OPERATOR_SYSTEMS = ("engine/actions/adapters/postgres.py",)


def _sql_outside_the_store() -> list[str]:
    found = []
    for package in (*PACKAGES, "bench"):
        for path in (ROOT / package).rglob("*.py"):
            if path.is_relative_to(ROOT / "engine" / "store") or str(path.relative_to(ROOT)) in OPERATOR_SYSTEMS:
                continue
            text = path.read_text(encoding="utf-8")
            if "import duckdb" in text or ".execute(\"" in text or ".execute('" in text:
                found.append(f"{path.relative_to(ROOT)} talks to the database")
            for number, line in enumerate(text.splitlines(), 1):
                if SQL.search(line):
                    found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    return found


def test_no_sql_lives_outside_the_store():
    found = _sql_outside_the_store()
    assert not found, "SQL belongs in engine/store/:\n" + "\n".join(found)


def test_the_sql_check_sees_sql():
    assert SQL.search('rows = db.execute("SELECT id FROM decisions WHERE x = ?")')
    assert SQL.search("INSERT OR REPLACE INTO accounts VALUES (?)")
    assert SQL.search("UPDATE handoffs SET status = ?")
    assert not SQL.search("select the option you want from the list")  # prose without SQL's shape
    assert not SQL.search("Please update your settings")


def test_only_one_module_touches_durable_rules():
    users = [str(p.relative_to(ROOT)) for package in PACKAGES for p in (ROOT / package).rglob("*.py")
             if "durable" in {a.split(".")[0] for a in imported_modules(p)}]
    assert users == ["engine/decision/ruleengine.py"]


def test_the_engine_public_surface_is_pinned():
    # What web/, firstline/ and a tenant's code may rely on; a change here is a change to a published interface.
    assert sorted(engine.__all__) == ["Answer", "Assistant", "Dialogue", "EscalationOutcome", "Exchange", "Parts",
                                      "Stage", "build", "load_pack", "load_rulebase", "open_healing", "open_index"]
    for name in engine.__all__:
        assert getattr(engine, name) is not None


def test_the_lazy_surface_names_match_their_homes():
    assert sorted(engine.__all__) == sorted(engine._HOMES)
