"""Every scoring aggregation works end to end on the real embeddings; the head and its energy behave."""

import numpy as np
import pytest

from knowledge.base import Band, KnowledgeBase, Scoring, open_knowledge
from knowledge.calibration import HeldOut, fit
from knowledge.head import energy_scores, fit_head, folds
from tests.knowledge.test_matching import tiny_pack


@pytest.mark.parametrize("scoring", list(Scoring))
def test_every_scoring_ranks_and_refuses(knowledge, scoring):
    base = KnowledgeBase.build(tiny_pack(), knowledge.embedder, 0.9, scoring=scoring)
    assert base.match("I cannot log into my account").best.playbook == "login"
    assert base.match("pages are loading slowly today").best.playbook == "slow"
    held = base.held_out()
    assert len(held.score) == sum(len(p.examples) for p in tiny_pack().values())


def test_head_refuses_what_no_playbook_covers(knowledge):
    base = KnowledgeBase.build(tiny_pack(), knowledge.embedder, 0.9, scoring=Scoring.HEAD)
    assert base.match("hello, tell me a joke").band is Band.OUT_OF_SCOPE  # the out-of-scope playbook wins


def test_removing_examples_refits_the_head(knowledge):
    base = KnowledgeBase.build(tiny_pack(), knowledge.embedder, 0.9, scoring=Scoring.HEAD)
    before = base.head.weights.copy()
    ids = [i for i, e in base.examples.items() if e.playbook == "slow"]
    base.remove_examples(ids)
    # No example of `slow` is left, so nothing learned from them may remain in the head.
    assert not np.allclose(before, base.head.weights)
    assert base.match("pages are loading slowly today").best.playbook != "slow"


def test_head_is_saved_and_loaded(tmp_path, knowledge):
    pack = tiny_pack()
    first, report = open_knowledge(pack, knowledge.embedder, tmp_path, 0.9, scoring=Scoring.HEAD)
    again, second = open_knowledge(pack, knowledge.embedder, tmp_path, 0.9, scoring=Scoring.HEAD)
    assert report.built and not second.built and second.scoring == "head"
    np.testing.assert_allclose(first.head.weights, again.head.weights)
    # Another scoring is another fingerprint: it rebuilds rather than reuse a calibration fitted for the head.
    _, third = open_knowledge(pack, knowledge.embedder, tmp_path, 0.9, scoring=Scoring.CENTROID)
    assert third.built


def test_energy_keeps_the_ranking_and_tops_at_logsumexp():
    logits = np.array([[2.0, 1.0, 5.0], [0.0, 3.0, -1.0]])
    in_scope = np.array([True, True, False])
    scores = energy_scores(logits, in_scope)
    assert (scores.argsort(axis=1) == logits.argsort(axis=1)).all()
    expected = np.log(np.exp(logits[:, :2]).sum(axis=1))
    np.testing.assert_allclose(scores[:, :2].max(axis=1), expected)


def test_head_fits_binary_and_single_class_problems():
    rng = np.random.default_rng(0)
    vectors = np.vstack([rng.normal(1, 0.1, (10, 4)), rng.normal(-1, 0.1, (10, 4))]).astype("float32")
    labels = np.array([0] * 10 + [2] * 10)
    head = fit_head(vectors, labels, classes=3, c=1.0)
    assert (head.logits(vectors).argmax(axis=1) == labels).all()  # class 1 has no examples and never wins
    alone = fit_head(vectors[:10], labels[:10], classes=3, c=1.0)
    assert (alone.logits(vectors).argmax(axis=1) == 0).all()


def test_folds_cover_every_row_once():
    held = np.concatenate([h for _, h in folds(10)])
    assert sorted(held.tolist()) == list(range(10))
    assert all(len(set(t) & set(h)) == 0 for t, h in folds(10))


def held_out(in_scores, oos_scores) -> HeldOut:
    score = np.array(in_scores + oos_scores, dtype="float64")
    n_in, n_oos = len(in_scores), len(oos_scores)
    return HeldOut(score, np.zeros(len(score), bool), np.array([True] * n_in + [False] * n_oos),
                   np.array([False] * n_in + [True] * n_oos))


def test_refusal_recall_rule_sets_the_lowest_threshold_that_is_surely_enough():
    rng = np.random.default_rng(1)
    data = held_out(list(rng.uniform(0.5, 1.0, 200)), list(rng.uniform(0.0, 0.7, 200)))
    balanced = fit(data, 0.9)
    strict = fit(data, 0.9, refusal_recall=0.85)
    assert strict.rule.startswith("out-of-scope recall >= 85%")
    # The bound is below the observed share: the rule asks for more than 85% observed.
    assert strict.out_of_scope_rejected > 0.85
    looser = fit(data, 0.9, refusal_recall=0.6)
    assert looser.t_low <= strict.t_low and balanced.rule == "balanced"


def test_unreachable_refusal_recall_falls_back_and_says_so():
    data = held_out([0.9, 0.8, 0.7], [0.1])  # one out-of-scope example can never prove 95% recall
    calibration = fit(data, 0.9, refusal_recall=0.95)
    assert "unreachable" in calibration.rule
