"""Miss Manners (Brant, Grose, Lofaso and Miranker, 1991), on Firstline's rule layer and on plain durable-rules.

Written from the benchmark's published description, not from any implementation: guests of a party, each
with a sex and some hobbies, are seated one after another around a table so that neighbours are of
opposite sex and share a hobby. A `context` fact walks the states start -> assign_seats -> make_path ->
check_done -> (assign_seats | print_results). Each new `seating` extends the previous one by one guest and
copies its `path` (who sits where); `chosen` remembers which guest was tried for which seating, so the
search never repeats itself. The work is dominated by the joins and by copying paths, which grows with the
square of the number of guests.

Both versions run the same seven rules. Firstline's is a rule file in its own language, with its own fact
vocabulary; arithmetic, which the language does not have, is a join with `next` facts (n -> n + 1). The plain
version is a durable-rules JSON ruleset with Python actions that compute the arithmetic, as a durable-rules
user would write it. Each run is checked: every guest seated once, neighbours of opposite sex sharing a hobby.

usage: python bench/manners.py [--guests 16 32 64 128] [--repeat 3]
Prints a readable table and a JSON object (last line).
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import MappingProxyType

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from durable import engine as durable

from engine.decision.ruleengine import Fact, RuleEngine
from rules.loader import load_rules
from rules.model import Vocabulary

HOBBIES = ("h1", "h2", "h3")

VOCABULARY = Vocabulary(
    facts=MappingProxyType({
        "guest": {"name": str, "sex": str, "hobby": str},
        "seating": {"seat_id": int, "pid": int, "path_done": bool, "seat1": int, "name1": str, "seat2": int,
                    "name2": str},
        "path": {"pid": int, "name": str, "seat": int},
        "chosen": {"seat_id": int, "name": str, "hobby": str},
        "context": {"state": str},
        "count": {"value": int},
        "last_seat": {"seat": int},
        "next": {"n": int, "succ": int},
    }),
    assertable=frozenset({"seating", "path", "chosen", "context", "count"}),
)

RULES = """
ruleset: manners
rules:
  - name: assign_first_seat
    salience: 50
    when:
      all:
        - context: {state: start}
        - guest: {}
        - count: {}
        - next: {n: {ref: count.value}}
    then:
      - assert: {seating: {seat_id: "{count.value}", pid: 0, path_done: true, seat1: 1, name1: "{guest.name}",
                           seat2: 1, name2: "{guest.name}"}}
      - assert: {path: {pid: "{count.value}", name: "{guest.name}", seat: 1}}
      - retract: count
      - assert: {count: {value: "{next.succ}"}}
      - retract: context
      - assert: {context: {state: assign_seats}}

  - name: find_seating
    salience: 40
    when:
      all:
        - context: {state: assign_seats}
        - count: {}
        - {as: id, next: {n: {ref: count.value}}}
        - seating: {path_done: true}
        - {as: seat, next: {n: {ref: seating.seat2}}}
        - {as: g1, guest: {name: {ref: seating.name2}}}
        - {as: g2, guest: {sex: {ne: {ref: g1.sex}}, hobby: {ref: g1.hobby}}}
        - none: {path: {pid: {ref: seating.seat_id}, name: {ref: g2.name}}}
        - none: {chosen: {seat_id: {ref: seating.seat_id}, name: {ref: g2.name}, hobby: {ref: g1.hobby}}}
    then:
      - assert: {seating: {seat_id: "{count.value}", pid: "{seating.seat_id}", path_done: false,
                           seat1: "{seating.seat2}", name1: "{seating.name2}", seat2: "{seat.succ}",
                           name2: "{g2.name}"}}
      - assert: {path: {pid: "{count.value}", name: "{g2.name}", seat: "{seat.succ}"}}
      - assert: {chosen: {seat_id: "{seating.seat_id}", name: "{g2.name}", hobby: "{g1.hobby}"}}
      - retract: count
      - assert: {count: {value: "{id.succ}"}}
      - retract: context
      - assert: {context: {state: make_path}}

  - name: make_path
    salience: 30
    when:
      all:
        - context: {state: make_path}
        - seating: {path_done: false}
        - path: {pid: {ref: seating.pid}}
        - none: {path: {pid: {ref: seating.seat_id}, name: {ref: path.name}}}
    then:
      - assert: {path: {pid: "{seating.seat_id}", name: "{path.name}", seat: "{path.seat}"}}

  - name: path_done
    salience: 20
    when:
      all:
        - context: {state: make_path}
        - seating: {path_done: false}
    then:
      - retract: seating
      - assert: {seating: {seat_id: "{seating.seat_id}", pid: "{seating.pid}", path_done: true,
                           seat1: "{seating.seat1}", name1: "{seating.name1}", seat2: "{seating.seat2}",
                           name2: "{seating.name2}"}}
      - retract: context
      - assert: {context: {state: check_done}}

  - name: are_we_done
    salience: 20
    when:
      all:
        - context: {state: check_done}
        - last_seat: {}
        - seating: {seat2: {ref: last_seat.seat}}
    then:
      - retract: context
      - assert: {context: {state: print_results}}

  - name: continue_seating
    salience: 10
    when:
      all:
        - context: {state: check_done}
    then:
      - retract: context
      - assert: {context: {state: assign_seats}}

  - name: all_done
    salience: 10
    when:
      all:
        - context: {state: print_results}
    then:
      - retract: context
      - assert: {context: {state: done}}
