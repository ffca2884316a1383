"""The Alertmanager payload parser: fingerprints as Alertmanager computes them, truncatedAlerts, notifications past
the per-notification cap, strings the store could not hold; and a property test that no JSON input crashes it."""

import copy
import json
import math
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import InputError
from engine.healing.alerts import MAX_STORED_ALERTS, OTHER, STATUSES, fingerprint, parse_alertmanager
from engine.store import DuckDBStore
from engine.store.alert_intake import AlertIntake
from engine.store.healing import HealingLedger
from tests.conftest import ManualClock, sequential_ids

BODY = {
    "version": "4", "groupKey": "{}:{alertname=\"DiskFull\"}", "truncatedAlerts": 0, "status": "firing",
    "receiver": "firstline", "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {}, "externalURL": "",
    "alerts": [{"status": "firing", "labels": {"alertname": "DiskFull", "service": "database", "disk": "/var"},
                "annotations": {}, "startsAt": "2026-03-01T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "", "fingerprint": "0123456789abcdef"}],
}


def body(**changes) -> dict:
    found = copy.deepcopy(BODY)
    found.update(changes)
    return found


def alerts(count: int, status: str = "firing", services=("web", "api")) -> list[dict]:
    return [{"status": status, "labels": {"alertname": "Slow", "service": services[i % len(services)],
                                          "pod": f"p-{status}-{i}"},
             "annotations": {}, "startsAt": "2026-03-01T10:00:00Z", "fingerprint": ""} for i in range(count)]


# prometheus/common model/signature_test.go: labelSetToFingerprint and LabelsToSignature, the values Alertmanager's
# webhook `fingerprint` is printed from (as 16 hex digits, model/fingerprinting.go).
@pytest.mark.parametrize(("labels", "expected"), [
    ({}, 14695981039346656037),
    ({"name": "garland, briggs", "fear": "love is not enough"}, 5799056148416392346),
    ({"first-label": "first-label-value"}, 5146282821936882169),
    ({"first-label": "first-label-value", "second-label": "second-label-value"}, 3195800080984914717),
    ({"first-label": "first-label-value", "second-label": "second-label-value", "third-label": "third-label-value"},
     13843036195897128121),
])
def test_the_fingerprint_is_prometheus_labelset_fingerprint(labels, expected):
    assert fingerprint(labels) == f"{expected:016x}"


def test_the_fingerprint_ignores_label_order_and_sees_every_byte():
    assert fingerprint({"b": "2", "a": "1"}) == fingerprint({"a": "1", "b": "2"})
    assert fingerprint({"a": "1b"}) != fingerprint({"a1": "b"})  # the separator keeps name and value apart
    assert fingerprint({"é": "ü"}) != fingerprint({"e": "u"}) and len(fingerprint({"é": "ü"})) == 16


@pytest.mark.parametrize("given", ["", None, "absent"])
def test_a_missing_or_empty_fingerprint_is_derived_from_the_labels(given):
    payload = body()
    if given == "absent":
        del payload["alerts"][0]["fingerprint"]
    else:
        payload["alerts"][0]["fingerprint"] = given
    found = parse_alertmanager(payload)
    assert found.derived == 1
    assert found.alerts[0].fingerprint == fingerprint({"alertname": "DiskFull", "service": "database", "disk": "/var"})


def test_a_fingerprint_that_is_sent_is_kept():
    found = parse_alertmanager(body())
    assert found.alerts[0].fingerprint == "0123456789abcdef" and found.derived == 0


@pytest.mark.parametrize("value", [7, ["x"], {"a": "b"}, True])
def test_a_fingerprint_that_is_not_a_string_is_refused(value):
    payload = body()
    payload["alerts"][0]["fingerprint"] = value
    with pytest.raises(InputError, match=r"alerts\[0\]\.fingerprint"):
        parse_alertmanager(payload)


@pytest.mark.parametrize(("sent", "kept"), [(0, 0), (120, 120), (None, 0), ("absent", 0)])
def test_truncated_alerts_is_read(sent, kept):
    payload = body(truncatedAlerts=sent)
    if sent == "absent":
        del payload["truncatedAlerts"]
    assert parse_alertmanager(payload).truncated == kept


@pytest.mark.parametrize("sent", [-1, "120", 1.5, True, 2**40, [3]])
def test_truncated_alerts_must_be_a_count(sent):
    with pytest.raises(InputError, match="truncatedAlerts"):
        parse_alertmanager(body(truncatedAlerts=sent))


def test_past_the_cap_alerts_are_counted_per_service_not_refused():
    # Resolved ones first in the body: the firing ones are still the ones stored one by one.
    payload = body(alerts=alerts(300, "resolved") + alerts(MAX_STORED_ALERTS + 200, services=("web", "api", "db")))
    found = parse_alertmanager(payload)
    assert found.total == MAX_STORED_ALERTS + 500 and len(found.alerts) == MAX_STORED_ALERTS
    assert {a.status for a in found.alerts} == {"firing"}
    assert (found.summarised, found.summarised_firing) == (500, 200)
    assert sum(found.summary.values()) == 200 and set(found.summary) == {"web", "api", "db"}
    assert found.derived == MAX_STORED_ALERTS + 500


def test_a_summary_of_many_services_names_the_most_frequent_and_counts_the_rest():
    many = [{"status": "firing", "labels": {"alertname": "X", "service": f"s{i}"}, "startsAt": "2026-03-01T10:00:00Z"}
            for i in range(MAX_STORED_ALERTS + 80)]
    found = parse_alertmanager(body(alerts=many))
    assert len(found.summary) == 51 and found.summary[OTHER] == 30 and sum(found.summary.values()) == 80


@pytest.mark.parametrize(("change", "where"), [
    (lambda a: a["labels"].update(service="\ud800"), "alerts[0].labels"),
    (lambda a: a["labels"].update({"\udfff": "x"}), "alerts[0].labels"),
    (lambda a: a.update(fingerprint="ab\ud800"), "alerts[0].fingerprint"),
    (lambda a: a.update(startsAt="2026-03-01T10:00:00\ud800"), "alerts[0].startsAt"),
    (lambda a: a.update(annotations={"summary": "\udc80"}), "alerts[0].annotations"),
])
def test_a_string_the_store_cannot_hold_is_refused_by_name(change, where):
    payload = body()
    change(payload["alerts"][0])
    with pytest.raises(InputError) as refused:
        parse_alertmanager(payload)
    assert where in str(refused.value)
    str(refused.value).encode("utf-8")  # the reason itself can be logged and kept


def test_a_lone_surrogate_in_the_group_key_is_refused():
    with pytest.raises(InputError, match="groupKey"):
        parse_alertmanager(body(groupKey="{}\ud800"))


# -- no input crashes it ----------------------------------------------------------------------------------------

ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=12)  # lone surrogates too
SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | ANY_TEXT
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(ANY_TEXT, inner, max_size=4),
                    max_leaves=12)
