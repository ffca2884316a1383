"""Imports follow the data flow: firstline (CLI) -> web -> engine -> (rules, knowledge) -> core."""

import ast
from pathlib import Path

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


def imported_packages(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & set(PACKAGES)


def test_no_import_goes_against_the_data_flow():
    wrong = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for target in imported_packages(path) - ALLOWED[package] - {package}:
                wrong.append(f"{path.relative_to(ROOT)} imports {target}")
    assert not wrong, "reverse imports:\n" + "\n".join(wrong)


def test_only_one_module_touches_durable_rules():
    users = [str(p.relative_to(ROOT)) for package in PACKAGES for p in (ROOT / package).rglob("*.py")
             if "durable" in {a for a in _top_imports(p)}]
    assert users == ["engine/ruleengine.py"]


def _top_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names
