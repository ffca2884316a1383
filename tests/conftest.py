"""Fixtures that build on each other: clock; settings -> store; settings -> knowledge (built once per session,
a fresh copy per test) -> parts (the engine) -> assistant; parts -> app -> client; and a mailbox, a real SMTP server
on loopback whose `settings(url)` point Firstline's e-mails at it. Every test gets its own of each (the session
shares only the built index, read-only), ids come from a counter and time from `clock` where a test needs to move
it."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from core.settings import Settings, load_settings
from engine.store import DuckDBStore
from engine.wiring import Parts, build, load_pack, open_index
from knowledge.base import KnowledgeBase
from tests.mailbox import Mailbox

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


class ManualClock:
    """A clock a test moves by hand: `clock()` is the time in epoch seconds, `advance(s)` moves it on."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def sequential_ids() -> Callable[[], str]:
    """Ids from a counter, shaped like the uuid4 hex the server uses: what is seeded by an id (the order of
    remedies a conversation tries, the words of a reply) is then the same on every run."""
    counter = itertools.count(1)
    return lambda: f"{next(counter):032x}"


def build_parts(settings: Settings, **kwargs: object) -> Parts:
    """`engine.wiring.build` with sequential ids: the way every test builds the parts."""
    return build(settings, new_id=sequential_ids(), **kwargs)  # type: ignore[arg-type]


def make_settings(data_dir: Path, **overrides: object) -> Settings:
    """Settings with the embedded defaults, ignoring the caller's environment and firstline.toml."""
    return load_settings(environ={}, default_file=None, data_dir=data_dir, **overrides)


@pytest.fixture(scope="session")
def session_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return make_settings(tmp_path_factory.mktemp("session-data"))


@pytest.fixture(scope="session")
def fresh_knowledge(session_settings: Settings) -> Callable[[], KnowledgeBase]:
    """Build (or load) the default pack's base once; each call returns a fresh copy of it from disk that shares
    the loaded model. Learning adds examples to a base, so no two tests may hold the same one."""
    _, playbooks = load_pack(session_settings)
    built, _ = open_index(session_settings, playbooks)
    directory = session_settings.index_dir
    fingerprint = json.loads((directory / "meta.json").read_text(encoding="utf-8"))["fingerprint"]

    def fresh() -> KnowledgeBase:
        copy = KnowledgeBase.load(directory, playbooks, built.embedder, fingerprint, built.scoring)
        assert copy is not None, "the session's stored index could not be loaded"
        return copy

    return fresh


@pytest.fixture
def knowledge(fresh_knowledge: Callable[[], KnowledgeBase]) -> KnowledgeBase:
    return fresh_knowledge()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "data")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    """A real SMTP server on 127.0.0.1 (tests/mailbox.py), started, and stopped after the test."""
    box = Mailbox().start()
    yield box
    box.stop()


@pytest.fixture
def store(settings: Settings, clock: ManualClock):
    """The DuckDB store alone, on the test's data folder, on the manual clock."""
    opened = DuckDBStore(settings.database_path, clock)
    yield opened
    opened.close()


@pytest.fixture
def parts(settings: Settings, knowledge: KnowledgeBase):
    built = build_parts(settings, knowledge=knowledge)
    yield built
    built.close()


@pytest.fixture
def assistant(parts: Parts):
    return parts.assistant


@pytest.fixture
def app(settings: Settings, parts: Parts):
    from web import create_app

    return create_app(settings, parts)


@pytest.fixture
def client(app):
    return app.test_client()


def shared_file(*parts: str) -> Path:
    """A file from ../shared (data and checkers for contracts); CI always has it, a lone clone may not."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{path} is missing; CI must run with ../shared beside the repository")
        pytest.skip(f"{path} is not here; clone the project beside its shared/ folder to run this test")
    return path


def check_ask_contract(jsonl: str) -> subprocess.CompletedProcess:
    """Run the published checker of the `ask --json` contract on some JSON lines."""
    checker = shared_file("checks", "ask_contract.py")
    return subprocess.run([sys.executable, str(checker)], input=jsonl, capture_output=True, text=True, check=False)
