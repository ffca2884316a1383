"""`firstline check` on hostile data files: each refused with its file, line and field, within a memory bound."""

import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from core.settings import PROJECT_ROOT

MEMORY_BOUND = 2 * 1024**3  # address space; the unbounded loader needed 1.7 GB of data for a 1 KB alias bomb


def check(data_dir: Path, **folders: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIRSTLINE_")}
    env.update({"FIRSTLINE_DATA_DIR": str(data_dir), "HF_HUB_OFFLINE": "1", "OPENBLAS_NUM_THREADS": "1",
                "OMP_NUM_THREADS": "1", **{f"FIRSTLINE_{k.upper()}": str(v) for k, v in folders.items()}})

    def bounded() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BOUND, MEMORY_BOUND))

    return subprocess.run([sys.executable, "-m", "firstline", "check"], capture_output=True, env=env,
                          preexec_fn=bounded, timeout=300, check=False)


@pytest.fixture
def pack(tmp_path: Path) -> tuple[Path, Path]:
    rules, playbooks = tmp_path / "rules", tmp_path / "playbooks"
    shutil.copytree(PROJECT_ROOT / "rules" / "builtin", rules)
    shutil.copytree(PROJECT_ROOT / "data" / "playbooks", playbooks)
    return rules, playbooks


BOMB = "".join([f"l0: &l0 [{', '.join(['lol'] * 9)}]\n",
                *(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 10)), "rules: *l9\n"])


@pytest.mark.parametrize(("folder", "name", "text", "expected"), [
    ("rules", "twice.yaml",
     "rules:\n  - name: sneaky\n    salience: 10\n    when: {all: [{match: {}}]}\n    then: [{decline: {}}]\n"
     "    salience: 900\n", "twice.yaml:6: rules[0].salience: duplicate key 'salience': first on line 3"),
    ("rules", "laughs.yaml", BOMB, "laughs.yaml:1: l0: anchors (&l0) are not allowed in data files"),
    ("playbooks", "performance/dashboard_slow.yaml", None,
     "dashboard_slow.yaml:58: remedies[0].params.older_than_s: '.inf' is not a finite number"),
    ("playbooks", "performance/api_responses_slow.yaml", None,
     "api_responses_slow.yaml:61: remedies[0].params.replicas: 12 is outside api's replicas, 2 to 8"),
])
def test_check_refuses_a_hostile_file_naming_file_line_and_field(tmp_path, pack, folder, name, text, expected):
    rules, playbooks = pack
    path = (rules if folder == "rules" else playbooks) / name
    if text is None:  # a shipped playbook with one value changed
        old = path.read_text(encoding="utf-8")
        text = old.replace("older_than_s: 30", "older_than_s: .inf").replace("replicas: 4", "replicas: 12")
        assert text != old
    path.write_text(text, encoding="utf-8")
    result = check(tmp_path / "data", rules_dir=rules, playbooks_dir=playbooks)
    err = result.stderr.decode()
    assert result.returncode == 1 and "Traceback" not in err and "internal error" not in err, err
    assert f"{path.parent}/{expected}" in err, err
    assert len(err) < 2_000


def test_check_passes_the_shipped_pack(tmp_path, pack):
    rules, playbooks = pack
    result = check(tmp_path / "data", rules_dir=rules, playbooks_dir=playbooks)
    assert result.returncode == 0 and result.stdout.decode().startswith("ok: "), result.stderr.decode()
