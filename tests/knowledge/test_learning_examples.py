"""Examples added to and removed from a live base change matching at once, with no rebuild."""

from knowledge.base import KnowledgeBase
from knowledge.playbooks import Playbook


def pack():
    return {
        "login": Playbook("login", "Login", "authentication", "d",
                          ("I can't log in", "login fails", "my password is rejected", "sign in broken")),
        "export": Playbook("export", "Export", "feature_malfunction", "d",
                           ("export to csv fails", "the export is empty", "download of my data is broken")),
        "chat": Playbook("chat", "Chat", "out_of_scope", "d", ("hello there", "how are you", "tell me a joke")),
    }


def test_added_examples_match_at_once_and_removed_ones_are_forgotten(knowledge):
    base = KnowledgeBase.build(pack(), knowledge.embedder, 0.9)
    phrase = "the purple elephant dance routine"
    before = base.scores(knowledge.embedder.encode([phrase]))[0]
    ids = base.add_examples("export", [phrase])
    assert len(base.index) == 11
    after = base.match(phrase)
    assert after.best.playbook == "export" and after.best.score > before.max()
    assert base.remove_examples(ids) == 1
    assert len(base.index) == 10 and all(e.text != phrase for e in base.examples.values())
    restored = base.scores(knowledge.embedder.encode([phrase]))[0]
    assert abs(float(restored.max()) - float(before.max())) < 1e-4


def test_a_saved_base_keeps_added_examples(tmp_path, knowledge):
    base = KnowledgeBase.build(pack(), knowledge.embedder, 0.9)
    base.add_examples("login", ["cannot get into my account at all"])
    base.save(tmp_path, "key")
    loaded = KnowledgeBase.load(tmp_path, pack(), knowledge.embedder, "key")
    assert loaded is not None and len(loaded.examples) == 11
    assert KnowledgeBase.load(tmp_path, pack(), knowledge.embedder, "other key") is None


def test_an_index_written_by_another_version_is_rebuilt_not_a_crash(tmp_path, knowledge):
    base = KnowledgeBase.build(pack(), knowledge.embedder, 0.9)
    base.save(tmp_path, "key")
    meta = tmp_path / "meta.json"
    meta.write_text(meta.read_text(encoding="utf-8").replace('"examples"', '"rows"'), encoding="utf-8")
    assert KnowledgeBase.load(tmp_path, pack(), knowledge.embedder, "key") is None


def test_examples_can_be_learned_and_forgotten_while_other_threads_match(knowledge):
    from concurrent.futures import ThreadPoolExecutor

    from knowledge.base import KnowledgeBase
    from tests.knowledge.test_matching import tiny_pack

    base = KnowledgeBase.build(tiny_pack(), knowledge.embedder, 0.9)
    vector = knowledge.embedder.encode(["pages take ages to load"])[0]

    def learn(i: int) -> int:
        ids = base.add_examples("slow", [f"slow thing number {i}"])
        return base.remove_examples(ids)

    def match(_: int) -> str:
        return base.match_vector(vector).best.playbook

    with ThreadPoolExecutor(6) as pool:
        learned = pool.map(learn, range(30))
        matched = pool.map(match, range(300))
        assert sum(learned) == 30
        assert set(matched) == {"slow"}
    assert len(base.examples) == len(base.index) == sum(len(p.examples) for p in tiny_pack().values())
