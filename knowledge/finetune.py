"""Fine-tuning the embedding model on the playbook examples, so refusals get sharper.

Frozen all-MiniLM-L6-v2 cannot hold 95% in-scope accuracy at 85% out-of-scope recall on CLINC150 with any
head we measured (docs/matching-experiments.md); a few epochs on the base's own examples can. The loss is
the one that measured best there:

- supervised contrastive (same playbook pulls together; out-of-scope examples are only ever negatives);
- a large-margin cosine classifier over the in-scope playbooks (its weights start at the frozen centroids);
- a term pushing out-of-scope examples towards a uniform spread over the in-scope playbooks.

Batches hold pairs of examples of random playbooks so every anchor has a positive. Torch is imported
inside, as the embedder does, so the CLI starts fast.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from core.errors import KnowledgeError
from core.taxonomy import OUT_OF_SCOPE
from knowledge.embedder import offline_and_quiet
from knowledge.playbooks import Playbook

PROVENANCE = "firstline-fine-tune.json"


@dataclass(frozen=True)
class Recipe:
    """Hyper-parameters of the measured recipe; the defaults are the ones that reached the CLINC150 target."""

    epochs: int = 3
    seed: int = 0
    pairs_per_batch: int = 16
    learning_rate: float = 3e-5
    head_learning_rate: float = 1e-3
    weight_decay: float = 0.01
    warmup_share: float = 0.1
    temperature: float = 0.05
    scale: float = 30.0
    margin: float = 0.35
    uniform_weight: float = 0.5
    oos_batches_per_epoch: int = 100  # early batches that carry out-of-scope negatives


@dataclass(frozen=True)
class FineTuneReport:
    model_dir: Path
    steps: int
    seconds: float
    final_loss: float


def fine_tune(
    model_path: str,
    texts: Sequence[str],
    labels: Sequence[str],
    out_of_scope: Sequence[str],
    model_dir: Path,
    recipe: Recipe = Recipe(),
    progress: bool = False,
) -> FineTuneReport:
    """Train a copy of the model at `model_path` on labelled in-scope `texts` plus `out_of_scope` negatives
    and save it to `model_dir` (written whole to a temporary folder, then renamed)."""
    if recipe.epochs < 1:
        raise KnowledgeError("fine-tuning needs at least one epoch")
    by_label: dict[str, list[str]] = {}
    for text, label in zip(texts, labels, strict=True):
        by_label.setdefault(label, []).append(text)
    if len(by_label) < 2:
        raise KnowledgeError("fine-tuning needs at least two in-scope playbooks")

    offline_and_quiet()
    import torch
    from sentence_transformers import SentenceTransformer

    started = time.perf_counter()
    rng = random.Random(recipe.seed)
    torch.manual_seed(recipe.seed)
    model = SentenceTransformer(model_path, device="cpu")
    names = sorted(by_label)
    head = _initial_head(model, by_label, names, torch)
    optimiser = torch.optim.AdamW(
        [{"params": model.parameters(), "lr": recipe.learning_rate},
         {"params": [head], "lr": recipe.head_learning_rate}],
        weight_decay=recipe.weight_decay,
    )
    steps_per_epoch = max(1, len(texts) // (2 * recipe.pairs_per_batch))
    total = steps_per_epoch * recipe.epochs
    warmup = max(1, int(recipe.warmup_share * total))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda step: min((step + 1) / warmup, max(0.0, (total - step) / max(1, total - warmup))))

    model.train()
    loss_value = math.nan
    bar = tqdm(total=total, desc="fine-tuning", unit="step", disable=not progress)
    for step in range(total):
        with_oos = bool(out_of_scope) and step % steps_per_epoch < recipe.oos_batches_per_epoch
        batch, batch_labels = _batch(by_label, names, out_of_scope if with_oos else (), recipe.pairs_per_batch, rng)
        loss = _loss(model, head, batch, batch_labels, recipe, torch)
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_([*model.parameters(), head], 1.0)
        optimiser.step()
        schedule.step()
        loss_value = float(loss.detach())
        bar.update()
        bar.set_postfix(loss=f"{loss_value:.3f}", refresh=False)
    bar.close()
    model.eval()
    _save(model, model_dir, recipe, len(texts), len(out_of_scope))
    return FineTuneReport(model_dir, total, time.perf_counter() - started, loss_value)


def _initial_head(model, by_label: dict[str, list[str]], names: list[str], torch):
    """Class weights at the normalised centroids of the frozen embeddings: training starts from a sane head."""
    rows = []
    for name in names:
        vectors = model.encode(by_label[name], normalize_embeddings=True, convert_to_numpy=True,
                               show_progress_bar=False)
        centroid = np.asarray(vectors, dtype="float32").mean(axis=0)
        rows.append(centroid / max(float(np.linalg.norm(centroid)), 1e-9))
    return torch.nn.Parameter(torch.tensor(np.stack(rows)))


def _batch(by_label: dict[str, list[str]], names: list[str], out_of_scope: Sequence[str], pairs: int,
           rng: random.Random) -> tuple[list[str], list[int]]:
    """`pairs` playbooks x 2 examples; with negatives, one pair slot holds two out-of-scope texts (label -1)."""
    chosen = rng.sample(range(len(names)), min(pairs - (1 if out_of_scope else 0), len(names)))
    texts, labels = [], []
    for index in chosen:
        pool = by_label[names[index]]
        picked = rng.sample(pool, 2) if len(pool) >= 2 else pool * 2
        texts += picked
        labels += [index, index]
    if out_of_scope:
        texts += rng.sample(list(out_of_scope), min(2, len(out_of_scope)))
        labels += [-1] * (len(texts) - len(labels))
    return texts, labels


def _loss(model, head, texts: list[str], labels: list[int], recipe: Recipe, torch):
    functional = torch.nn.functional
    features = model.preprocess(texts)
    embeddings = functional.normalize(model(features)["sentence_embedding"], dim=-1)
    target = torch.tensor(labels)
    in_scope = target >= 0

    # Supervised contrastive: anchors are in-scope examples, positives share their playbook.
    similarity = embeddings @ embeddings.T / recipe.temperature
    self_mask = torch.eye(len(texts), dtype=torch.bool)
    similarity = similarity.masked_fill(self_mask, -1e9)
    positive = (target[:, None] == target[None, :]) & ~self_mask & in_scope[:, None]
    log_prob = similarity - torch.logsumexp(similarity, dim=1, keepdim=True)
    anchors = positive.any(dim=1)
    contrastive = -(log_prob * positive).sum(dim=1)[anchors] / positive.sum(dim=1)[anchors]

    # Large-margin cosine classifier over the in-scope playbooks.
    cosine = embeddings @ functional.normalize(head, dim=-1).T
    margin = torch.zeros_like(cosine)
    margin[in_scope, target[in_scope]] = recipe.margin
    classifier = functional.cross_entropy(recipe.scale * (cosine - margin)[in_scope], target[in_scope])

    loss = contrastive.mean() + classifier
    if (~in_scope).any():  # out-of-scope examples should favour no playbook
        spread = -functional.log_softmax(recipe.scale * cosine[~in_scope], dim=1).mean()
        loss = loss + recipe.uniform_weight * spread
    return loss


def _save(model, model_dir: Path, recipe: Recipe, examples: int, negatives: int) -> None:
    staging = model_dir.with_name(model_dir.name + ".partial")
    if staging.exists():
        shutil.rmtree(staging)
    model.save(str(staging))
    provenance = {"recipe": asdict(recipe), "examples": examples, "out_of_scope_examples": negatives,
                  "trained_at": time.time()}
    (staging / PROVENANCE).write_text(json.dumps(provenance, indent=1), encoding="utf-8")
    if model_dir.exists():
        shutil.rmtree(model_dir)
    staging.rename(model_dir)


def tuned_model(
    playbooks: Mapping[str, Playbook],
    base_model_path: str,
    models_dir: Path,
    recipe: Recipe,
    purpose: str = "pack",
    progress: bool = False,
) -> tuple[str, FineTuneReport | None]:
    """The folder of the model fine-tuned on these playbooks' examples, training it when it is missing.

    Keyed by the base model, the recipe and every example, so an unchanged pack reuses its model. Models
    of earlier packs with the same `purpose` are deleted when a new one is trained (each is ~90 MB).
    Only curated playbook examples train the model: learned phrasings stay out of its weights, so deleting
    a user's history never needs a retrain.
    """
    texts: list[str] = []
    labels: list[str] = []
    negatives: list[str] = []
    for pid in sorted(playbooks):
        playbook = playbooks[pid]
        if playbook.category == OUT_OF_SCOPE:
            negatives += playbook.examples
        else:
            texts += playbook.examples
            labels += [pid] * len(playbook.examples)
    digest = hashlib.sha256(json.dumps([Path(base_model_path).name, asdict(recipe), texts, labels, negatives])
                            .encode())
    for weights in sorted(Path(base_model_path).glob("*.safetensors")):
        digest.update(f"{weights.name}:{weights.stat().st_size}".encode())
    model_dir = models_dir / f"{purpose}-{digest.hexdigest()[:16]}"
    if (model_dir / PROVENANCE).exists():
        return str(model_dir), None
    models_dir.mkdir(parents=True, exist_ok=True)
    report = fine_tune(base_model_path, texts, labels, negatives, model_dir, recipe, progress)
    for stale in models_dir.glob(f"{purpose}-*"):
        if stale.is_dir() and stale != model_dir:
            shutil.rmtree(stale, ignore_errors=True)
    return str(model_dir), report
