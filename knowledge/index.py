"""The faiss index of example vectors, searched by inner product on normalised vectors (cosine).

Exact (`flat`) while the base is small; an inverted-file index (`ivf`) above a size, chosen automatically.
IVF rather than HNSW because faiss's HNSW cannot remove vectors, and examples must be removable (a user
deleting their history takes their learned examples with them). Rows have stable integer ids, so adding
and removing examples never needs a rebuild.
"""

from __future__ import annotations

import math
from pathlib import Path

import faiss
import numpy as np

from core.errors import KnowledgeError

APPROXIMATE_ABOVE = 50_000  # rows; below this exact search costs about a millisecond (bench/index_scale.py)
TRAINING_PER_CELL = 64  # k-means sample size per inverted list
DEFAULT_NPROBE = 16  # lists visited per query; bench/index_scale.py measures the recall it gives


class VectorIndex:
    """Example vectors searchable by cosine similarity, addressed by integer ids."""

    def __init__(self, raw: faiss.Index) -> None:
        self._index = raw

    # -- construction -------------------------------------------------------------------------------

    @classmethod
    def exact(cls, dimension: int) -> VectorIndex:
        return cls(faiss.IndexIDMap2(faiss.IndexFlatIP(dimension)))

    @classmethod
    def approximate(cls, training: np.ndarray, nlist: int | None = None, nprobe: int | None = None) -> VectorIndex:
        """An IVF index whose cells are learned from `training` vectors (it holds none of them yet)."""
        training = _as_matrix(training)
        count, dimension = training.shape
        nlist = nlist or max(16, int(2 * math.sqrt(count)))
        if count > TRAINING_PER_CELL * nlist:  # k-means needs a sample, not every vector
            rows = np.random.default_rng(0).choice(count, TRAINING_PER_CELL * nlist, replace=False)
            training = training[np.sort(rows)]
        quantizer = faiss.IndexFlatIP(dimension)
        raw = faiss.IndexIVFFlat(quantizer, dimension, nlist, faiss.METRIC_INNER_PRODUCT)
        raw.train(training)
        raw.nprobe = nprobe or max(DEFAULT_NPROBE, nlist // 32)
        # faiss's SWIG bindings are typed only in part: these attributes exist at run time.
        raw.set_direct_map_type(faiss.DirectMap.Hashtable)  # type: ignore[attr-defined]  # reconstruct, remove by id
        quantizer.this.disown()  # type: ignore[attr-defined]  # the IVF index owns its quantizer from here
        raw.own_fields = True
        return cls(raw)

    @classmethod
    def build(cls, ids: np.ndarray, vectors: np.ndarray, approximate_above: int = APPROXIMATE_ABOVE) -> VectorIndex:
        """Exact below `approximate_above` rows, approximate at or above it."""
        vectors = _as_matrix(vectors)
        index = cls.approximate(vectors) if len(vectors) >= approximate_above else cls.exact(vectors.shape[1])
        index.add(ids, vectors)
        return index

    # -- what it is ---------------------------------------------------------------------------------

    @property
    def dimension(self) -> int:
        return int(self._index.d)

    @property
    def kind(self) -> str:
        raw = self._index
        if isinstance(raw, faiss.IndexIVF):
            return f"ivf{raw.nlist}-flat (nprobe {raw.nprobe})"
        return "flat-ip"

    @property
    def is_exact(self) -> bool:
        return not isinstance(self._index, faiss.IndexIVF)

    def __len__(self) -> int:
        return int(self._index.ntotal)

    # -- changes ------------------------------------------------------------------------------------

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        vectors = _as_matrix(vectors)
        if vectors.shape[1] != self.dimension:
            raise KnowledgeError(f"vectors of dimension {vectors.shape[1]} do not fit an index of {self.dimension}")
        self._index.add_with_ids(vectors, np.asarray(ids, dtype="int64"))

    def remove(self, ids: np.ndarray) -> int:
        """Remove rows by id; returns how many were there."""
        return int(self._index.remove_ids(np.asarray(ids, dtype="int64")))  # type: ignore[arg-type]  # SWIG converts

    # -- reading ------------------------------------------------------------------------------------

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Scores and ids of the k nearest rows per query, best first (id -1 where there are fewer)."""
        queries = _as_matrix(queries)
        k = max(1, min(k, len(self)))
        return self._index.search(queries, k)

    def reconstruct(self, row_id: int) -> np.ndarray:
        return np.asarray(self._index.reconstruct(int(row_id)))

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        if len(ids) == 0:
            return np.zeros((0, self.dimension), dtype="float32")
        return np.stack([self._index.reconstruct(int(i)) for i in ids])

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        faiss.write_index(self._index, str(tmp))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> VectorIndex:
        try:
            raw = faiss.read_index(str(path))
        except RuntimeError as error:
            raise KnowledgeError(f"cannot read the faiss index {path}: {error}; rebuild it with "
                                 "`firstline index build --force`") from None
        if isinstance(raw, faiss.IndexIVF):
            raw.set_direct_map_type(faiss.DirectMap.Hashtable)  # type: ignore[attr-defined]  # untyped in SWIG
        return cls(raw)


def _as_matrix(vectors: np.ndarray) -> np.ndarray:
    matrix = np.ascontiguousarray(np.atleast_2d(vectors), dtype="float32")
    if matrix.ndim != 2:
        raise KnowledgeError(f"expected a matrix of vectors, got shape {matrix.shape}")
    return matrix
