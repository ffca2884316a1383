"""The out-of-scope background: tenant-independent text that is not a request for help with any product.

A pack that holds no out-of-scope examples of its own gives the calibration nothing to refuse against, so it
refuses almost nothing (HINT3's training sets are like that). The engine therefore ships a background of
off-topic messages (weather, cooking, trivia, gadgets, abuse, ...) and of messages that state no problem at
all (greetings, "help", "?"). It joins the playbook examples in the index, in scoring and in calibration as
extra out-of-scope classes, one per topic file; the tenant's own out-of-scope playbooks sit beside it.

The folder holds one UTF-8 text file per topic, one message per line; `greeting.txt` is the topic of
messages that state no problem, answered with a friendly "what's going wrong?" rather than a refusal. The
bundled corpus was written for the project (see `knowledge/background/README.md`): it is disjoint from every
evaluation set we report on.

A background line that sits as close to one of the tenant's in-scope examples as those examples sit to each
other is dropped at build time (`prune`): the tenant's own examples always win.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import KnowledgeError

BUNDLED = Path(__file__).resolve().parent / "background"
GREETING = "greeting"  # the topic of messages that state no problem
PREFIX = "background."  # class ids of background topics; never a valid playbook id (playbook ids have no dot)
PRUNE_QUANTILE = 0.1  # a background line closer to the pack than this share of in-scope examples are is dropped


@dataclass(frozen=True)
class Background:
    """Out-of-scope messages by topic: `{topic: (line, ...)}`."""

    topics: dict[str, tuple[str, ...]]
    source: str = ""

    @property
    def size(self) -> int:
        return sum(len(lines) for lines in self.topics.values())

    def digest(self) -> str:
        """Changes whenever a line or a topic changes, so an index built on another background is rebuilt."""
        digest = hashlib.sha256()
        for topic in sorted(self.topics):
            digest.update(topic.encode())
            for line in self.topics[topic]:
                digest.update(b"\0" + line.encode())
        return digest.hexdigest()[:16]


def class_id(topic: str) -> str:
    return PREFIX + topic


def is_background(class_name: str) -> bool:
    return class_name.startswith(PREFIX)


def is_greeting(class_name: str) -> bool:
    return class_name == class_id(GREETING)


def load_background(directory: Path) -> Background:
    """Every `*.txt` topic file of `directory`.

    Raises KnowledgeError, naming the folder or file and what to do, when the folder is missing or holds no
    topic file, when a file is not UTF-8 or is empty, or when the greeting topic is missing.
    """
    if not directory.is_dir():
        raise KnowledgeError(f"{directory}: the out-of-scope background folder does not exist; set "
                             "FIRSTLINE_BACKGROUND_DIR to a folder of topic files, or unset it for the bundled one")
    files = sorted(directory.glob("*.txt"))
    if not files:
        raise KnowledgeError(f"{directory}: no background topic files (*.txt, one message per line)")
    topics: dict[str, tuple[str, ...]] = {}
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as error:
            raise KnowledgeError(f"{path}: not UTF-8 text (byte {error.start}); save it as UTF-8") from None
        except OSError as error:
            raise KnowledgeError(f"{path}: cannot be read ({error.strerror})") from None
        lines = tuple(dict.fromkeys(line.strip() for line in text.splitlines() if line.strip()))
        if not lines:
            raise KnowledgeError(f"{path}: empty; write one out-of-scope message per line, or remove the file")
        topics[path.stem] = lines
    if GREETING not in topics:
        raise KnowledgeError(f"{directory}: {GREETING}.txt is missing (messages that state no problem, "
                             "such as 'hi' or 'help')")
    return Background(topics, str(directory))


def prune(background_vectors: np.ndarray, in_scope_vectors: np.ndarray, in_scope_nearest: np.ndarray) -> np.ndarray:
    """Which background lines to keep: those farther from every in-scope example than PRUNE_QUANTILE of the
    in-scope examples are from their own nearest neighbour (`in_scope_nearest`, held out). A bank's pack
    thereby drops the background's banking questions, and a job tracker's keeps them.

    Returns a boolean mask over the background rows.
    """
    if len(in_scope_vectors) == 0 or len(background_vectors) == 0:
        return np.ones(len(background_vectors), dtype=bool)
    limit = float(np.quantile(in_scope_nearest, PRUNE_QUANTILE))
    closest = np.zeros(len(background_vectors), dtype="float32")
    for start in range(0, len(background_vectors), 2048):  # bounded memory for large packs
        block = background_vectors[start:start + 2048] @ in_scope_vectors.T
        closest[start:start + 2048] = block.max(axis=1)
    return closest < limit
