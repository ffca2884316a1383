import numpy as np
import pytest

from knowledge.base import Band, KnowledgeBase, fingerprint, open_knowledge
from knowledge.embedder import Embedder, text_key
from knowledge.playbooks import Playbook


@pytest.mark.parametrize(
    ("message", "playbook", "band"),
    [
        ("The dashboard is loading really slowly", "dashboard_slow", Band.ANSWER),
        ("Can we get a non-profit discount?", "nonprofit_education_discount", Band.ANSWER),
        ("I can't log in, it says my password is wrong", "login_password_rejected", Band.ANSWER),
    ],
)
def test_clear_messages_are_answered(knowledge, message, playbook, band):
    match = knowledge.match(message)
    assert match.best.playbook == playbook
    assert match.band is band


def test_questions_about_something_else_are_out_of_scope(knowledge):
    match = knowledge.match("what's the capital of Peru")
    assert match.band is Band.OUT_OF_SCOPE


def test_candidates_are_best_first_and_at_most_five(knowledge):
    match = knowledge.match("my calendar stopped syncing interviews")
    scores = [c.score for c in match.candidates]
    assert len(scores) == 5 and scores == sorted(scores, reverse=True)
    assert 0 <= match.confidence <= 1


def test_bands_are_calibrated_from_the_examples(knowledge):
    c = knowledge.calibration
    assert 0 < c.t_low < c.t_high
    assert c.examples > 600 and c.out_of_scope_examples > 50
    # The answer band reaches the target precision on left-out examples, by construction of the fit.
    assert c.answer_precision >= c.target_precision
    assert c.in_scope_kept > 0.8 and c.out_of_scope_rejected > 0.8


def tiny_pack() -> dict[str, Playbook]:
    return {
        "login": Playbook("login", "Login", "authentication", "d", ("I can't log in", "login fails", "password wrong")),
        "slow": Playbook("slow", "Slow", "performance", "d", ("app is slow", "pages load slowly", "it lags")),
        "chat": Playbook("chat", "Chat", "out_of_scope", "d", ("hello there", "how are you", "tell me a joke")),
    }


def test_stored_index_is_reused_and_rebuilt_when_playbooks_change(tmp_path, knowledge):
    embedder = Embedder(cache_dir=tmp_path / "cache")
    embedder._model = knowledge.embedder._load()  # share the loaded model; the cache is this test's own
    pack = tiny_pack()
    _, first = open_knowledge(pack, embedder, tmp_path / "index", 0.9)
    _, second = open_knowledge(pack, embedder, tmp_path / "index", 0.9)
    assert first.built and not second.built
    changed = dict(pack)
    changed["slow"] = Playbook("slow", "Slow", "performance", "d", ("app is slow", "pages load slowly", "so laggy"))
    assert fingerprint(changed, embedder.model_id, 0.9) != fingerprint(pack, embedder.model_id, 0.9)
    _, third = open_knowledge(changed, embedder, tmp_path / "index", 0.9)
    assert third.built


def test_rebuild_encodes_only_new_texts(tmp_path, knowledge):
    embedder = Embedder(cache_dir=tmp_path / "cache")
    embedder._model = knowledge.embedder._load()
    encoded: list[str] = []
    original = embedder._encode

    def counting(texts, progress):
        encoded.extend(texts)
        return original(texts, progress)

    embedder._encode = counting
    first = embedder.encode(["alpha", "beta"])
    second = embedder.encode(["alpha", "beta", "gamma"])
    assert encoded == ["alpha", "beta", "gamma"]
    assert np.allclose(first, second[:2])
    reopened = Embedder(cache_dir=tmp_path / "cache")
    assert all(text_key(text) in reopened._cache for text in ["alpha", "beta", "gamma"])


def test_vectors_are_normalised(knowledge):
    vector = knowledge.embedder.encode_one("The dashboard is slow")
    assert vector.dtype == np.float32 and abs(float(np.linalg.norm(vector)) - 1) < 1e-4


def test_build_from_a_small_pack_matches(knowledge):
    base = KnowledgeBase.build(tiny_pack(), knowledge.embedder, 0.9)
    assert base.match("I cannot sign in, wrong password").best.playbook == "login"


@pytest.mark.parametrize("message", [
    "Our contract renews in March. Could we switch to yearly billing?",  # context, then the one request
    "We just hired 30 people. Is there a discount for more seats?",
    "Is there an education discount? We run a coding school with 200 students.",
    "Can our data stay in Germany? Does that cost more?",  # the second is about the first
])
def test_context_around_one_business_request_is_not_a_request_of_its_own(knowledge, message):
    match = knowledge.match(message)
    assert match.group == "business"
    assert [a for a in match.asides if a.group == "business"] == []


def test_two_business_requests_in_one_message_are_both_kept(knowledge):
    match = knowledge.match("Could we get a refund for the unused months? And could you close our account?")
    assert match.best.playbook == "refund_request"
    assert [(a.playbook, a.text) for a in match.asides] == [
        ("account_and_data_deletion_request", "And could you close our account?")]