"""


def guests(count: int, seed: int) -> list[tuple[str, str, tuple[str, ...]]]:
    """Half men, half women, alternating; each with 2 or 3 of 3 hobbies, so any two share one (greedy succeeds)."""
    rng = random.Random(seed)
    return [(f"g{i}", "m" if i % 2 == 0 else "f", tuple(sorted(rng.sample(HOBBIES, rng.choice((2, 3))))))
            for i in range(1, count + 1)]


def facts(party: list[tuple[str, str, tuple[str, ...]]]) -> list[tuple[str, dict]]:
    found: list[tuple[str, dict]] = [("context", {"state": "start"}), ("count", {"value": 1}),
                                     ("last_seat", {"seat": len(party)})]
    found += [("guest", {"name": name, "sex": sex, "hobby": hobby}) for name, sex, hobbies in party
              for hobby in hobbies]
    found += [("next", {"n": n, "succ": n + 1}) for n in range(1, len(party) + 2)]
    return found


def check(party, seatings: list[dict], paths: list[dict]) -> int:
    """The number of guests seated by the final seating, after checking the rules of the party."""
    final = max((s for s in seatings if s["path_done"]), key=lambda s: s["seat2"])
    seated = sorted((p["seat"], p["name"]) for p in paths if p["pid"] == final["seat_id"])
    info = {name: (sex, set(hobbies)) for name, sex, hobbies in party}
    names = [name for _, name in seated]
    assert [seat for seat, _ in seated] == list(range(1, len(seated) + 1)), "seats are not 1..n"
    assert len(set(names)) == len(names), "a guest is seated twice"
    for left, right in itertools.pairwise(names):
        assert info[left][0] != info[right][0] and info[left][1] & info[right][1], f"{left} next to {right}"
    return len(names)


# -- Firstline's layer -------------------------------------------------------------------------------------

def ours(party, engine: RuleEngine) -> tuple[float, int, int]:
    started = time.perf_counter()
    run = engine.run([Fact(kind, fields) for kind, fields in facts(party)])
    seconds = time.perf_counter() - started
    assert not run.errors, run.errors
    live = [f for f in run.facts.values() if f.id not in run.retracted]
    seated = check(party, [dict(f.fields) for f in live if f.type == "seating"],
                   [dict(f.fields) for f in live if f.type == "path"])
    return seconds, seated, len(run.firings)


# -- plain durable-rules -----------------------------------------------------------------------------------

def _m(kind: str, *tests: dict) -> dict:
    return {"$and": [{"t": kind}, *tests]}


PLAIN = {
    "assign_first_seat": {"all": [{"ctx": _m("context", {"state": "start"})}, {"g": _m("guest")},
                                  {"cnt": _m("count")}], "pri": 950},
    "find_seating": {"all": [
        {"ctx": _m("context", {"state": "assign_seats"})},
        {"cnt": _m("count")},
        {"seat": _m("seating", {"path_done": True})},
        {"g1": _m("guest", {"name": {"seat": "name2"}})},
        {"g2": _m("guest", {"$neq": {"sex": {"g1": "sex"}}}, {"hobby": {"g1": "hobby"}})},
        {"p$not": _m("path", {"pid": {"seat": "seat_id"}}, {"name": {"g2": "name"}})},
        {"c$not": _m("chosen", {"seat_id": {"seat": "seat_id"}}, {"name": {"g2": "name"}},
                     {"hobby": {"g1": "hobby"}})},
    ], "pri": 960},
    "make_path": {"all": [{"ctx": _m("context", {"state": "make_path"})},
                          {"seat": _m("seating", {"path_done": False})},
                          {"p": _m("path", {"pid": {"seat": "pid"}})},
                          {"n$not": _m("path", {"pid": {"seat": "seat_id"}}, {"name": {"p": "name"}})}], "pri": 970},
    "path_done": {"all": [{"ctx": _m("context", {"state": "make_path"})},
                          {"seat": _m("seating", {"path_done": False})}], "pri": 980},
    "are_we_done": {"all": [{"ctx": _m("context", {"state": "check_done"})}, {"l": _m("last_seat")},
                            {"seat": _m("seating", {"seat2": {"l": "seat"}})}], "pri": 980},
    "continue_seating": {"all": [{"ctx": _m("context", {"state": "check_done"})}], "pri": 990},
    "all_done": {"all": [{"ctx": _m("context", {"state": "print_results"})}], "pri": 990},
}


class PlainManners:
    """Miss Manners in durable-rules alone: JSON rules, Python actions, one session."""

    def __init__(self) -> None:
        self.asserted: list[dict] = []
        self.retracted: set[str] = set()
        self.firings = 0
        self._ids = itertools.count(1)
        plain = self

        class Host(durable.Host):
            def _run(self) -> None:  # no timer threads, as in Firstline's host
                return

            def get_action(self, name):
                return getattr(plain, name)

        self.host = Host()
        self.names = itertools.count(1)

    def new(self, c, kind: str, **fields) -> None:
        fact = {"t": kind, **fields, "id": f"p{next(self._ids)}", "sid": c.s.sid}
        self.asserted.append(fact)
        c.assert_fact(fact)

    def drop(self, c, content) -> None:
        self.retracted.add(content._d["id"])
        c.retract_fact(dict(content._d))

    # Retractions first, then assertions: an assertion can end an action early (durable-rules #350). No alias
    # may be `s` or `m`: the closure has attributes of those names.
    def assign_first_seat(self, c) -> None:
        self.firings += 1
        count, name = c.cnt.value, c.g.name
        self.drop(c, c.cnt)
        self.drop(c, c.ctx)
        self.new(c, "seating", seat_id=count, pid=0, path_done=True, seat1=1, name1=name, seat2=1, name2=name)
        self.new(c, "path", pid=count, name=name, seat=1)
        self.new(c, "count", value=count + 1)
        self.new(c, "context", state="assign_seats")

    def find_seating(self, c) -> None:
        self.firings += 1
        count, s, g1, g2 = c.cnt.value, dict(c.seat._d), dict(c.g1._d), dict(c.g2._d)
        self.drop(c, c.cnt)
        self.drop(c, c.ctx)
        self.new(c, "seating", seat_id=count, pid=s["seat_id"], path_done=False, seat1=s["seat2"],
                 name1=s["name2"], seat2=s["seat2"] + 1, name2=g2["name"])
        self.new(c, "path", pid=count, name=g2["name"], seat=s["seat2"] + 1)
        self.new(c, "chosen", seat_id=s["seat_id"], name=g2["name"], hobby=g1["hobby"])
        self.new(c, "count", value=count + 1)
        self.new(c, "context", state="make_path")

    def make_path(self, c) -> None:
        self.firings += 1
        self.new(c, "path", pid=c.seat.seat_id, name=c.p.name, seat=c.p.seat)

    def path_done(self, c) -> None:
        self.firings += 1
        s = dict(c.seat._d)
        self.drop(c, c.seat)
        self.drop(c, c.ctx)
        self.new(c, "seating", **{k: v for k, v in s.items() if k not in ("t", "id", "sid", "path_done")},
                 path_done=True)
        self.new(c, "context", state="check_done")

    def are_we_done(self, c) -> None:
        self.firings += 1
        self.drop(c, c.ctx)
        self.new(c, "context", state="print_results")

    def continue_seating(self, c) -> None:
        self.firings += 1
        self.drop(c, c.ctx)
        self.new(c, "context", state="assign_seats")

    def all_done(self, c) -> None:
        self.firings += 1
        self.drop(c, c.ctx)
        self.new(c, "context", state="done")

    def run(self, party) -> tuple[float, int, int]:
        name = f"manners_{next(self.names)}"
        self.host.register_rulesets({name: {rule: {**body, "run": rule} for rule, body in PLAIN.items()}})
        self.asserted, self.retracted, self.firings = [], set(), 0
        batch = [{"t": kind, **fields, "id": f"i{i}", "sid": "party"} for i, (kind, fields) in
                 enumerate(facts(party)) if kind != "next"]  # plain Python does the arithmetic
        started = time.perf_counter()
        self.host.assert_facts(name, batch)
        seconds = time.perf_counter() - started
        live = [f for f in self.asserted if f["id"] not in self.retracted]
        seated = check(party, [f for f in live if f["t"] == "seating"], [f for f in live if f["t"] == "path"])
        self.host.delete_state(name, "party")
        return seconds, seated, self.firings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--guests", type=int, nargs="+", default=[16, 32, 64, 128])
    parser.add_argument("--repeat", type=int, default=3, help="runs per size; the median is reported")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "manners.yaml"
        path.write_text(RULES, encoding="utf-8")
        engine = RuleEngine(load_rules([path], vocabulary=VOCABULARY))
    plain = PlainManners()
    rows = []
    for count in args.guests:
        party = guests(count, seed=count)
        ours_runs = [ours(party, engine) for _ in range(args.repeat)]
        plain_runs = [plain.run(party) for _ in range(args.repeat)]
        rows.append({
            "guests": count,
            "firstline_s": round(statistics.median(r[0] for r in ours_runs), 4),
            "durable_rules_s": round(statistics.median(r[0] for r in plain_runs), 4),
            "seated": ours_runs[0][1], "seated_plain": plain_runs[0][1],
            "firings": ours_runs[0][2], "firings_plain": plain_runs[0][2],
        })
        row = rows[-1]
        row["ratio"] = round(row["firstline_s"] / row["durable_rules_s"], 2)
        print(f"{count:>4} guests: firstline {row['firstline_s']:.4f} s, durable-rules {row['durable_rules_s']:.4f} s "
              f"(x{row['ratio']}), {row['firings']} / {row['firings_plain']} firings", file=sys.stderr)
    print(f"{'guests':>6} {'Firstline s':>12} {'durable-rules s':>16} {'ratio':>6} {'firings':>8} {'seated':>7}")
    for row in rows:
        print(f"{row['guests']:>6} {row['firstline_s']:>12} {row['durable_rules_s']:>16} {row['ratio']:>6} "
              f"{row['firings']:>8} {row['seated']:>7}")
    print(json.dumps({"benchmark": "miss_manners", "repeat": args.repeat, "rows": rows}))


if __name__ == "__main__":
    main()
