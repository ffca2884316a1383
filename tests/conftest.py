"""Fixtures that build on each other: settings -> knowledge (once per session) -> parts -> assistant -> app."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from core.settings import Settings, load_settings
from engine.wiring import Parts, build, load_pack, open_index
from knowledge.base import KnowledgeBase

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def make_settings(data_dir: Path, **overrides: object) -> Settings:
    """Settings with the embedded defaults, ignoring the caller's environment and firstline.toml."""
    return load_settings(environ={}, default_file=None, data_dir=data_dir, **overrides)


@pytest.fixture(scope="session")
def session_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return make_settings(tmp_path_factory.mktemp("session-data"))


@pytest.fixture(scope="session")
def knowledge(session_settings: Settings) -> KnowledgeBase:
    _, playbooks = load_pack(session_settings)
    base, _ = open_index(session_settings, playbooks)
    return base


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "data")


@pytest.fixture
def parts(settings: Settings, knowledge: KnowledgeBase):
    built = build(settings, knowledge=knowledge)
    yield built
    built.close()


@pytest.fixture
def assistant(parts: Parts):
    return parts.assistant


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
