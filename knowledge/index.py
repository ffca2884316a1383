"""The faiss index of example vectors: exact inner product on normalised vectors, persisted with its ids."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

from core.errors import KnowledgeError


class VectorIndex:
    """Example vectors searchable by cosine similarity; rows are addressed by stable integer ids."""

    kind = "flat-ip"

    def __init__(self, dimension: int) -> None:
        self.dimension = dimension
        self._index = faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        vectors = np.ascontiguousarray(vectors, dtype="float32")
        if vectors.ndim != 2 or vectors.shape[1] != self.dimension:
            raise KnowledgeError(f"vectors of shape {vectors.shape} do not fit an index of dimension {self.dimension}")
        self._index.add_with_ids(vectors, np.asarray(ids, dtype="int64"))

    def remove(self, ids: np.ndarray) -> int:
        return int(self._index.remove_ids(np.asarray(ids, dtype="int64")))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Scores and ids of the k nearest rows per query, best first (id -1 where there are fewer)."""
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype="float32")
        k = max(1, min(k, len(self)))
        return self._index.search(queries, k)

    def reconstruct(self, row_id: int) -> np.ndarray:
        return self._index.reconstruct(int(row_id))

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
        index = cls(raw.d)
        index._index = raw
        return index
