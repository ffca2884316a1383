"""`firstline heal`: the monitor on live telemetry, or a fault replayed in simulated time."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from core.logs import configure_logging
from core.settings import Settings
from core.stopping import terminate_as_interrupt
from engine.decision.pack import load_pack, load_rulebase
from engine.decision.ruleengine import RuleEngine
from engine.healing.healer import Event
from engine.healing.scenarios import SCENARIOS, ScenarioReport, run_scenario
from engine.wiring import open_healing
from firstline.context import Context


@click.command(short_help="Detect and fix problems on the infrastructure, live or in a simulated scenario.")
@click.option("--simulate", "scenario", type=click.Choice(list(SCENARIOS)), default=None,
              help="Run a simulated scenario in simulated time instead of watching the configured telemetry.")
@click.option("--minutes", type=click.FloatRange(1, 24 * 60), default=60.0, show_default=True,
              help="Simulated minutes to run the scenario for.")
@click.option("--seed", type=int, default=None, help="Seed of the scenario (default: the simulation_seed setting).")
@click.option("--detection", type=click.Choice(["predictive", "threshold"]), default="predictive",
              show_default=True, help="threshold: act only on confirmed limit breaches (the baseline).")
@click.option("--audit", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="With --simulate: keep the run's ledger (samples, signals, actions) in this DuckDB file.")
@click.option("--once", is_flag=True, help="Live: run one monitor pass and exit.")
@click.option("--json", "as_json", is_flag=True, help="With --simulate: print one JSON object.")
@click.pass_obj
def heal(obj: Context, scenario: str | None, minutes: float, seed: int | None, detection: str, audit: Path | None,
         once: bool, as_json: bool) -> None:
    """Watch telemetry, predict trouble and fix it safely; or replay a fault in simulated time.

    With --simulate SCENARIO, a 60-minute scenario runs in seconds and prints the timeline (detected, acted,
    verified, recovered) and the measures: lead time before users would have been hit, time to recovery, and
    whether it was prevented. Without it, the monitor runs on the configured telemetry until Ctrl+C (it also
    runs inside `firstline serve`; both open the same DuckDB file, so run one of them at a time).
    """
    settings = obj.settings()
    if scenario is None:
        if as_json or audit:
            raise click.UsageError("--json and --audit go with --simulate SCENARIO")
        _heal_live(settings, once)
        return
    if audit is not None and audit.exists():
        raise click.UsageError(f"--audit {audit}: the file exists; name a new one")
    topology, _ = load_pack(settings)
    rules = RuleEngine(load_rulebase(settings, topology))
    report = run_scenario(scenario, minutes, settings.simulation_seed if seed is None else seed, settings, topology,
                          rules, predictive=detection == "predictive", audit=audit)
    click.echo(json.dumps(report.contract()) if as_json else _timeline(report))


def _heal_live(settings: Settings, once: bool) -> None:
    def show(event: Event) -> None:
        click.echo(f"{time.strftime('%H:%M:%S', time.localtime(event.at))}  {event.kind:<20} {event.summary}")

    # Its timeline above already shows each event the healer logs at INFO: the log adds only what needs a look.
    configure_logging("warning" if settings.log_level in ("debug", "info") else settings.log_level)
    with terminate_as_interrupt():  # SIGTERM as Ctrl+C, through the whole clean-up below
        healing, store = open_healing(settings, on_event=show)
        try:
            if once:
                report = healing.monitor.tick()
                state = report.error or f"{len(report.signals)} signals, {len(report.attempts)} actions"
                click.echo(f"one pass over {healing.source.name} telemetry: {state}")
                return
            click.echo(f"watching {healing.source.name} telemetry every {settings.monitor_interval_s:g} s "
                       f"(Ctrl+C to stop)")
            healing.monitor.start()
            while healing.monitor.running:
                time.sleep(0.5)
        except KeyboardInterrupt:
            click.echo("stopping: finishing the current pass and closing the store", err=True)
        finally:
            healing.close()
            store.close()


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    whole = round(seconds)
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def _span(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, rest = divmod(round(abs(seconds)), 60)
    text = f"{minutes} min {rest} s" if minutes else f"{rest} s"
    return f"-{text}" if seconds < 0 else text


def _timeline(report: ScenarioReport) -> str:
    lines = [f"scenario {report.scenario} (seed {report.seed}, {report.minutes:g} simulated minutes, "
             f"{report.detection} detection)"]
    lines += [f"  {_clock(e['at_s'])}  {e['kind']:<20} {e['summary']}" for e in report.timeline]
    if not report.timeline:
        lines.append("  nothing happened: no signal, no action")
    lines.append("measures")
    if report.fault is None:
        lines.append(f"  false actions      {report.false_actions} (no fault: any action would be one)")
    else:
        hit = f"at {_clock(report.would_hit_at_s)}" if report.would_hit_at_s is not None else "not in this run"
        lines += [
            f"  lead time          {_span(report.lead_time_s)} before users would have been hit "
            f"({hit} without Firstline)",
            f"  time to recovery   {_span(report.time_to_recovery_s)} from the start of the fault",
            f"  prevented          {'yes' if report.prevented else 'no'} (users affected for "
            f"{_span(report.user_impact_s)})",
        ]
    for action in report.actions:
        lines.append(f"  action             {action['name']} on {action['target']}: {action['status']}")
    return "\n".join(lines)
