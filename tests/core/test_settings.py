import re
from pathlib import Path
from urllib.parse import unquote

import pytest

from core.errors import ConfigurationError
from core.settings import Settings, describe, load_settings


def load(environ=None, **kwargs):
    return load_settings(environ=environ or {}, default_file=None, **kwargs)


def test_defaults_are_the_embedded_setup():
    settings = load()
    assert settings.data_dir == Path("var")
    assert settings.database_path == Path("var/firstline.duckdb")
    assert settings.index_dir == Path("var/index")
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.playbooks_dir.is_dir() and settings.rules_dir.is_dir()
    assert settings.simulation_faults == ()


def test_environment_overrides_file_and_file_overrides_defaults(tmp_path):
    config = tmp_path / "firstline.toml"
    config.write_text('[firstline]\nport = 9000\nthreads = 3\n', encoding="utf-8")
    settings = load({"FIRSTLINE_PORT": "9100"}, config_file=config)
    assert settings.port == 9100
    assert settings.threads == 3


def test_config_file_named_in_the_environment(tmp_path):
    config = tmp_path / "other.toml"
    config.write_text('dry_run = true\n', encoding="utf-8")
    assert load({"FIRSTLINE_CONFIG": str(config)}).dry_run is True


def test_list_settings_from_the_environment():
    assert load({"FIRSTLINE_SIMULATION_FAULTS": "slow_queries, memory_leak"}).simulation_faults == (
        "slow_queries", "memory_leak")
    assert load({"FIRSTLINE_SIMULATION_FAULTS": '["bad_deploy@api"]'}).simulation_faults == ("bad_deploy@api",)


def test_unknown_key_is_refused_with_a_suggestion():
    with pytest.raises(ConfigurationError, match=r"unknown setting 'prot'.*did you mean 'port'"):
        load({"FIRSTLINE_PROT": "1"})


def test_unknown_key_in_the_file_is_refused(tmp_path):
    config = tmp_path / "firstline.toml"
    config.write_text('dryrun = true\n', encoding="utf-8")
    with pytest.raises(ConfigurationError, match=r"dryrun.*config file.*dry_run"):
        load(config_file=config)


def test_wrong_type_names_key_source_and_value():
    with pytest.raises(ConfigurationError) as caught:
        load({"FIRSTLINE_PORT": "eighty"})
    message = str(caught.value)
    assert "'port'" in message and "FIRSTLINE_PORT" in message and "'eighty'" in message


def test_out_of_range_value_is_refused():
    with pytest.raises(ConfigurationError, match="answer_precision"):
        load(answer_precision=1.5)


@pytest.mark.parametrize(("key", "value", "said"), [
    ("FIRSTLINE_MONITOR_INTERVAL_S", "inf", "finite"),  # was an OverflowError in the monitor's thread
    ("FIRSTLINE_SCRAPE_TIMEOUT_S", "1e12", "at most a year"),  # was an OverflowError on every tick
    ("FIRSTLINE_VERIFY_TIMEOUT_S", "-inf", "finite"),
    ("FIRSTLINE_RECURRENCE_WINDOW_S", "nan", "finite"),
    ("FIRSTLINE_ANSWER_PRECISION", "nan", "finite"),
    ("FIRSTLINE_NOTIFY_LINK_TTL_S", "31622401", "at most a year"),
    ("FIRSTLINE_SCRAPE_URL", "file:///etc/passwd", "http:// or https://"),  # its lines were shown in 503 bodies
    ("FIRSTLINE_SCRAPE_URL", "notaurl", "http:// or https://"),
    ("FIRSTLINE_LOG_LEVEL", "verbose", "'debug', 'info', 'warning' or 'error'"),
    ("FIRSTLINE_WEBHOOK_URL", "ftp://deploy.example.com/hook", "http:// or https://"),
    ("FIRSTLINE_WEBHOOK_URL", "file:///etc/passwd", "http:// or https://"),
])
def test_a_value_nothing_could_use_is_refused_naming_the_key(key, value, said):
    with pytest.raises(ConfigurationError) as caught:
        load({key: value})
    assert key in str(caught.value) and said in str(caught.value)


def test_missing_named_config_file_is_an_error(tmp_path):
    with pytest.raises(ConfigurationError, match="does not exist"):
        load(config_file=tmp_path / "nope.toml")


def test_invalid_toml_is_an_error(tmp_path):
    config = tmp_path / "firstline.toml"
    config.write_text("port = = 1", encoding="utf-8")
    with pytest.raises(ConfigurationError, match="not valid TOML"):
        load(config_file=config)


def test_settings_are_frozen():
    settings = load()
    with pytest.raises(ValueError, match="frozen"):
        settings.port = 1


ROOT = Path(__file__).resolve().parents[2]


