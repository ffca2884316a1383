"""`firstline user ...` on the data folder (no server): the password from the terminal or standard input, never
printed; every mistake one clear line, with nothing stored."""

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from engine.access.users import UserBook
from engine.store import DuckDBStore, StaffUsers
from firstline.cli import main
from tests.test_cli import assert_one_line_error

PASSWORD = "correct horse battery staple"


def typed(*args: str, data_dir, stdin: str = "", tty: bool = False) -> subprocess.CompletedProcess:
    """`firstline ARGS` in this process with `stdin` as its standard input (a terminal's when `tty`)."""
    env = {name: None for name in os.environ if name.startswith("FIRSTLINE_")}
    with CliRunner().isolation(input=stdin, env={**env, "FIRSTLINE_DATA_DIR": str(data_dir)}) as (out, err, _):
        if tty:
            sys.stdin.isatty = lambda: True  # the isolated stream, gone with the isolation
        status = main(list(args))
    return subprocess.CompletedProcess(args, status, out.getvalue(), err.getvalue())


def stored_users(data_dir):
    store = DuckDBStore(data_dir / "firstline.duckdb")
    try:
        return store.execute("SELECT name, role, categories, password_hash, disabled_at FROM staff_users")
    finally:
        store.close()


def signs_in(data_dir, name, password):
    store = DuckDBStore(data_dir / "firstline.duckdb")
    try:
        return UserBook(StaffUsers(store)).authenticate(name, password) is not None
    finally:
        store.close()


def test_a_decider_is_created_with_the_password_read_from_standard_input(tmp_path):
    made = typed("user", "create", "pat", "--role", "decider", "--category", "pricing", "--categories",
                 "policy,pricing", data_dir=tmp_path, stdin=PASSWORD + "\r\n")
    assert made.returncode == 0, made.stderr.decode()
    assert made.stdout.decode() == "created pat  decider  pricing,policy\n"
    assert PASSWORD.encode() not in made.stdout + made.stderr
    (row,) = stored_users(tmp_path)
    assert row[:3] == ("pat", "decider", '["pricing", "policy"]') and row[3].startswith("$argon2id$")
    assert signs_in(tmp_path, "pat", PASSWORD)  # the line ending is not part of the password


def test_on_a_terminal_the_password_is_asked_twice_until_both_agree(tmp_path):
    made = typed("user", "create", "cora", "--role", "curator", data_dir=tmp_path, tty=True,
                 stdin=f"{PASSWORD}\nsomething else entirely\n{PASSWORD}\n{PASSWORD}\n")
    assert made.returncode == 0, made.stderr.decode()
    assert "do not match" in made.stdout.decode() and PASSWORD not in made.stdout.decode()
    assert signs_in(tmp_path, "cora", PASSWORD)


def test_users_are_listed_without_their_password_or_its_hash(tmp_path):
    for args in (("dana", "--role", "decider"), ("pat", "--role", "decider", "--categories", "pricing"),
                 ("cora", "--role", "curator")):
        assert typed("user", "create", *args, data_dir=tmp_path, stdin=PASSWORD + "\n").returncode == 0
    assert typed("user", "disable", "dana", data_dir=tmp_path).stdout.decode() == \
        "disabled dana; their staff sessions have ended\n"
    listed = typed("user", "list", data_dir=tmp_path).stdout.decode().splitlines()
    assert listed[0].startswith("dana  decider  all  disabled ") and listed[1:] == \
        ["pat  decider  pricing", "cora  curator  -"]
    shown = typed("user", "list", "--json", data_dir=tmp_path).stdout
    assert [(u["name"], u["categories"], u["disabled"]) for u in json.loads(shown)] == \
        [("dana", [], True), ("pat", ["pricing"], False), ("cora", [], False)]
    assert b"argon2" not in shown and b"hash" not in shown and PASSWORD.encode() not in shown


def test_a_new_password_and_new_categories(tmp_path):
    typed("user", "create", "pat", "--role", "decider", "--categories", "pricing", data_dir=tmp_path,
          stdin=PASSWORD + "\n")
    changed = typed("user", "password", "pat", data_dir=tmp_path, stdin="a completely different passphrase\n")
    assert changed.returncode == 0, changed.stderr.decode()
    assert signs_in(tmp_path, "pat", "a completely different passphrase") and not signs_in(tmp_path, "pat", PASSWORD)
    assert typed("user", "categories", "pat", "--category", "policy", "--category", "hosting_capacity",
                 data_dir=tmp_path).stdout.decode() == "pat  decider  hosting_capacity,policy\n"
    assert typed("user", "categories", "pat", "--all", data_dir=tmp_path).stdout.decode() == "pat  decider  all\n"


@pytest.mark.parametrize(("args", "stdin", "says"), [
    (("create", "dana smith", "--role", "decider"), PASSWORD, "1 to 64 letters, digits"),
    (("create", "dana", "--role", "decider", "--category", "discounts"), "",  # refused before the password
     "unknown business category discounts; the categories are hosting_capacity, pricing"),
    (("create", "cora", "--role", "curator", "--categories", "pricing"), PASSWORD, "a curator decides nothing"),
    (("create", "dana", "--role", "decider"), "too short\n", "at least 15 characters"),
    (("create", "dana", "--role", "decider"), "", "no password on standard input"),
    (("create", "dana", "--role", "operator"), PASSWORD,
     "role is decider, curator, analyst or engineer, got 'operator'"),
    (("create", "dana"), PASSWORD, "Missing option '--role'"),
    (("disable", "nobody"), "", "no staff user named 'nobody'"),
    (("password", "nobody"), PASSWORD, "no staff user named 'nobody'"),
    (("categories", "dana"), "", "or --all for every one"),
    (("create", "dana", "--role", "decider", "--categories", " , "), PASSWORD, "the list is empty"),
    (("categories", "dana", "--categories", ""), "", "the list is empty"),
])
def test_mistakes_are_one_clear_line_and_nothing_is_stored(tmp_path, args, stdin, says):
    assert_one_line_error(typed("user", *args, data_dir=tmp_path, stdin=stdin), says)
    if (tmp_path / "firstline.duckdb").exists():
        assert stored_users(tmp_path) == []


def test_a_taken_name_is_one_clear_line_and_the_first_user_stays(tmp_path):
    assert typed("user", "create", "dana", "--role", "decider", data_dir=tmp_path, stdin=PASSWORD).returncode == 0
    assert_one_line_error(typed("user", "create", "dana", "--role", "curator", data_dir=tmp_path,
                                stdin="another long password\n"), "a staff user named 'dana' already exists")
    assert [row[:2] for row in stored_users(tmp_path)] == [("dana", "decider")]
    assert signs_in(tmp_path, "dana", PASSWORD)