TIMES = st.sampled_from(["2026-03-01T10:00:00Z", "2026-03-01T10:00:00.123+02:00", "0001-01-01T00:00:00Z",
                         "yesterday", "2026-13-01T00:00:00Z", ""])
LABELS = st.dictionaries(st.sampled_from(["alertname", "service", "metric", "instance"]) | ANY_TEXT, ANY_TEXT,
                         max_size=5)
ALERT = st.fixed_dictionaries(
    {"status": st.sampled_from(["firing", "resolved", "burning"]) | JSON, "labels": LABELS | JSON,
     "startsAt": TIMES | JSON},
    optional={"annotations": LABELS | JSON, "fingerprint": st.sampled_from(["", "abc", None]) | JSON,
              "endsAt": TIMES, "generatorURL": ANY_TEXT})
PAYLOAD = st.fixed_dictionaries(
    {"version": st.sampled_from(["4", "3", 4]), "groupKey": ANY_TEXT | JSON, "status": st.just("firing") | JSON,
     "receiver": ANY_TEXT, "alerts": st.lists(ALERT, max_size=4) | JSON},
    optional={"truncatedAlerts": st.integers(min_value=-5, max_value=2**33) | JSON, "commonLabels": LABELS})

TEXT = st.text(max_size=12) | ANY_TEXT  # mostly valid Unicode
GOOD_ALERT = st.fixed_dictionaries(
    {"status": st.sampled_from(STATUSES), "startsAt": st.sampled_from(["2026-03-01T10:00:00Z", "2026-03-01T10:00:00"]),
     "labels": st.dictionaries(TEXT, TEXT, max_size=4).map(lambda labels: {**labels, "alertname": "X"})},
    optional={"annotations": st.dictionaries(TEXT, TEXT, max_size=3),
              "fingerprint": st.sampled_from(["", None]) | TEXT})
GOOD = st.fixed_dictionaries(
    {"version": st.just("4"), "groupKey": TEXT, "status": st.sampled_from(STATUSES), "receiver": TEXT,
     "alerts": st.lists(GOOD_ALERT, min_size=1, max_size=4)},
    optional={"truncatedAlerts": st.integers(min_value=0, max_value=10**6)})


