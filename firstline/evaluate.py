"""`firstline eval`: measure matching on a labelled data set, on the playbooks or on a throwaway base."""

from __future__ import annotations

import json
from pathlib import Path

import click

from core.errors import InputError
from engine.decision.pack import load_pack
from engine.wiring import open_index
from firstline.context import Context
from knowledge.background import load_background
from knowledge.base import Scoring
from knowledge.embedder import Embedder
from knowledge.evaluation import Labelled, evaluate, evaluate_base, load_labelled, report_lines
from knowledge.finetune import Recipe


@click.command("eval", short_help="Measure matching on a labelled data set.")
@click.argument("dataset", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--train", type=click.Path(dir_okay=False, path_type=Path),
              help="Build a throwaway base from this labelled set instead of using the playbooks.")
@click.option("--val", type=click.Path(dir_okay=False, path_type=Path),
              help="Calibrate the bands on this set (default: the same file's val split, else leave-one-out).")
@click.option("--test", type=click.Path(dir_okay=False, path_type=Path),
              help="Score on this set (default: the same file's test split).")
@click.option("--oos-label", default="oos", show_default=True, help="The label meaning out of scope.")
@click.option("--scoring", type=click.Choice([s.value for s in Scoring]), default=None,
              help="How playbooks are scored (default: the `scoring` setting).")
@click.option("--refusal-recall", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=None,
              help="Set the out-of-scope threshold to refuse this share of held-out out-of-scope queries "
                   "at 95%% confidence (default: the `refusal_recall` setting, else balanced).")
@click.option("--fine-tune-epochs", type=click.IntRange(0, 50), default=None,
              help="With --train: fine-tune the embedding model on train first (default: the setting).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of the table.")
@click.pass_obj
def eval_command(obj: Context, dataset: Path | None, train: Path | None, val: Path | None, test: Path | None,
                 oos_label: str, scoring: str | None, refusal_recall: float | None, fine_tune_epochs: int | None,
                 as_json: bool) -> None:
    """Measure matching on a labelled set.

    With DATASET only, score the playbook base on it (labels are playbook ids or categories). With --train,
    build a throwaway base from it, calibrate on --val and score --test. Files: CSV or TSV with `text` and
    `label` (or `category`) columns, CLINC150's JSON, or the NLU-Evaluation-Corpora JSON.
    """
    settings = obj.settings(scoring=scoring, refusal_recall=refusal_recall, fine_tune_epochs=fine_tune_epochs)
    if train is None:
        if dataset is None:
            raise click.UsageError("give a labelled DATASET, or --train (with --val and --test)")
        base, _ = open_index(settings, load_pack(settings)[1])
        result = evaluate_base(base, _split(dataset, "test", oos_label, required=True), oos_label)
    else:
        test = test or dataset or (train if train.suffix.lower() == ".json" else None)
        if test is None:
            raise click.UsageError("give --test (a CSV or TSV holds one split)")
        multi_split = train.suffix.lower() == ".json"
        validation = _split(val, "val", oos_label) if val else (
            load_labelled(train, "val", oos_label) if multi_split else None)
        embedder = Embedder(settings.model_path, settings.cache_dir, settings.embed_batch_size)
        result = evaluate(_split(train, "train", oos_label, required=True),
                          _split(test, "test", oos_label, required=True), embedder, validation, oos_label,
                          settings.answer_precision, progress=not as_json, scoring=Scoring(settings.scoring),
                          refusal_recall=settings.refusal_recall,
                          fine_tune=Recipe(epochs=settings.fine_tune_epochs) if settings.fine_tune_epochs else None,
                          background=load_background(settings.background_dir), act_precision=settings.act_precision)
    if as_json:
        click.echo(json.dumps(result.as_dict()))
    else:
        click.echo("\n".join(report_lines(result)))


def _split(path: Path, split: str, oos_label: str, required: bool = False) -> Labelled | None:
    found = load_labelled(path, split, oos_label)  # a CSV or TSV is one split, whatever is asked
    if found is None and required:
        raise InputError(f"{path} has no {split} split")
    return found
