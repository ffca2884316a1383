"""Tokens and accounts change while the server runs: the command line reaches it through the administration
socket in the data folder, and what it does takes effect on the very next request."""

import json
import os
import re
import stat
import urllib.error
import urllib.request

import pytest

from core.errors import InputError
from firstline.admin import ServerAdmin
from firstline.cli import main
from tests.conftest import build_parts, make_settings
from tests.test_cli import assert_one_line_error, firstline
from tests.test_cli_users import typed
from web.admin import admin_socket_path
from web.server import BackgroundServer, make_server

USER_PASSWORD = "correct horse battery staple"


class Ran:
    """What a command line run left: its exit status and output (the shape of subprocess.CompletedProcess)."""

    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout.encode(), stderr.encode()


@pytest.fixture
def cli(monkeypatch, capsys):
    """`firstline ARGS` in this process (the commands are the same code; a process per call costs seconds)."""
    def run(*args: str, data_dir) -> Ran:
        for name in [k for k in os.environ if k.startswith("FIRSTLINE_")]:
            monkeypatch.delenv(name)
        monkeypatch.setenv("FIRSTLINE_DATA_DIR", str(data_dir))
        capsys.readouterr()
        status = main(list(args))
        out, err = capsys.readouterr()
        return Ran(status, out, err)
    return run


@pytest.fixture
def serving(tmp_path, knowledge):
    settings = make_settings(tmp_path, port=0, threads=4)
    parts = build_parts(settings, knowledge=knowledge)
    server = BackgroundServer(make_server(settings, parts)).start()
    yield settings, server
    server.stop()
    parts.close()


def call(url, token="", data=None, method="GET", cookie=""):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if cookie:
        headers["Cookie"] = cookie
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=60) as response:
            return response.status, response.read(), response.headers
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read(), error.headers


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def test_a_token_created_while_serving_works_at_once_and_revoking_it_stops_it(serving, cli):
    settings, server = serving
    made = firstline("token", "create", "--user", "helpdesk-bot", data_dir=settings.data_dir)  # a real process
    assert made.returncode == 0, made.stderr.decode()
    token = made.stdout.decode().strip()
    status, body, _ = call(server.url + "/api/v1/messages", token, b'{"text": "hello"}', "POST")
    assert status == 200, body
    token_id = token.split("_")[1]
    listed = json.loads(cli("token", "list", "--json", data_dir=settings.data_dir).stdout)
    assert listed == [{"id": token_id, "user_id": "helpdesk-bot", "role": "user", "revoked": False}]
    assert cli("token", "revoke", token_id, data_dir=settings.data_dir).returncode == 0
    status, body, _ = call(server.url + "/api/v1/messages", token, b'{"text": "hello"}', "POST")
    assert status == 401 and json.loads(body)["error"]["code"] == "unauthorized"


def test_revoking_a_curators_token_while_serving_signs_them_out(serving, cli):
    settings, server = serving
    token = cli("token", "create", "--user", "cora", "--role", "curator",
                      data_dir=settings.data_dir).stdout.decode().strip()
    status, page, headers = call(server.url + "/curator/login")
    cookie = headers["Set-Cookie"].split(";")[0]
    csrf = re.search(rb'name="csrf" value="([^"]+)"', page).group(1).decode()
    form = f"token={token}&csrf={csrf}".encode()
    request = urllib.request.Request(server.url + "/curator/login", data=form, method="POST",
                                     headers={"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"})
    try:
        urllib.request.build_opener(NoRedirect).open(request, timeout=60)
    except urllib.error.HTTPError as error:  # the 302 after signing in
        cookie = error.headers["Set-Cookie"].split(";")[0]
    assert call(server.url + "/curator/", cookie=cookie)[0] == 200
    assert cli("token", "revoke", token.split("_")[1], data_dir=settings.data_dir).returncode == 0
    status, _, headers = call(server.url + "/curator/", cookie=cookie)
    assert status == 302 and headers["Location"].endswith("/curator/login")


def test_accounts_are_recorded_while_serving_and_bad_input_is_one_clear_line(serving, cli):
    settings, _ = serving
    made = cli("account", "set", "ines", "--plan", "team", "--seats", "12", data_dir=settings.data_dir)
    assert made.returncode == 0, made.stderr.decode()
    shown = cli("account", "show", "ines", data_dir=settings.data_dir)
    assert shown.stdout.decode().strip() == "ines: team, 12 seats, member"
    assert_one_line_error(cli("account", "show", "nobody", data_dir=settings.data_dir),
                          "no account recorded for 'nobody'")
    assert_one_line_error(cli("account", "set", " ", "--plan", "x", "--seats", "2", data_dir=settings.data_dir),
                          "must not be empty")
    assert_one_line_error(cli("token", "revoke", "nosuchid", data_dir=settings.data_dir),
                          "no token with id 'nosuchid'")


def test_the_socket_is_for_the_servers_own_account_only(serving):
    settings, _ = serving
    path = admin_socket_path(settings)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_a_socket_left_by_a_killed_server_is_passed_over_for_the_database(tmp_path, cli):
    path = admin_socket_path(make_settings(tmp_path))
    path.parent.mkdir(parents=True)
    path.write_text("")  # nothing listens here
    made = cli("token", "create", "--user", "bot", data_dir=tmp_path)
    assert made.returncode == 0, made.stderr.decode()
    assert made.stdout.decode().startswith("fl_")


def test_a_long_data_folder_still_gets_a_socket_short_enough(tmp_path):
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    path = admin_socket_path(make_settings(deep))
    assert len(str(path)) <= 100
    assert path != admin_socket_path(make_settings(tmp_path / "other"))


def test_staff_users_are_administered_while_serving_and_disabling_one_signs_them_out(tmp_path, knowledge, cli):
    settings = make_settings(tmp_path, port=0, threads=4)
    parts = build_parts(settings, knowledge=knowledge)
    server = BackgroundServer(make_server(settings, parts)).start()
    try:
        # Another process cannot open the database the server holds: this one can only have gone through it.
        made = firstline("user", "create", "dana", "--role", "decider", "--categories", "pricing",
                         data_dir=settings.data_dir, stdin=f"{USER_PASSWORD}\n".encode())
        assert made.returncode == 0, made.stderr.decode()
        identity = parts.users.authenticate("dana", USER_PASSWORD)
        assert identity is not None and parts.users.may_decide("dana", "pricing")
        secret = parts.sessions.open(identity, "127.0.0.1")
        assert parts.sessions.check(secret) is not None
        shown = cli("user", "list", "--json", data_dir=settings.data_dir).stdout
        assert [u["name"] for u in json.loads(shown)] == ["dana"] and b"argon2" not in shown
        assert_one_line_error(typed("user", "create", "dana", "--role", "decider", data_dir=settings.data_dir,
                                    stdin=USER_PASSWORD), "a staff user named 'dana' already exists")
        admin = ServerAdmin(admin_socket_path(settings))
        with pytest.raises(InputError, match="categories must be a list"):
            admin.set_user_categories("dana", "policy")
        assert admin.set_user_categories("dana", ["policy"])["categories"] == ["policy"]
        assert cli("user", "disable", "dana", data_dir=settings.data_dir).returncode == 0
        assert parts.sessions.check(secret) is None
        assert parts.users.authenticate("dana", USER_PASSWORD) is None
    finally:
        server.stop()
        parts.close()
