import numpy as np
import pytest

from core.errors import KnowledgeError
from knowledge.index import VectorIndex


def unit_vectors(count: int, dimension: int = 32, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((count, dimension)).astype("float32")
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_small_bases_are_exact_and_large_ones_approximate():
    vectors = unit_vectors(3000)
    assert VectorIndex.build(np.arange(3000), vectors, approximate_above=5000).kind == "flat-ip"
    approximate = VectorIndex.build(np.arange(3000), vectors, approximate_above=1000)
    assert approximate.kind.startswith("ivf") and not approximate.is_exact


@pytest.mark.parametrize("approximate_above", [10**9, 1000])
def test_add_remove_search_and_persist_without_rebuilding(tmp_path, approximate_above):
    vectors = unit_vectors(3000)
    ids = np.arange(3000) * 2  # ids need not be positions
    index = VectorIndex.build(ids, vectors, approximate_above)
    _, found = index.search(vectors[:20], 1)
    assert (found[:, 0] == ids[:20]).mean() >= 0.9
    extra = unit_vectors(5, seed=1)
    index.add(np.array([10_001, 10_002, 10_003, 10_004, 10_005]), extra)
    assert len(index) == 3005
    assert index.search(extra[2], 1)[1][0, 0] == 10_003
    assert index.remove(np.array([10_003, 424242])) == 1
    assert 10_003 not in index.search(extra[2], 5)[1][0]
    np.testing.assert_allclose(index.reconstruct(ids[7]), vectors[7], atol=1e-6)
    index.save(tmp_path / "x.faiss")
    loaded = VectorIndex.load(tmp_path / "x.faiss")
    assert len(loaded) == 3004 and loaded.kind == index.kind
    assert loaded.remove(np.array([ids[0]])) == 1


def test_wrong_dimension_and_damaged_file_are_clear_errors(tmp_path):
    index = VectorIndex.exact(8)
    with pytest.raises(KnowledgeError, match="dimension"):
        index.add(np.array([1]), np.ones((1, 4), dtype="float32"))
    broken = tmp_path / "broken.faiss"
    broken.write_bytes(b"not an index")
    with pytest.raises(KnowledgeError, match="rebuild it"):
        VectorIndex.load(broken)
