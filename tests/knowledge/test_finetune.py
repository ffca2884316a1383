"""Fine-tuning really trains and saves a model that the embedder can use, once per pack."""

from dataclasses import replace

import numpy as np
import pytest

from core.errors import KnowledgeError
from knowledge.finetune import PROVENANCE, Recipe, fine_tune, tuned_model
from tests.knowledge.test_matching import tiny_pack

QUICK = Recipe(epochs=1, pairs_per_batch=2)


def test_a_tuned_model_is_trained_once_reused_and_replaced(tmp_path, knowledge):
    base_model = knowledge.embedder.model_path
    path, report = tuned_model(tiny_pack(), base_model, tmp_path, QUICK)
    assert report is not None and report.steps >= 1 and np.isfinite(report.final_loss)
    assert (tmp_path / path.split("/")[-1] / PROVENANCE).exists()

    tuned = knowledge.embedder.with_model(path)
    vectors = tuned.encode(["I cannot log in", "the app is slow"])
    assert tuned.model_id != knowledge.embedder.model_id
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    # The weights moved: the same text no longer has the same vector.
    assert not np.allclose(vectors[0], knowledge.embedder.encode(["I cannot log in"])[0], atol=1e-4)

    again, second = tuned_model(tiny_pack(), base_model, tmp_path, QUICK)
    assert again == path and second is None

    changed = tiny_pack()
    login = changed["login"]
    changed["login"] = replace(login, examples=(*login.examples, "sign in broken"))
    newer, _ = tuned_model(changed, base_model, tmp_path, QUICK)
    assert newer != path and len([p for p in tmp_path.iterdir() if p.name.startswith("pack-")]) == 1


def test_fine_tuning_needs_two_playbooks(tmp_path, knowledge):
    with pytest.raises(KnowledgeError, match="two in-scope playbooks"):
        fine_tune(knowledge.embedder.model_path, ["a", "b"], ["x", "x"], [], tmp_path / "m", QUICK)
