"""The command line as a user runs it: a real process, one clear line per error, never a traceback."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, build_parts, check_ask_contract, make_settings


def firstline(*args: str, data_dir: Path, stdin: str | None = None, extra_env: dict | None = None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIRSTLINE_")}
    env.update({"FIRSTLINE_DATA_DIR": str(data_dir), "HF_HUB_OFFLINE": "1", **(extra_env or {})})
    return subprocess.run([sys.executable, "-m", "firstline", *args], capture_output=True, env=env, input=stdin,
                          timeout=300, check=False)


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> str:
    assert result.returncode != 0
    err = result.stderr.decode()
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def test_help_lists_every_command_with_one_line(tmp_path):
    result = firstline("--help", data_dir=tmp_path)
    out = result.stdout.decode()
    assert result.returncode == 0
    for command in ("ask", "serve", "index", "check", "settings", "rules"):
        assert f"  {command} " in out


@pytest.mark.parametrize(
    ("args", "fragments", "status"),
    [
        (["ask", ""], ["empty"], 1),
        (["ask"], ["give a message"], 2),
        (["ask", "x" * 102_400], ["102,400 characters", "limit is 4,000"], 1),
        (["ask", "--bogus", "hi"], ["No such option", "--bogus"], 2),
        (["ask", "--file", "/definitely/missing.txt"], ["--file", "no such file"], 2),
        (["serve", "--port", "99999"], ["--port"], 2),
        (["frobnicate"], ["No such command"], 2),
        (["eval"], ["give a labelled DATASET"], 2),
        (["eval", "--train", "/definitely/missing.csv", "--test", "/definitely/missing.csv"], ["no such file"], 1),
        (["eval", "--train", "train.csv"], ["give --test"], 2),
    ],
)
def test_bad_input_gets_one_clear_line_and_a_nonzero_exit(tmp_path, args, fragments, status):
    result = firstline(*args, data_dir=tmp_path)
    assert_one_line_error(result, "firstline: error:", *fragments)
    assert result.returncode == status


def test_bytes_that_are_not_utf8(tmp_path):
    result = subprocess.run([sys.executable, "-m", "firstline", "ask", b"caf\xe9 \xff broken".decode(
        "utf-8", "surrogateescape")], capture_output=True, env={**os.environ, "FIRSTLINE_DATA_DIR": str(tmp_path)},
        check=False)
    assert_one_line_error(result, "not valid UTF-8")
    bad_file = tmp_path / "messages.txt"
    bad_file.write_bytes(b"the dashboard is slow\n\xff\xfe nope\n")
    assert_one_line_error(firstline("ask", "--file", str(bad_file), data_dir=tmp_path), "messages.txt:2", "UTF-8")


def test_bad_setting_is_one_line(tmp_path):
    result = firstline("ask", "hello", data_dir=tmp_path, extra_env={"FIRSTLINE_PORTT": "1"})
    assert_one_line_error(result, "unknown setting 'portt'", "did you mean 'port'")


def test_ask_json_answers_each_line_of_a_file_with_one_model_load(session_settings, tmp_path):
    messages = tmp_path / "messages.txt"
    messages.write_text("The dashboard is loading really slowly\n\nCan we get a non-profit discount?\n"
                        "what's the capital of Peru\n", encoding="utf-8")
    result = firstline("ask", "--json", "--dry-run", "--file", str(messages), data_dir=session_settings.data_dir)
    assert result.returncode == 0, result.stderr.decode()
    lines = result.stdout.decode().splitlines()
    answers = [json.loads(line) for line in lines]
    assert [(a["decision"], a["category"]) for a in answers] == [
        ("resolve", "performance"), ("escalate", "pricing"), ("decline", "out_of_scope")]
    assert answers[0]["actions"][0]["status"] == "dry_run"
    checked = check_ask_contract(result.stdout.decode())
    assert checked.returncode == 0, checked.stdout


def test_a_busy_port_is_one_clear_line(session_settings, knowledge):  # knowledge: the index is already built
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = firstline("serve", "--port", str(port), data_dir=session_settings.data_dir)
    assert_one_line_error(result, f"cannot listen on 127.0.0.1:{port}", "--port")


def test_a_database_held_by_another_process_is_one_clear_line(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True); "
         "time.sleep(60)", str(tmp_path / "firstline.duckdb")], stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline() == b"held\n"
        result = firstline("ask", "the dashboard is slow", data_dir=tmp_path)
        assert_one_line_error(result, "firstline.duckdb", "Another Firstline process")
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()


def test_eval_on_an_unknown_format_lists_the_accepted_ones(tmp_path):
    data = tmp_path / "set.xml"
    data.write_text("<rows/>", encoding="utf-8")
    result = firstline("eval", "--train", str(data), "--test", str(data), data_dir=tmp_path)
    assert_one_line_error(result, "unknown format; accepted: CSV", "CLINC150 JSON", "NLU-Evaluation-Corpora")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--scoring", "vibes"), "'vibes' is not one of"),
        (("--refusal-recall", "1.5"), "--refusal-recall"),
        (("--fine-tune-epochs", "-1"), "--fine-tune-epochs"),
    ],
)
def test_eval_options_are_checked_before_any_work(tmp_path, args, fragment):
    result = firstline("eval", "data/eval/pack_holdout.csv", *args, data_dir=tmp_path)
    assert result.returncode == 2
    assert_one_line_error(result, fragment)


def test_a_bad_scoring_setting_names_the_variable(tmp_path):
    result = firstline("eval", "data/eval/pack_holdout.csv", data_dir=tmp_path, extra_env={"FIRSTLINE_SCORING": "x"})
    assert_one_line_error(result, "FIRSTLINE_SCORING", "similarity")


def test_ask_explain_adds_a_trace_and_keeps_the_contract(session_settings, knowledge):
    result = firstline("ask", "--json", "--dry-run", "--explain", "--why-not", "business_request_goes_to_a_person",
                       "The dashboard is loading really slowly", data_dir=session_settings.data_dir)
    assert result.returncode == 0, result.stderr.decode()
    answer = json.loads(result.stdout)
    assert [f["rule"] for f in answer["trace"]["fired"]] == answer["rules_fired"]
    assert answer["trace"]["why_not"][0]["fired"] is False
    checked = check_ask_contract(result.stdout.decode())
    assert checked.returncode == 0, checked.stdout
    traced = firstline("rules", "trace", answer["trace"]["decision_id"], "--why-not", "run_a_proposed_remedy",
                       data_dir=session_settings.data_dir)
    assert traced.returncode == 0, traced.stderr.decode()
    out = traced.stdout.decode()
    assert "1. default_remedy_when_telemetry_explains_nothing (salience 300) on match=f1" in out
    assert "run_a_proposed_remedy fired." in out


def test_rules_list_show_validate_and_graph(tmp_path):
    listed = firstline("rules", "list", "--json", data_dir=tmp_path)
    assert listed.returncode == 0
    names = {r["name"] for r in json.loads(listed.stdout)}
    assert {"business_request_goes_to_a_person", "never_repeat_a_remedy_that_just_failed"} <= names
    shown = firstline("rules", "show", "targeted_remedy_for_a_hypothesis", data_dir=tmp_path).stdout.decode()
    assert "alternatives:\n  0: hypothesis (any) AND remedy (signal_service == hypothesis.service" in shown
    assert "fed by: " in shown and "performance_slow_database_queries (hypothesis)" in shown
    validated = firstline("rules", "validate", data_dir=tmp_path)
    assert validated.returncode == 0 and validated.stdout.decode().startswith(f"ok: {len(names)} rules in 4 files")
    dot = firstline("rules", "graph", "--format", "dot", data_dir=tmp_path).stdout.decode()
    assert dot.startswith("digraph rules {") and '-> "run_a_proposed_remedy"' in dot
    report = json.loads(firstline("rules", "graph", "--format", "json", data_dir=tmp_path).stdout)
    assert report["cycles"] == [] and report["never_fire"] == [] and report["conflicts"]


def test_rules_test_passes_the_shipped_tests_and_fails_a_wrong_one(tmp_path):
    ok = firstline("rules", "test", str(ROOT / "rules" / "tests"), data_dir=tmp_path)
    assert ok.returncode == 0, ok.stdout.decode()
    assert ok.stdout.decode().rstrip().endswith("passed, 0 failed")
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("""tests:
  - name: pricing is declined
    facts: [{match: {playbook: x, category: pricing, kind: business, band: answer}}]
    expect: {fired: [out_of_scope_is_declined]}
