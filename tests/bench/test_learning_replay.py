"""The replay benchmark's user model: confirmed phrasings are learned, refusals and wrong picks are not."""

from bench.learning_replay import replay, rolling
from knowledge.base import KnowledgeBase
from tests.knowledge.test_matching import tiny_pack


def test_learning_adds_confirmed_phrasings_and_off_adds_none(knowledge):
    texts = ["I can't sign into my account at all", "the pages crawl", "what's the weather in Oslo"]
    labels = ["login", "slow", "oos"]
    vectors = knowledge.embedder.encode(texts)
    on = KnowledgeBase.build(tiny_pack(), knowledge.embedder, 0.9)
    off = KnowledgeBase.build(tiny_pack(), knowledge.embedder, 0.9)
    learned = replay(on, texts, labels, vectors, learn=True)
    ignored = replay(off, texts, labels, vectors, learn=False)
    assert learned.resolved == ignored.resolved  # the same answers, the same feedback
    assert learned.learned == sum(learned.resolved[:2]) and ignored.learned == 0
    new = {e.text for e in on.examples.values()} - {e.text for e in off.examples.values()}
    assert new == {t for t, ok in zip(texts[:2], learned.resolved[:2], strict=True) if ok}
    assert "what's the weather in Oslo" not in new


def test_rolling_share_uses_what_there_is_before_the_window_fills():
    assert rolling([True, False, True, True], 2) == [1.0, 0.5, 0.5, 1.0]
