"""Every loader built on core/yamlfile.py, fed broken versions of the files it reads: a clear error of the project's
own kind (ConfigurationError, or a DataFileError listing problems) or a valid result, never another exception."""

import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import ConfigurationError, DataFileError
from core.settings import PROJECT_ROOT
from engine.actions.catalogue import ACTIONS, action_targets, params_checker
from engine.chat.lexicon import load_lexicon
from engine.chat.understanding import load_reply_examples
from engine.chat.voice import load_voice
from engine.desk.policy import load_decision_policy
from engine.infra.topology import load_topology
from knowledge.playbooks import Vocabulary, load_playbooks
from rules.loader import load_rules
from rules.testfile import load_cases

TOPOLOGY = load_topology(PROJECT_ROOT / "data" / "infrastructure.yaml")
VOCABULARY = Vocabulary(action_targets(TOPOLOGY), TOPOLOGY.signals(), params_checker(TOPOLOGY))

# loader name -> (a shipped file it reads, how to load it from a folder holding the file as `f.yaml`)
LOADERS: dict[str, tuple[Path, Callable[[Path], object]]] = {
    "playbook": (PROJECT_ROOT / "data/playbooks/performance/api_responses_slow.yaml",
                 lambda folder: load_playbooks(folder, VOCABULARY)),
    "rules": (PROJECT_ROOT / "rules/builtin/healing.yaml",
              lambda folder: load_rules([folder], action_targets(TOPOLOGY), check_params=params_checker(TOPOLOGY))),
    "rule tests": (PROJECT_ROOT / "rules/tests/safety.yaml", lambda folder: load_cases([folder])),
    "infrastructure": (PROJECT_ROOT / "data/infrastructure.yaml",
                       lambda folder: load_topology(folder / "f.yaml", {n: s.needs for n, s in ACTIONS.items()})),
    "decision policy": (PROJECT_ROOT / "data/decision_policy.yaml",
                        lambda folder: load_decision_policy(folder / "f.yaml", None, TOPOLOGY.signals())),
    "replies": (PROJECT_ROOT / "data/replies.yaml", lambda folder: load_voice(folder / "f.yaml", "Product")),
    "reply words": (PROJECT_ROOT / "data/reply_words.yaml", lambda folder: load_lexicon(folder / "f.yaml")),
    "reply examples": (PROJECT_ROOT / "data/reply_examples.yaml",
                       lambda folder: load_reply_examples(folder / "f.yaml")),
}
SCALARS = [".inf", "-.inf", ".nan", "1.0e+999", "9" * 120, "2024-13-45", "2024-01-01", "~", "yes", "0x1F", "1:2:3",
           "-1", "0", "3.5", "''", "[]", "{}", "[1, 2]", "{a: 1}", "{a: 1, a: 2}", "&a x", "*a", "!!set {a}",
           "!!binary aGk=", "!custom x", "<<: {a: 1}", "? [a]", "|", "'open", "\x00", "\t", "é", "[" * 40,
           "api", "scale_out", "{replicas: -3}", "{replicas: 2.5}", "restart_service", "database", "unhealthy"]
EDIT = st.tuples(st.integers(0, 5), st.floats(0, 1), st.sampled_from(SCALARS))


def edited(text: str, edits: list[tuple[int, float, str]]) -> str:
    """`text` after some line edits: delete, repeat (a duplicate key), replace a value, re-indent, cut, insert."""
    lines = text.splitlines()
    for op, where, scalar in edits:
        if not lines:
            break
        i = min(int(where * len(lines)), len(lines) - 1)
        line = lines[i]
        if op == 0:
            del lines[i]
        elif op == 1:
            lines.insert(i, line)
        elif op == 2 and ":" in line:
            lines[i] = line.split(":", 1)[0] + ": " + scalar
        elif op == 3:
            lines[i] = " " * int(where * 7) + line.lstrip()
        elif op == 4:
            lines[i] = line[: int(where * len(line))]
        else:
            lines.insert(i, scalar)
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("loader", list(LOADERS))
@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(edits=st.lists(EDIT, min_size=1, max_size=4))
def test_a_broken_file_gives_a_clear_error_or_a_valid_result(loader, edits):
    seed, load = LOADERS[loader]
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "f.yaml").write_text(edited(seed.read_text(encoding="utf-8"), edits), encoding="utf-8")
        try:
            load(Path(folder))
        except (ConfigurationError, DataFileError) as error:
            assert str(error).strip() and len(str(error)) < 20_000


@pytest.mark.parametrize("loader", list(LOADERS))
@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(text=st.text(max_size=300))
def test_any_text_gives_a_clear_error_or_a_valid_result(loader, text):
    _, load = LOADERS[loader]
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "f.yaml").write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            load(Path(folder))
        except (ConfigurationError, DataFileError) as error:
            assert str(error).strip()


@pytest.mark.parametrize("loader", list(LOADERS))
def test_the_shipped_file_loads(loader):
    seed, load = LOADERS[loader]
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "f.yaml").write_text(seed.read_text(encoding="utf-8"), encoding="utf-8")
        assert load(Path(folder)) is not None
