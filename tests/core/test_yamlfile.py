from core.yamlfile import field_name, load_located


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
