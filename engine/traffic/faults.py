"""The simulated infrastructure's bad days: when faults strike during a run, how often the monitor looks, the users
who write in about a fault, and the engineer who fixes by hand what self-healing did not. No I/O: `simulation.py`
injects the faults into the simulated infrastructure and ticks the real monitor."""

from __future__ import annotations

import random
from dataclasses import dataclass

from engine.healing.scenarios import SCENARIOS
from engine.infra.simulation import CLEARS
from engine.traffic.users import DAY_S, HOUR_S, poisson

# The label of what users write about while a fault lasts: errors after a bad deploy, slowness otherwise.
COMPLAINTS = {"bad_deploy": "bug_error"}


@dataclass(frozen=True)
class FaultPolicy:
    """Every number the fault schedule and the monitor's pace are drawn from; times in seconds."""

    per_day: float = 1 / 6  # mean faults a day (Poisson over the run), at uniformly drawn moments
    quiet_tick_s: float = 1800.0  # the monitor looks this often while all is well ...
    watch_s: float = 1800.0  # ... and at its configured interval from a fault's start until this long after it
    give_up_s: float = 4 * HOUR_S  # an engineer clears by hand a fault still there this long after it began
    complaints_per_user: float = 0.05  # users writing in about a fault: Poisson of mean users x this, ...
    complaint_within_s: float = HOUR_S  # ... once it is at half strength, within this long

    def assumptions(self, interval_s: float) -> list[str]:
        p = self
        kinds = ", ".join(k for k, spec in SCENARIOS.items() if spec.fault)
        return [
            f"faults: {p.per_day * 30:g} a month on average (Poisson), at uniform moments, each one of {kinds} "
            "drawn uniformly, ramping up as in `firstline heal --simulate`",
            f"monitor: ticks every {interval_s:g} s from a fault's start until {p.watch_s / 60:g} min after the last "
            f"fault cleared and while a fix is being verified, every {p.quiet_tick_s / 60:g} min otherwise (the "
            f"server ticks every {interval_s:g} s always: between faults there is nothing for it to find but "
            "noise); the desk's expiry runs at each request's deadline (the server's every minute)",
            f"engineers: a fault still there {p.give_up_s / HOUR_S:g} h after it began is fixed by hand (not "
            "counted as healed)",
            f"complaints: during a fault, users x {p.complaints_per_user:g} of them (Poisson) write in within "
            f"{p.complaint_within_s / 60:g} min of it reaching half strength, with a phrasing labelled "
            "performance (bug_error after a bad deploy), when the set has one",
        ]


@dataclass(frozen=True)
class Fault:
    """One fault of the schedule: when (epoch s), which scenario, `name@service`, its ramp (s), and the label of
    what users write about it."""

    at_s: float
    scenario: str
    fault: str
    ramp_s: float
    complaint: str

    @property
    def name(self) -> str:
        return self.fault.partition("@")[0]


def schedule(rng: random.Random, policy: FaultPolicy, start_s: float, days: int) -> list[Fault]:
    """The faults of a run of `days` days from `start_s`, in time order."""
    kinds = [name for name, spec in SCENARIOS.items() if spec.fault]
    faults = []
    for _ in range(poisson(rng, policy.per_day * days)):
        scenario = rng.choice(kinds)
        spec = SCENARIOS[scenario]
        at = start_s + rng.uniform(0, days * DAY_S)
        fault = spec.fault or ""
        faults.append(Fault(at, scenario, fault, rng.uniform(*spec.ramp_s), COMPLAINTS.get(scenario, "performance")))
    return sorted(faults, key=lambda f: f.at_s)


def manual_fix(fault_name: str) -> str:
    """The action an engineer runs by hand to clear `fault_name` (the first, by name, of those that clear it)."""
    return min(action for action, clears in CLEARS.items() if fault_name in clears)