def check(found) -> None:
    """A parse result is a clear refusal or records every one of which the store can hold."""
    assert found.total == len(found.alerts) + found.summarised and found.truncated >= 0
    for alert in found.alerts:
        assert alert.status in STATUSES and alert.fingerprint and alert.alertname == alert.labels["alertname"]
        datetime.fromisoformat(alert.starts_at.replace("Z", "+00:00"))
        json.dumps(alert.labels).encode("utf-8")
        for text in [alert.fingerprint, alert.starts_at, *alert.labels, *alert.labels.values(), *alert.annotations,
                     *alert.annotations.values()]:
            text.encode("utf-8")


def parsed(payload):
    try:
        return parse_alertmanager(payload)
    except InputError as error:
        assert error.code == "invalid_alert" and str(error).startswith("not an Alertmanager webhook: ")
        assert len(str(error)) < 400
        str(error).encode("utf-8")
        return None


@settings(max_examples=300, deadline=None)
@given(JSON | PAYLOAD | GOOD)
def test_no_json_input_crashes_the_parser(payload):
    found = parsed(payload)
    if found is not None:
        check(found)


def test_whatever_the_parser_accepts_the_store_holds(tmp_path):
    clock = ManualClock()
    store = DuckDBStore(tmp_path / "fuzz.duckdb", clock)
    intake = AlertIntake(HealingLedger(store, sequential_ids()))

    @settings(max_examples=100, deadline=None)
    @given(GOOD | PAYLOAD)
    def stored(payload):
        found = parsed(payload)
        if found is None:
            return
        check(found)
        clock.advance(1)
        new = intake.record_notification(found, "127.0.0.1", clock())
        assert len(new) <= len(found.alerts)

    try:
        stored()
        accepted = store.execute("SELECT count(*) FROM alert_notifications")[0][0]
        assert accepted > 0  # the strategy reaches the store, not only refusals
    finally:
        store.close()


def test_a_huge_value_in_a_refusal_is_cut_short():
    found = parsed(body(version="4" * 100_000))
    assert found is None
    with pytest.raises(InputError) as refused:
        parse_alertmanager(body(truncatedAlerts=[math.pi] * 10_000))
    assert len(str(refused.value)) < 400


# -- dead letters in the store ----------------------------------------------------------------------------------

def test_dead_letters_keep_a_bounded_body_and_only_the_newest(tmp_path, monkeypatch):
    import engine.store.alert_intake as intake_module

    monkeypatch.setattr(intake_module, "DEAD_LETTERS_KEPT", 5)
    clock = ManualClock()
    store = DuckDBStore(tmp_path / "letters.duckdb", clock)
    intake = AlertIntake(HealingLedger(store, sequential_ids()))
    try:
        big = b"\xff" + b"x" * (intake_module.DEAD_LETTER_BODY_BYTES + 10)
        ids = []
        for i in range(8):
            clock.advance(1)
            ids.append(intake.refuse(sender="10.0.0.1", caller=None, path="/p", status=400, code="invalid_alert",
                                     reason=f"bad {i}", content_type="application/json", body=big,
                                     body_bytes=0, now=clock()))
        assert [d.id for d in intake.dead_letters()] == ids[:2:-1]  # the newest five, newest first
        letter = intake.dead_letter(ids[-1])
        assert letter.kept_bytes == intake_module.DEAD_LETTER_BODY_BYTES and letter.body_bytes == len(big)
        assert letter.body.startswith("\ufffdxxx")  # bytes that are not UTF-8 shown, not dropped
        assert intake.dead_letter(ids[0]) is None
    finally:
        store.close()


def test_strangers_refusals_cannot_push_a_real_senders_dead_letters_out(tmp_path, monkeypatch):
    import engine.store.alert_intake as intake_module

    monkeypatch.setattr(intake_module, "DEAD_LETTERS_KEPT", 3)
    monkeypatch.setattr(intake_module, "STRANGER_LETTERS_KEPT", 2)
    clock = ManualClock()
    store = DuckDBStore(tmp_path / "letters.duckdb", clock)
    intake = AlertIntake(HealingLedger(store, sequential_ids()))

    def refuse(status: int, caller: str | None) -> str:
        clock.advance(1)
        return intake.refuse(sender="192.0.2.7", caller=caller, path="/p", status=status, code="x", reason="r",
                             content_type="application/json", body=b"{}", body_bytes=2, now=clock())

    try:
        real = [refuse(400, "alertmanager"), refuse(413, "alertmanager")]
        strangers = [refuse(401 if i % 2 else 403, None) for i in range(50)]
        kept = {d.id for d in intake.dead_letters(limit=100)}
        assert kept == set(real) | set(strangers[-2:])
        more = [refuse(422, "alertmanager") for _ in range(3)]  # the real sender's own class rolls over alone
        assert {d.id for d in intake.dead_letters(limit=100)} == set(more) | set(strangers[-2:])
    finally:
        store.close()
