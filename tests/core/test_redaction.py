"""A URL's secrets never shown: its password and query-string values hidden (`redacted_url`), an error text that
echoes the URL cleaned (`scrubbed`), its userinfo sent as HTTP Basic auth (`split_credentials`); never a raise."""

from __future__ import annotations

import base64
import urllib.parse

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from core.errors import ConfigurationError
from core.redaction import UNPARSEABLE, redacted_url, scrubbed, split_credentials
from core.settings import Settings, load_settings


@pytest.mark.parametrize(("url", "shown"), [
    ("http://127.0.0.1:9100/metrics", "http://127.0.0.1:9100/metrics"),
    ("https://exporter.example.com/metrics", "https://exporter.example.com/metrics"),
    ("http://user@127.0.0.1:9100/metrics", "http://***@127.0.0.1:9100/metrics"),  # a user alone may be a token
    ("https://ghp_T0ken@hooks.example.com/fix", "https://***@hooks.example.com/fix"),
    ("http://user:ScS3cret@127.0.0.1:18200/metrics?token=QTOK", "http://user:***@127.0.0.1:18200/metrics?token=***"),
    ("http://user:@h/", "http://***@h/"),
    ("http://:S3cret@h/", "http://:***@h/"),
    ("http://u:p%40ss%3Aw0rd@h/", "http://u:***@h/"),
    ("http://u:p@ss@h/x", "http://u:***@h/x"),  # an unescaped "@": the last one ends the userinfo, as urllib reads it
    ("http://u:S3cret@[::1]:9100/metrics", "http://u:***@[::1]:9100/metrics"),
    ("http://[2001:db8::1]/m?a=1", "http://[2001:db8::1]/m?a=***"),
    ("http://h:8080/p?a=1&token=QTOK&b=&flag", "http://h:8080/p?a=***&token=***&b=&***"),
    ("http://h/p?a=x%3Dy&a=b==", "http://h/p?a=***&a=***"),
    ("http://h/p#access_token=FRAG&state=s", "http://h/p#access_token=***&state=***"),
    ("http://h/p?", "http://h/p"),
    ("//u:S3cret@h/x", "//u:***@h/x"),
    ("ftp://u:ScS3cret@h/", "ftp://u:***@h/"),
    ("HTTP://H/P", "http://H/P"),
    ("http://[::1", UNPARSEABLE),
    ("http://u:pa/ss@h/", UNPARSEABLE),  # an unescaped "/" in the password: it would show as port and path
    ("user:S3cret@host", UNPARSEABLE),  # no "//": the password would read as a path
    ("http:user:S3cret@host/", UNPARSEABLE),
    ("http://h:notaport/", UNPARSEABLE),
    ("", ""),
    ("not a url", "not a url"),
    ("/metrics?token=QTOK", "/metrics?token=***"),
])
def test_a_url_is_shown_without_its_password_and_query_values(url, shown):
    assert redacted_url(url) == shown


@pytest.mark.parametrize("junk", [None, b"http://u:p@h/", 42])
def test_what_is_not_a_string_is_not_a_raise(junk):
    assert redacted_url(junk) == UNPARSEABLE
    assert split_credentials(junk) == (junk, None)


@pytest.mark.parametrize(("url", "requested", "credentials"), [
    ("http://127.0.0.1:9100/metrics?token=T", "http://127.0.0.1:9100/metrics?token=T", None),
    ("http://user:ScS3cret@127.0.0.1:18200/metrics?token=T", "http://127.0.0.1:18200/metrics?token=T",
     "user:ScS3cret"),
    ("http://us%20er:p%40ss%3Aw%C3%B6rd@h/", "http://h/", "us er:p@ss:wörd"),  # percent-decoded, UTF-8
    ("http://user@[::1]:9100/m", "http://[::1]:9100/m", "user:"),  # no password: an empty one, as curl sends
    ("http://u:p@ss@h/", "http://h/", "u:p@ss"),
    ("http://[::1", "http://[::1", None),
    ("", "", None),
])
def test_userinfo_becomes_basic_auth_and_leaves_the_url(url, requested, credentials):
    url_to_open, authorization = split_credentials(url)
    assert url_to_open == requested
    if credentials is None:
        assert authorization is None
    else:
        assert authorization == "Basic " + base64.b64encode(credentials.encode()).decode()