""", encoding="utf-8")
    failed = firstline("rules", "test", str(wrong), data_dir=tmp_path)
    out = failed.stdout.decode()
    assert failed.returncode == 1 and failed.stderr == b""
    assert f"FAIL {wrong}:2 pricing is declined" in out and "1 cases: 0 passed, 1 failed" in out
    assert "f1: band == 'out_of_scope' fails, the fact has 'answer'" in out


def test_a_broken_rule_file_names_file_line_and_field(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("rules:\n  - name: broken_rule\n    when: {all: [{match: {colour: red}}]}\n"
                      "    then: [{decline: {}}]\n  - name: other_rule\n    when: {all: [{match: {}}]}\n"
                      "    then: [{teleport: {}}]\n", encoding="utf-8")
    result = firstline("rules", "validate", str(broken), data_dir=tmp_path)
    err = result.stderr.decode()
    assert result.returncode == 1 and "Traceback" not in err
    assert err.startswith("firstline: error: 2 rule problems:")
    assert f"{broken}:3: rule broken_rule: when.all[0].match.colour: match has no field 'colour'" in err
    assert f"{broken}:7: rule other_rule: then[0]: Additional properties are not allowed ('teleport' was unexpected)" \
        in err


@pytest.mark.parametrize(
    ("args", "fragments", "status"),
    [
        (["rules", "show", "no_such_rule"], ["no rule named 'no_such_rule'", "rules list"], 2),
        (["rules", "test"], ["Missing argument 'PATHS...'"], 2),
        (["rules", "test", "/definitely/missing"], ["/definitely/missing", "does not exist"], 2),
        (["rules", "graph", "--format", "png"], ["'png' is not one of 'text', 'dot', 'json'"], 2),
        (["rules", "trace", "nope"], ["no decisions yet"], 1),
        (["ask", "--why-not", "no_such_rule", "hello"], ["no rule named 'no_such_rule'"], 2),
    ],
)
def test_bad_rules_commands_get_one_clear_line(tmp_path, args, fragments, status):
    result = firstline(*args, data_dir=tmp_path)
    assert_one_line_error(result, "firstline: error:", *fragments)
    assert result.returncode == status


def test_account_set_feeds_the_rules_account_fact_and_bad_input_is_one_clear_line(tmp_path, knowledge):
    assert_one_line_error(firstline("account", "show", "pia", data_dir=tmp_path), "no account recorded for 'pia'")
    assert_one_line_error(firstline("account", "set", "pia", "--plan", "pro", "--seats", "0", data_dir=tmp_path),
                          "--seats")
    assert_one_line_error(firstline("account", "set", " ", "--plan", "pro", "--seats", "3", data_dir=tmp_path),
                          "must not be empty")
    made = firstline("account", "set", "pia", "--plan", "enterprise", "--seats", "250", "--role", "admin",
                     data_dir=tmp_path)
    assert made.returncode == 0, made.stderr.decode()
    shown = firstline("account", "show", "pia", data_dir=tmp_path)
    assert shown.stdout.decode().strip() == "pia: enterprise, 250 seats, admin"
    # The server, started on the same data folder afterwards, gives the rules what was recorded.
    parts = build_parts(make_settings(tmp_path), knowledge=knowledge)
    try:
        answer = parts.assistant.answer("Can we get a discount for more seats?", "pia")
    finally:
        parts.close()
    facts = (answer.trace or {})["facts"]
    assert [f["fields"] for f in facts if f["type"] == "account"] == [{"plan": "enterprise", "seats": 250,
                                                                       "role": "admin"}]


@pytest.mark.parametrize("host", ["256.1.1.1", "not a host!"])
def test_a_host_that_is_no_address_is_one_clear_line(session_settings, knowledge, host):
    result = firstline("serve", "--host", host, "--port", "0", data_dir=session_settings.data_dir)
    assert_one_line_error(result, f"cannot listen on {host}:0", "not an address of this machine", "--host")
