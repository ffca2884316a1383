import tracemalloc
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import ConfigurationError, RuleError
from core.yamlfile import (
    LIMITS,
    MAX_PROBLEMS,
    MAX_REPORTED,
    Limits,
    field_name,
    load_located,
    load_mapping,
    parse_located,
    yaml_files,
)
from rules.loader import load_rules

ROOT = Path(__file__).resolve().parents[2]


def refused(text: str, limits: Limits = LIMITS) -> list[str]:
    """The problems of a text the loader must refuse (it returns no document with them)."""
    docs, problems = parse_located(text, "f.yaml", limits)
    assert docs == [] and problems, docs
    return [str(p) for p in problems]


def test_line_of_a_nested_value(tmp_path):
    path = tmp_path / "doc.yaml"
    path.write_text("id: x\nlist:\n  - a\n  - b: 1\n    c: 2\n", encoding="utf-8")
    (doc,), problems = load_located(path)
    assert not problems
    assert doc.line_of(["list", 1, "c"]) == 5
    assert doc.line_of(["list", 0]) == 3
    assert doc.line_of(["missing", "deeper"]) == 1  # nearest existing ancestor: the document


def test_syntax_error_names_the_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("id: x\nexamples: [a, b\ntitle: t\n", encoding="utf-8")
    docs, problems = load_located(path)
    assert docs == []
    assert problems[0].line is not None and "YAML syntax" in problems[0].message


def test_not_utf8_is_a_problem_not_a_crash(tmp_path):
    path = tmp_path / "latin.yaml"
    path.write_bytes("title: caf\xe9\n".encode("latin-1"))
    docs, problems = load_located(path)
    assert docs == [] and "not UTF-8" in problems[0].message


def test_unsafe_tags_are_refused(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text("x: !!python/object/apply:os.system ['echo hacked']\n", encoding="utf-8")
    docs, problems = load_located(path)
    assert docs == [] and problems


def test_field_name_rendering():
    assert field_name(["remedies", 0, "action"]) == "remedies[0].action"
    assert field_name([]) == ""


# -- duplicate keys: YAML keeps the last silently; we name both lines ------------------------------------------

@pytest.mark.parametrize(("text", "where", "first"), [
    ("id: a\ntitle: t\nid: b\n", "f.yaml:3: id: duplicate key 'id'", "first on line 1"),
    ("rules:\n  - name: r\n    then: [a]\n    when: {}\n    then: [b]\n", "f.yaml:5: rules[0].then:",
     "first on line 3"),
    ("a:\n  b:\n    c:\n      d: 1\n      e: 2\n      d: 3\n", "f.yaml:6: a.b.c.d:", "first on line 4"),
    ("limits: {low: 1, high: 2, low: 3}\n", "f.yaml:1: limits.low:", "first on the same line"),
    ("1: one\n0x1: also one\n", "f.yaml:2: [1]: duplicate key 1", "first on line 1"),  # equal once read
    ("yes: a\ntrue: b\n", "f.yaml:2: [True]: duplicate key True", "first on line 1"),
    ("- {k: 1}\n- {k: 2, j: 0, k: 3}\n", "f.yaml:2: [1].k:", "first on the same line"),
])
def test_a_duplicate_key_is_refused_naming_both_lines(text, where, first):
    (problem,) = refused(text)
    assert problem.startswith(where) and first in problem and "silently" in problem, problem


def test_every_duplicate_is_reported_and_the_list_is_capped():
    two = refused("a: 1\nb: 2\na: 3\nc:\n  x: 1\n  x: 2\n")
    assert [p.split(": ")[0] for p in two] == ["f.yaml:3", "f.yaml:6"]
    many = refused("".join(f"k{i}: 1\nk{i}: 2\n" for i in range(100)))
    assert len(many) == MAX_PROBLEMS


def test_a_load_of_many_broken_files_reports_a_readable_number(tmp_path):
    for i in range(150):
        (tmp_path / f"r{i:03d}.yaml").write_text("rules: []\nrules: []\n", encoding="utf-8")
    with pytest.raises(RuleError) as caught:
        load_rules([tmp_path])
    problems = caught.value.problems
    assert len(problems) == MAX_REPORTED + 1 and str(problems[0]).startswith(f"{tmp_path}/r000.yaml:2: rules: dup")
    assert problems[-1].message == "... and 50 more problems; fix these first"


def test_keys_that_are_lists_or_mappings_are_refused():
    assert "a key must be a plain value" in refused("? [a, b]\n: 1\n")[0]
    assert "a key must be a plain value" in refused("{[1]: x}\n")[0]


# -- anchors, aliases and merge keys: refused at the first, before anything is built ----------------------------

@pytest.mark.parametrize(("text", "line", "fragment"), [
    ("base: &b 1\nother: 2\n", 1, "anchors (&b)"),
    ("a:\n  - x\n  - &m {k: v}\n", 3, "anchors (&m)"),
    ("a: [1, 2, *nowhere]\n", 1, "aliases (*nowhere)"),  # refused even when it names nothing
    ("first: 1\n---\nsecond: &late [1]\n", 3, "anchors (&late)"),
    ("a:\n  <<: {k: v}\n  j: 1\n", 2, "merge keys (<<)"),
])
def test_anchors_aliases_and_merge_keys_are_refused(text, line, fragment):
    problems = refused(text)
    assert problems[0].startswith(f"f.yaml:{line}: ") and fragment in problems[0], problems


def bomb(levels: int, fan_out: int) -> str:
    """The "billion laughs": each level lists the one before `fan_out` times; fan_out ** levels values in all."""
    lines = ["l0: &l0 [" + ", ".join(["lol"] * fan_out) + "]"]
    lines += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * fan_out) + "]" for i in range(1, levels)]
    return "\n".join(lines) + f"\nrules: *l{levels - 1}\n"