@pytest.mark.parametrize(("text", "url", "cleaned"), [
    ("unknown url type: 'htp://u:ScS3cret@h/m?token=QTOK&a=1'", "htp://u:ScS3cret@h/m?token=QTOK&a=1",
     "unknown url type: 'htp://u:***@h/m?token=***&a=***'"),
    ("URL can't contain control characters. '/m?token=QT\\nOK' (found at least '\\n')", "http://h/m?token=QT\nOK",
     "URL can't contain control characters. '/m?token=***' (found at least '\\n')"),
    ("unknown url type: 'u:S3cret@h'", "u:S3cret@h", "unknown url type: 'u:***@h'"),
    # A short value only where it stands as in a URL: the numbers of an error are left alone.
    ("IncompleteRead(1 bytes read, 401 more expected)", "http://h/m?debug=1&x=401", None),
    ("<urlopen error [Errno 111] Connection refused>", "http://u:111@h/", None),
])
def test_an_error_that_echoes_the_url_loses_its_secrets(text, url, cleaned):
    assert scrubbed(text, url) == (text if cleaned is None else cleaned)


# -- the property: whatever the URL, its password and query values (4+ characters) never show -----------------

def _quoted(text: str) -> str:
    return urllib.parse.quote(text, safe="")


piece = st.text(st.characters(codec="utf-8", exclude_characters="*"), max_size=12)
secret = st.text(st.characters(codec="utf-8", exclude_characters="*"), min_size=4, max_size=16)


@st.composite
def urls(draw: st.DrawFn) -> tuple[str, list[str]]:
    """A well-formed URL (each part percent-encoded as it must be), and the secrets in it."""
    scheme = draw(st.sampled_from(["http", "https"]))
    host = draw(st.sampled_from(["127.0.0.1", "exporter.example.com", "[::1]", "[2001:db8::7]", "h"]))
    port = draw(st.none() | st.integers(1, 65535))
    user = draw(st.none() | piece)
    password = draw(st.none() | secret) if user is not None else None
    path = "".join("/" + _quoted(segment) for segment in draw(st.lists(piece, max_size=3)))
    query = draw(st.lists(st.tuples(piece, secret | piece), max_size=4))
    fragment = draw(st.none() | piece)
    userinfo = "" if user is None else _quoted(user) + ("" if password is None else ":" + _quoted(password)) + "@"
    url = f"{scheme}://{userinfo}{host}{'' if port is None else f':{port}'}{path}"
    if query:
        url += "?" + "&".join(f"{_quoted(key)}={_quoted(value)}" for key, value in query)
    if fragment is not None:
        url += "#" + _quoted(fragment)
    secrets = ([] if password is None else [password]) + [value for _, value in query]
    return url, [s for s in secrets if len(s) >= 4]


@given(urls())
def test_no_password_or_query_value_ever_shows(case):
    url, secrets = case
    shown, echoed = redacted_url(url), scrubbed(f"unknown url type: {url!r}", url)
    for value in secrets:
        # As written in the URL (percent-encoded) and as typed: each checked when the URL holds it only there.
        for form, times in ((_quoted(value), 1), (value, 1 if value == _quoted(value) else 0)):
            if url.count(form) == times:
                assert form not in shown, (url, shown, form)
                assert form not in echoed.removeprefix("unknown url type: "), (url, echoed, form)


@given(st.text(), st.text())
def test_nothing_makes_them_raise(url, text):
    assert isinstance(redacted_url(url), str)
    assert isinstance(scrubbed(text, url), str)
    requested, authorization = split_credentials(url)
    assert isinstance(requested, str) and (authorization is None or authorization.startswith("Basic "))


# -- the settings' own messages ------------------------------------------------------------------------------

def test_a_refused_scrape_url_is_quoted_once():
    with pytest.raises(ConfigurationError) as caught:
        load_settings(environ={"FIRSTLINE_SCRAPE_URL": "ftp://u:ScS3cret@h/"}, default_file=None)
    assert str(caught.value).count("got ") == 1 and "http:// or https://" in str(caught.value)


def test_a_refused_widget_origin_is_named_without_its_password():
    with pytest.raises(ValidationError) as caught:
        Settings(widget_origins=("https://app.example.com", "https://u:OrS3cret@b.example.com"))
    message = caught.value.errors()[0]["msg"]
    assert "got 'https://u:***@b.example.com'" in message and "OrS3cret" not in message
