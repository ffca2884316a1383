"""`firstline index`: build the faiss index of playbook examples and calibrate its bands."""

from __future__ import annotations

import click

from engine.decision.pack import load_pack
from engine.wiring import open_index
from firstline.context import Context
from knowledge.calibration import CalibrationReport


@click.group()
def index() -> None:
    """Build or inspect the playbook index."""


@index.command("build")
@click.option("--force", is_flag=True, help="Rebuild even if the stored index is up to date.")
@click.pass_obj
def index_build(obj: Context, force: bool) -> None:
    """Build the faiss index of playbook examples if it is missing or stale, and calibrate the bands."""
    settings = obj.settings()
    _, playbooks = load_pack(settings)
    _, report = open_index(settings, playbooks, force=force, progress=True)
    state = "built" if report.built else "up to date"
    click.echo(f"index {state}: {report.examples} examples of {report.playbooks} playbooks, "
               f"{report.index_kind}, {report.seconds:.1f} s, in {settings.index_dir}")
    click.echo(f"  model {report.model}, scoring {report.scoring}")
    for line in CalibrationReport(report.calibration).lines():
        click.echo(f"  {line}")