def test_a_billion_laughs_is_refused_before_anything_is_built():
    text = bomb(10, 10)  # 10 ** 10 values once expanded, from under 1 KB
    assert len(text) < 1024
    # A node budget far below the expansion: refused for the anchor, never for the count, so nothing grew.
    tracemalloc.start()
    try:
        problems = refused(text, Limits(max_nodes=20))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(problems) == 1 and "anchors (&l0)" in problems[0] and problems[0].startswith("f.yaml:1: l0:")
    assert peak < 1_000_000, peak
    # The same shape built from aliases alone (no anchor first) is refused at its first alias.
    assert "aliases (*x)" in refused("a: [*x, *x, *x]\n", Limits(max_nodes=5))[0]


# -- size, count and depth ---------------------------------------------------------------------------------------

def test_the_documented_limits():
    assert (LIMITS.max_bytes, LIMITS.max_nodes, LIMITS.max_depth) == (8 * 1024 * 1024, 500_000, 32)
    for doc in ("rules.md", "playbooks.md"):
        text = (ROOT / "docs" / doc).read_text(encoding="utf-8")
        assert all(number in text for number in ("8 MiB", "500,000", "32 levels")), doc


def test_a_file_over_the_size_limit_is_refused_without_reading_it_all(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text("a: " + "x" * 97 + "\n", encoding="utf-8")  # 101 bytes
    assert load_located(path, limits=Limits(max_bytes=101))[1] == []
    docs, problems = load_located(path, limits=Limits(max_bytes=100))
    assert docs == [] and "larger than 100 bytes" in str(problems[0])
    path.write_text("a: " + "x" * 4_000_000 + "\n", encoding="utf-8")
    tracemalloc.start()
    try:
        _, problems = load_located(path, limits=Limits(max_bytes=1000))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "larger than 1,000 bytes" in str(problems[0]) and peak < 100_000, peak


def test_a_file_with_too_many_values_is_refused():
    ten = "[" + ", ".join(["1"] * 9) + "]\n"  # the list and its nine items: ten values
    assert parse_located(ten, "f.yaml", Limits(max_nodes=10))[1] == []
    assert "more than 9 values" in refused(ten, Limits(max_nodes=9))[0]
    items = "[" + "0," * 600_000 + "0]\n"  # within the size limit, over the default count
    assert "more than 500,000 values" in refused(items)[0]


@pytest.mark.parametrize("shape", ["flow", "block"])
def test_nesting_deeper_than_the_limit_is_refused(shape):
    def nested(depth: int) -> str:
        if shape == "flow":
            return "[" * depth + "]" * depth + "\n"
        return "".join("  " * i + f"k{i}:\n" for i in range(depth - 1)) + "  " * (depth - 1) + "k: leaf\n"

    docs, problems = parse_located(nested(32), "f.yaml")
    assert problems == [] and docs
    assert "nested deeper than 32 levels" in refused(nested(33))[0]
    assert "nested deeper than 4 levels" in refused(nested(5), Limits(max_depth=4))[0]


def test_very_deep_nesting_costs_nothing():
    tracemalloc.start()
    try:
        problems = refused("[" * 900 + "]" * 900)  # read one level at a time, refused at the 33rd
        peak = tracemalloc.get_traced_memory()[1]
        deeper = refused("[" * 200_000 + "]" * 200_000)  # would overflow a recursive reader; libyaml stops it
    finally:
        tracemalloc.stop()
    assert "nested deeper than 32 levels" in problems[0] and peak < 200_000, peak
    assert "YAML syntax: exceeded maximum nesting depth" in deeper[0]


# -- values: finite numbers, plain types, readable ---------------------------------------------------------------

@pytest.mark.parametrize("value", [".inf", "-.Inf", "+.INF", ".nan", ".NaN", "1.0e+999", "-2.5e+400"])
def test_numbers_that_are_not_finite_are_refused(value):
    (problem,) = refused(f"remedies:\n  - params: {{replicas: 2, scale: [1, {value}]}}\n")
    assert problem.startswith("f.yaml:2: remedies[0].params.scale[1]: ")
    assert f"'{value}' is not a finite number" in problem


def test_finite_numbers_and_plain_values_are_read_as_yaml_reads_them():
    text = "a: 1.5e+3\nb: -0.0\nc: 0x1F\nd: 1_000\ne: ~\nf: yes\ng: '.inf'\nh: 2024-01-02\ni: !!str 3\nj: !!int '7'\n"
    (doc,), problems = parse_located(text, "f.yaml")
    assert problems == [] and doc.data == yaml.safe_load(text)


@pytest.mark.parametrize(("text", "fragment"), [
    ("a: !!set {x, y}\n", "the tag 'tag:yaml.org,2002:set'"),
    ("a: !!omap [x: 1]\n", "the tag 'tag:yaml.org,2002:omap'"),
    ("a: !!binary aGk=\n", "the tag 'tag:yaml.org,2002:binary'"),
    ("a: !!python/tuple [1]\n", "the tag 'tag:yaml.org,2002:python/tuple'"),
    ("a: !custom x\n", "the tag '!custom'"),
    ("a: 2024-13-45\n", "'2024-13-45' cannot be read as a timestamp"),
    ("a: " + "9" * 5000 + "\n", "is a number of 5,000 characters"),
    ("a: 1" + ":1" * 2000 + "\n", "is a number of 4,001 characters"),  # base 60: quadratic to read
    ("a: \x07\n", "character #x0007 is not allowed"),
])
def test_values_that_are_not_plain_or_cannot_be_read_are_problems(text, fragment):
    (problem,) = refused(text)
    assert problem.startswith("f.yaml:1: ") and fragment in problem, problem


def test_problems_are_short_whatever_the_file_holds():
    huge = "k" * 200_000
    problems = refused(f"{huge}: 1\n{huge}: 2\n") + refused(f"a: &{huge} 1\n") + refused(f"{huge}: {{x: .inf}}\n")
    problems += refused(f"a: !{huge} x\n") + refused("a: " + "7" * 300_000 + "\n")
    assert all(len(p) < 400 for p in problems), [len(p) for p in problems]


def test_load_mapping_names_the_file_and_line(tmp_path):
    path = tmp_path / "words.yaml"
    path.write_text("affirm: [yes]\ndeny: [no]\naffirm: [sure]\n", encoding="utf-8")
    with pytest.raises(ConfigurationError, match=rf"cannot read the words {path}:\n  {path}:3: affirm: duplicate"):
        load_mapping(path, "the words", "list -> phrases")
    path.write_text("- a\n", encoding="utf-8")
    with pytest.raises(ConfigurationError, match="expected a mapping of list -> phrases"):
        load_mapping(path, "the words", "list -> phrases")


def test_the_shipped_data_files_read_exactly_as_pyyaml_reads_them():
    files = [p for folder in ("data", "rules") for p in yaml_files(ROOT / folder)]
    assert len(files) > 100
    for path in files:
        docs, problems = load_located(path)
        assert problems == [], problems
        expected = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8"))]
        assert [d.data for d in docs] == expected, path


# -- any text: documents or problems, never an exception ----------------------------------------------------------

YAMLISH = st.sampled_from([
    "a", "b", "rules", "- ", ": ", ":", "\n", "\n  ", "  ", "\t", "[", "]", "{", "}", ",", "&x ", "*x", "<<", "? ",
    "!!set ", "!!binary ", "!t ", "---\n", "...\n", "'", '"', "|\n", ">\n", "#", ".inf", ".nan", "1.0e+999", "0x1F",
    "1:2:3", "2024-13-45", "2024-01-01", "~", "yes", "9" * 60, "é", "\x00", "\ufeff", "%YAML 1.1\n", "1", "-1.5",
])


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(st.lists(YAMLISH, max_size=40).map("".join) | st.text(max_size=200))
def test_any_text_gives_documents_or_problems_never_an_exception(text):
    docs, problems = parse_located(text, "f.yaml")
    assert not (docs and problems)
    assert all(len(str(p)) < 400 for p in problems)
