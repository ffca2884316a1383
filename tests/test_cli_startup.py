"""The command line starts light: `firstline --help` imports no command, and `firstline check` refuses a bad data
file without importing the model, faiss, the web server or a database driver. Checked by what is in `sys.modules`
in a fresh interpreter, not by timing (timings on a busy machine prove nothing)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest

from core.settings import PROJECT_ROOT
from firstline.cli import COMMANDS, cli

# What a refusal must never wait for: each costs from a tenth of a second to several seconds to import.
HEAVY = ("torch", "sentence_transformers", "transformers", "faiss", "sklearn", "scipy", "flask", "werkzeug",
         "waitress", "redis", "psycopg", "duckdb", "durable", "matplotlib", "prometheus_client", "argon2")
# `firstline --help` needs none of the data-file machinery either.
DATA_FILES = ("numpy", "networkx", "pydantic", "jsonschema", "yaml")

REPORT = """
import json, sys
{body}
print(json.dumps({{"modules": sorted(sys.modules), **extra}}))
"""


def fresh(body: str, tmp_path: Path, **env: str) -> dict:
    """Run `body` in a new interpreter: the modules it imported (and, as `loaded`, their top-level packages) and
    what it put in `extra`."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FIRSTLINE_")}
    clean.update({"FIRSTLINE_DATA_DIR": str(tmp_path / "data"), "HF_HUB_OFFLINE": "1", **env})
    result = subprocess.run([sys.executable, "-c", REPORT.format(body=body)], capture_output=True, env=clean,
                            cwd=PROJECT_ROOT, timeout=120, check=False)
    assert result.returncode == 0, result.stderr.decode()
    found = json.loads(result.stdout.decode().splitlines()[-1])
    return {**found, "loaded": {m.split(".")[0] for m in found["modules"]}}


def test_importing_the_cli_loads_no_command(tmp_path):
    found = fresh("import firstline.cli\nextra = {}", tmp_path)
    assert [m for m in (*HEAVY, *DATA_FILES) if m in found["loaded"]] == []
    assert [m for m in found["modules"] if m.startswith("firstline.")] == ["firstline.cli", "firstline.context"]


def test_help_lists_every_command_and_imports_none(tmp_path):
    found = fresh("from click.testing import CliRunner\nfrom firstline.cli import cli\n"
                  "result = CliRunner().invoke(cli, ['--help'])\n"
                  "extra = {'status': result.exit_code, 'out': result.output}", tmp_path)
    assert found["status"] == 0
    assert [m for m in (*HEAVY, *DATA_FILES) if m in found["loaded"]] == []
    for name in COMMANDS:
        assert f"\n  {name} " in found["out"], name


@pytest.mark.parametrize(("folder", "name", "text", "expected"), [
    ("rules", "twice.yaml",
     "rules:\n  - name: sneaky\n    salience: 10\n    when: {all: [{match: {}}]}\n    then: [{decline: {}}]\n"
     "    salience: 900\n", "twice.yaml:6: rules[0].salience: duplicate key"),
    ("playbooks", "performance/api_responses_slow.yaml", None, "replicas: '.inf' is not a finite number"),
])
def test_check_refuses_a_bad_file_without_importing_anything_heavy(tmp_path, folder, name, text, expected):
    rules, playbooks = tmp_path / "rules", tmp_path / "playbooks"
    shutil.copytree(PROJECT_ROOT / "rules" / "builtin", rules)
    shutil.copytree(PROJECT_ROOT / "data" / "playbooks", playbooks)
    path = (rules if folder == "rules" else playbooks) / name
    if text is None:
        old = path.read_text(encoding="utf-8")
        text = old.replace("replicas: 4", "replicas: .inf")
        assert text != old
    path.write_text(text, encoding="utf-8")
    found = fresh("from click.testing import CliRunner\nfrom firstline.cli import cli\n"
                  "result = CliRunner().invoke(cli, ['check'])\n"
                  "extra = {'status': result.exit_code, 'error': str(result.exception)}", tmp_path,
                  FIRSTLINE_RULES_DIR=str(rules), FIRSTLINE_PLAYBOOKS_DIR=str(playbooks))
    assert found["status"] == 1 and expected in found["error"], found["error"]
    # numpy too: the steps that bring it (reply examples, background) come after the pack has passed.
    assert [m for m in (*HEAVY, "numpy") if m in found["loaded"]] == []


def test_check_on_a_good_pack_still_imports_nothing_heavy(tmp_path):
    found = fresh("from click.testing import CliRunner\nfrom firstline.cli import cli\n"
                  "result = CliRunner().invoke(cli, ['check'])\n"
                  "extra = {'status': result.exit_code, 'out': result.output}", tmp_path)
    assert found["status"] == 0 and found["out"].startswith("ok: "), found["out"]
    assert [m for m in HEAVY if m in found["loaded"]] == []


def test_each_listed_command_is_the_one_its_entry_names():
    ctx = click.Context(cli)
    for name, (_, line) in COMMANDS.items():
        command = cli.get_command(ctx, name)
        assert command is not None and command.name == name, name
        assert command.get_short_help_str(10**6) == line, f"{name}: the line in COMMANDS differs from its help"
    assert cli.list_commands(ctx) == sorted(COMMANDS) == sorted(cli.commands)


def test_an_internal_error_is_one_line_and_its_traceback_is_in_the_file_it_names(tmp_path):
    """Even after `serve` set up its log lines on the terminal (basicConfig was then a no-op: the file named was
    never written and the traceback reached the terminal)."""
    body = ("import sys\nfrom core.logs import configure_logging\nfrom firstline import cli\n"
            "configure_logging('info')\n"
            "def boom(*args, **kwargs):\n    raise RuntimeError('boom')\n"
            "cli.cli.main = boom\nsys.exit(cli.main(['settings']))\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIRSTLINE_")}
    env["FIRSTLINE_DATA_DIR"] = str(tmp_path)
    done = subprocess.run([sys.executable, "-c", body], capture_output=True, text=True, env=env, cwd=PROJECT_ROOT,
                          timeout=120)
    log = tmp_path / "logs" / "firstline.log"
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert f"firstline: error: internal error: RuntimeError: boom (details in {log})" in done.stderr
    assert "RuntimeError: boom" in log.read_text(encoding="utf-8") and "Traceback" in log.read_text(encoding="utf-8")


def test_an_internal_error_when_its_log_folder_cannot_be_made_still_says_where_the_details_are(tmp_path):
    (tmp_path / "logs").write_text("a file where the folder should be", encoding="utf-8")
    body = ("import sys\nfrom firstline import cli\n"
            "def boom(*args, **kwargs):\n    raise RuntimeError('boom')\n"
            "cli.cli.main = boom\nsys.exit(cli.main(['settings']))\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIRSTLINE_")}
    env.update({"FIRSTLINE_DATA_DIR": str(tmp_path), "TMPDIR": str(tmp_path)})
    done = subprocess.run([sys.executable, "-c", body], capture_output=True, text=True, env=env, cwd=PROJECT_ROOT,
                          timeout=120)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    (written,) = tmp_path.glob("firstline-crash-*.log")
    assert f"(details in {written})" in done.stderr and "RuntimeError: boom" in written.read_text(encoding="utf-8")
