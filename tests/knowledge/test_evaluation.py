import json

import pytest

from core.errors import InputError
from knowledge.base import Scoring
from knowledge.evaluation import evaluate, load_labelled, macro_f1
from tests.conftest import shared_file

ROWS = [
    ("I can't log in", "login"), ("login fails every time", "login"), ("password rejected", "login"),
    ("cannot sign in to my account", "login"), ("sign-in page errors", "login"),
    ("export to csv fails", "export"), ("the export file is empty", "export"), ("download my data broken", "export"),
    ("csv download gives an error", "export"), ("exporting jobs does nothing", "export"),
    ("what's the weather", "oos"), ("tell me a joke", "oos"), ("who won the match", "oos"),
]


def write_csv(path, rows, header=("text", "label"), delimiter=","):
    lines = [delimiter.join(header)] + [f'"{t}"{delimiter}{label}' for t, label in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_csv_tsv_and_category_header(tmp_path):
    assert load_labelled(write_csv(tmp_path / "a.csv", ROWS), "train", "oos").labels[0] == "login"
    tsv = write_csv(tmp_path / "a.tsv", ROWS, ("text", "category"), "\t")
    assert len(load_labelled(tsv, "test", "oos")) == len(ROWS)


def test_clinc_json_splits_include_out_of_scope(tmp_path):
    path = tmp_path / "data_full.json"
    path.write_text(json.dumps({"train": [["hi", "greet"]], "val": [], "test": [["yo", "greet"]],
                                "oos_train": [["moon?", "oos"]], "oos_val": [], "oos_test": []}), encoding="utf-8")
    train = load_labelled(path, "train", "outside")
    assert train.labels == ("greet", "outside")
    assert load_labelled(path, "val", "outside") is None


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("x.xml", "<a/>", "unknown format; accepted: CSV"),
        ("x.json", '{"foo": 1}', "unknown format; accepted: CSV"),
        ("x.json", "{broken", "not valid JSON"),
        ("x.csv", "words,label\nhi,a\n", "header must name `text`"),
        ("x.csv", "text,label\nhi,\n", "x.csv:2: a row needs both"),
    ],
)
def test_bad_files_get_clear_errors(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=message.replace("(", r"\(")):
        load_labelled(path, "train", "oos")


def test_evaluate_on_a_small_set(tmp_path, knowledge):
    train = load_labelled(write_csv(tmp_path / "train.csv", ROWS), "train", "oos")
    test_rows = [("log in impossible", "login"), ("the csv export fails", "export"), ("recipe for pancakes", "oos")]
    test = load_labelled(write_csv(tmp_path / "test.csv", test_rows), "test", "oos")
    result = evaluate(train, test, knowledge.embedder)
    assert result.classes == 3 and result.test_queries == 3
    assert result.in_scope_accuracy == 1.0
    assert 0 <= result.oos_recall <= 1 and result.latency_p50_ms > 0 and result.encode_per_s > 0
    assert abs(sum(b["share"] for b in result.bands.values()) - 1) < 1e-9


def test_macro_f1():
    assert macro_f1(["a", "a", "b"], ["a", "a", "b"]) == 1.0
    assert macro_f1(["a", "b"], ["b", "a"]) == 0.0


def test_braun_corpus_loads():
    path = shared_file("datasets", "braun2017", "WebApplicationsCorpus.json")
    train, test = load_labelled(path, "train", "oos"), load_labelled(path, "test", "oos")
    assert len(train) + len(test) == 89 and "oos" in train.labels
    assert load_labelled(path, "val", "oos") is None


def test_evaluate_with_the_head_and_a_validation_split(tmp_path, knowledge):
    train = load_labelled(write_csv(tmp_path / "train.csv", ROWS), "train", "oos")
    val_rows = [("signing in fails", "login"), ("export button broken", "export"), ("sing me a song", "oos")]
    val = load_labelled(write_csv(tmp_path / "val.csv", val_rows), "val", "oos")
    test = load_labelled(write_csv(tmp_path / "test.csv", [("login page errors out", "login")]), "test", "oos")
    result = evaluate(train, test, knowledge.embedder, val, scoring=Scoring.HEAD, refusal_recall=0.2)
    assert result.scoring == "head" and result.calibrated_on.startswith("validation split (3")
    assert result.calibration["rule"].startswith("balanced (out-of-scope recall 20% unreachable with 1")
