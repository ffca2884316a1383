"""The out-of-scope background: loaded with clear errors, pruned beside the pack, disjoint from what we report on,
and enough for a pack without out-of-scope examples to refuse; the group is decided before the playbook."""

import csv
import json
import re

import numpy as np
import pytest

from core.errors import KnowledgeError
from core.settings import PROJECT_ROOT
from knowledge.background import BUNDLED, GREETING, is_greeting, load_background, prune
from knowledge.base import Band, KnowledgeBase, states_nothing
from knowledge.embedder import Embedder
from knowledge.playbooks import Playbook
from tests.conftest import shared_file


@pytest.fixture(scope="module")
def background():
    return load_background(BUNDLED)


@pytest.fixture
def embedder(tmp_path, knowledge):
    found = Embedder(cache_dir=tmp_path / "cache")
    found._model = knowledge.embedder._load()  # share the loaded model; the cache is this test's own
    return found


def test_the_bundled_background_has_greetings_and_many_topics(background):
    assert GREETING in background.topics and len(background.topics) >= 20
    assert background.size >= 1500
    assert all(len(lines) == len(set(lines)) for lines in background.topics.values())


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (None, "does not exist"),
        ({}, "no background topic files"),
        ({"greeting.txt": "hi\n", "weather.txt": "\n  \n"}, "weather.txt: empty"),
        ({"weather.txt": "is it raining\n"}, "greeting.txt is missing"),
        ({"greeting.txt": b"hi \xff\xfe\n"}, "greeting.txt: not UTF-8"),
    ],
)
def test_a_background_that_cannot_be_loaded_says_why(tmp_path, files, message):
    folder = tmp_path / "bg"
    if files is not None:
        folder.mkdir()
        for name, content in files.items():
            path = folder / name
            path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content, encoding="utf-8")
    with pytest.raises(KnowledgeError, match=message):
        load_background(folder)


@pytest.mark.parametrize("command", [("check",), ("ask", "--dry-run", "hello")])
def test_start_up_stops_on_a_missing_background(tmp_path, command):
    from tests.test_cli import assert_one_line_error, firstline

    result = firstline(*command, data_dir=tmp_path / "data",
                       extra_env={"FIRSTLINE_BACKGROUND_DIR": str(tmp_path / "nowhere")})
    assert_one_line_error(result, "nowhere", "background folder does not exist")


def test_prune_drops_background_lines_as_close_to_the_pack_as_its_examples_are_to_each_other():
    rng = np.random.default_rng(3)
    inside = np.eye(16)[0] + 0.2 * rng.normal(size=(20, 16))  # the pack: one tight cluster
    inside /= np.linalg.norm(inside, axis=1, keepdims=True)
    far = np.eye(16)[[5, 9, 12]]  # other directions: nothing like the pack
    near = inside[:2] + 0.01 * rng.normal(size=(2, 16))
    near /= np.linalg.norm(near, axis=1, keepdims=True)
    nearest = np.sort(inside @ inside.T - 2 * np.eye(20), axis=1)[:, -1]
    keep = prune(np.concatenate([far, near]), inside, nearest)
    assert keep.tolist() == [True, True, True, False, False]


def _normal(text: str) -> str:
    return re.sub(r"\W+", " ", text.casefold()).strip()


def _reported_sets() -> list[str]:
    texts = []
    clinc = json.loads(shared_file("datasets", "clinc150", "data_full.json").read_text(encoding="utf-8"))
    texts += [t for split in clinc.values() for t, _ in split]
    for name in ("AskUbuntuCorpus.json", "WebApplicationsCorpus.json", "ChatbotCorpus.json"):
        corpus = json.loads(shared_file("datasets", "braun2017", name).read_text(encoding="utf-8"))
        texts += [s["text"] for s in corpus["sentences"]]
    for path in (shared_file("datasets", "jtp-support", "dev.tsv"),
                 *sorted((PROJECT_ROOT / "data" / "eval" / "independent").glob("*.tsv"))):
        with path.open(encoding="utf-8", newline="") as handle:
            # The reply sets (replies_*.tsv) are read by the reply reader, never matched against the background.
            texts += [row["text"] for row in csv.DictReader(handle, delimiter="\t") if "text" in row]
    return texts


def test_the_background_is_disjoint_from_every_set_we_report_on(background):
    """Not one line, not even a bare "hi": what we report on must be new to the background."""
    reported = {_normal(t) for t in _reported_sets()}
    shared = [line for lines in background.topics.values() for line in lines
              if _normal(line) and _normal(line) in reported]  # lines of only emoji or punctuation have no words
    assert not shared, shared


def bare_pack() -> dict[str, Playbook]:
    """A pack with no out-of-scope playbook at all, like HINT3's training sets."""
    return {
        "login": Playbook("login", "Login", "authentication", "d",
                          ("I can't log in", "login fails", "password wrong", "sign in does not work")),
        "slow": Playbook("slow", "Slow", "performance", "d", ("app is slow", "pages load slowly", "it lags")),
        "student": Playbook("student", "Student discount", "pricing", "d",
                            ("is there a student discount", "cheaper plan for students", "edu pricing")),
        "charity": Playbook("charity", "Charity discount", "pricing", "d",
                            ("discount for charities", "non-profit pricing", "reduced rate for our NGO")),
    }


def test_a_pack_without_out_of_scope_examples_still_refuses(embedder, background):
    base = KnowledgeBase.build(bare_pack(), embedder, 0.9, background=background)
    assert base.match("what's the weather going to be like in Lisbon tomorrow").band is Band.OUT_OF_SCOPE
    assert base.match("recommend me a good pasta recipe for dinner").band is Band.OUT_OF_SCOPE
    found = base.match("I can't sign in to my account")
    assert found.best.playbook == "login" and found.group == "technical"
    assert all(not c.playbook.startswith("background.") for c in found.candidates)  # topics are never shown


def test_a_clear_business_group_goes_to_a_person_even_unsure_of_the_playbook(embedder, background):
    base = KnowledgeBase.build(bare_pack(), embedder, 0.9, background=background)
    found = base.match("can we get some kind of discount")
    assert found.group == "business" and found.band is Band.ANSWER
    assert {c.playbook for c in found.candidates[:2]} == {"student", "charity"}


def test_background_lines_are_pruned_beside_a_pack_that_covers_them(embedder, background):
    weather = Playbook("forecast", "Forecast", "feature_malfunction", "d",
                       tuple(background.topics["weather"][:40]))
    base = KnowledgeBase.build({**bare_pack(), "forecast": weather}, embedder, 0.9, background=background)
    kept = {e.text for e in base.examples.values() if e.playbook == "background.weather"}
    assert len(kept) < len(background.topics["weather"]) - 40  # the pack's own lines and their neighbours left
    assert base.match(background.topics["weather"][0]).best.playbook == "forecast"


@pytest.mark.parametrize("text", ["hi", "help", "?", "hello, anyone there?"])
def test_a_message_that_states_no_problem_gets_asked_what_is_wrong(knowledge, text):
    assert knowledge.match(text).band is Band.NO_PROBLEM


@pytest.mark.parametrize("text", ["🙂🙂🙂", "?!?!", "…", "aaaaaaaaaaaaaaaaaaaa", "zzzzzz zzzz", "-_-"])
def test_nothing_to_match_is_known_without_the_model(text):
    assert states_nothing(text)


@pytest.mark.parametrize("text", ["ok", "hi", "2fa", "a b", "I can't log in"])
def test_real_words_are_matched(text):
    assert not states_nothing(text)


def test_greeting_class_names():
    assert is_greeting("background.greeting") and not is_greeting("background.weather")
