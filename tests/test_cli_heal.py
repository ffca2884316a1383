"""`firstline heal` as a user runs it: the JSON contract, the readable timeline, and clear refusals."""

import json

import pytest

from tests.test_cli import assert_one_line_error, firstline

CONTRACT = {"scenario", "prevented", "detected_at_s", "acted_at_s", "recovered_at_s", "user_impact_s", "actions"}


def test_simulate_json_is_one_object_with_the_contract_keys(tmp_path):
    result = firstline("heal", "--simulate", "memory_leak", "--minutes", "60", "--seed", "3", "--json",
                       data_dir=tmp_path)
    assert result.returncode == 0, result.stderr.decode()
    report = json.loads(result.stdout)
    assert set(report) >= CONTRACT
    assert report["scenario"] == "memory_leak" and report["prevented"] is True and report["user_impact_s"] == 0
    assert report["detected_at_s"] <= report["acted_at_s"] < report["recovered_at_s"]
    assert report["actions"] == [{"name": "restart_service", "target": "api", "status": "succeeded"}]
    assert report["lead_time_s"] > 0


def test_healthy_takes_no_action(tmp_path):
    result = firstline("heal", "--simulate", "healthy", "--minutes", "30", "--json", data_dir=tmp_path)
    report = json.loads(result.stdout)
    assert report["actions"] == [] and report["prevented"] is False and report["acted_at_s"] is None


def test_the_timeline_is_readable(tmp_path):
    result = firstline("heal", "--simulate", "slow_queries", "--minutes", "40", data_dir=tmp_path)
    out = result.stdout.decode()
    assert result.returncode == 0
    for word in ("fault", "detected", "acted", "verified", "recovered", "lead time", "time to recovery",
                 "prevented          yes"):
        assert word in out, out


def test_the_threshold_baseline_is_one_flag_away(tmp_path):
    result = firstline("heal", "--simulate", "slow_queries", "--detection", "threshold", "--json",
                       data_dir=tmp_path)
    report = json.loads(result.stdout)
    assert report["detection"] == "threshold" and report["prevented"] is False and report["user_impact_s"] > 0


@pytest.mark.parametrize(("args", "code", "fragment"), [
    (("heal", "--simulate", "gremlins"), 2, "'gremlins' is not one of"),
    (("heal", "--simulate", "healthy", "--minutes", "0"), 2, "--minutes"),
    (("heal", "--json"), 2, "go with --simulate"),
])
def test_bad_heal_command_lines(tmp_path, args, code, fragment):
    result = firstline(*args, data_dir=tmp_path)
    assert result.returncode == code
    assert_one_line_error(result, fragment)


def test_an_unknown_adapter_is_refused_at_start_up(tmp_path):
    result = firstline("heal", "--once", data_dir=tmp_path, extra_env={"FIRSTLINE_REMEDIATION_ADAPTER": "ansible"})
    assert result.returncode == 1
    assert_one_line_error(result, "remediation_adapter", "'ansible'")


def test_one_live_pass_over_the_simulation(tmp_path):
    result = firstline("heal", "--once", data_dir=tmp_path)
    assert result.returncode == 0, result.stderr.decode()
    assert "one pass over simulation telemetry: 0 signals, 0 actions" in result.stdout.decode()