def test_every_setting_is_described_and_documented():
    page = (ROOT / "docs" / "settings.md").read_text(encoding="utf-8")
    rows = describe()
    assert {row["key"] for row in rows} == set(Settings.model_fields)
    for row in rows:
        assert row["help"], f"{row['key']} has no help text"
        # In backticks, so FIRSTLINE_RATE_LIMIT is not satisfied by FIRSTLINE_RATE_LIMIT_MESSAGES.
        assert f"`{row['env']}`" in page, f"{row['env']} is not documented in docs/settings.md"


LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def relative_links(text: str) -> list[str]:
    """Targets of the Markdown links outside code (fenced blocks and `spans`) that are not URLs or anchors."""
    text = re.sub(r"^(```|~~~).*?^\1", "", text, flags=re.M | re.S)
    text = re.sub(r"`[^`\n]*`", "", text)
    targets = [m.group(1) for m in LINK.finditer(text)]
    return [t for t in targets if not re.match(r"[a-z][a-z0-9+.-]*:", t, re.I) and not t.startswith("#")]


def test_relative_links_are_found():
    text = "[a](docs/a.md) [b](https://x.org) [c](#top) `[d](no.md)` [e](b.md#part)\n```\n[f](no.md)\n```\n"
    assert relative_links(text) == ["docs/a.md", "b.md#part"]


def test_every_relative_link_in_the_docs_points_to_a_file():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    broken = []
    for page in pages:
        for target in relative_links(page.read_text(encoding="utf-8")):
            path = unquote(target.split("#", 1)[0])
            if path and not (page.parent / path).exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert len(pages) > 1
    assert not broken, "broken links:\n" + "\n".join(broken)



def test_the_settings_command_never_prints_a_secret(tmp_path, monkeypatch, capsys):
    import json

    from firstline.cli import main

    monkeypatch.setenv("FIRSTLINE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("FIRSTLINE_IDENTITY_SECRET", "s3cr3t-shared-with-the-host-app")
    monkeypatch.setenv("FIRSTLINE_SECRET_KEY", "cookie-signing-key-0123456789")
    assert main(["settings", "--json"]) == 0
    out = capsys.readouterr().out
    assert "s3cr3t" not in out and "cookie-signing-key" not in out
    values = {row["key"]: row["value"] for row in json.loads(out)}
    assert values["identity_secret"] == "(set)" and values["secret_key"] == "(set)"


@pytest.mark.parametrize(("key", "value", "shown"), [
    ("FIRSTLINE_SCRAPE_URL", "http://prom:Sc3cretPw@127.0.0.1:9100/metrics?token=QT0KEN",
     "http://prom:***@127.0.0.1:9100/metrics?token=***"),
    ("FIRSTLINE_WEBHOOK_URL", "https://hooks.example.com/fix?key=Wh00kKey", "https://hooks.example.com/fix?key=***"),
    ("FIRSTLINE_REDIS_URL", "redis://:R3disPass@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
    ("FIRSTLINE_POSTGRES_DSN", "postgresql://fix:Pg5ecret@127.0.0.1/test", "postgresql://fix:***@127.0.0.1/test"),
    ("FIRSTLINE_POSTGRES_DSN", "host=127.0.0.1 dbname=test password='Pg 5ecret' user=fix",
     "host=127.0.0.1 dbname=test password=*** user=fix"),
])
def test_the_settings_command_shows_urls_and_connection_strings_without_their_secrets(tmp_path, monkeypatch, capsys,
                                                                                      key, value, shown):
    import json

    from firstline.cli import main

    monkeypatch.setenv("FIRSTLINE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv(key, value)
    assert main(["settings", "--json"]) == 0
    out = capsys.readouterr().out
    values = {row["env"]: row["value"] for row in json.loads(out)}
    assert values[key] == shown
    assert not any(secret in out for secret in ("Sc3cretPw", "QT0KEN", "Wh00kKey", "R3disPass", "Pg5ecret", "5ecret"))


def test_a_refused_url_is_echoed_without_its_password():
    with pytest.raises(ConfigurationError) as caught:
        load({"FIRSTLINE_SCRAPE_URL": "ftp://prom:Sc3cretPw@127.0.0.1/metrics"})
    assert "Sc3cretPw" not in str(caught.value) and "ftp://prom:***@127.0.0.1/metrics" in str(caught.value)
    assert str(caught.value).count("got ") == 1


@pytest.mark.parametrize(("written", "level"), [("INFO", "info"), (" Warning ", "warning"), ("debug", "debug"),
                                               ("WARN", "warning"), ("", "info")])
def test_a_log_level_is_taken_in_any_case(written, level):
    assert load({"FIRSTLINE_LOG_LEVEL": written}).log_level == level


@pytest.mark.parametrize("key", ["FIRSTLINE_SCRAPE_URL", "FIRSTLINE_WEBHOOK_URL"])
def test_an_http_url_is_taken_in_any_case_of_its_scheme(key):
    assert load({key: "HTTP://127.0.0.1:9100/metrics"}) is not None
