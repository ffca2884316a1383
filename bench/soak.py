"""A soak: one real server (`firstline serve`, a subprocess) under mixed traffic for ten minutes, then the checks.

What runs at once, each worker with its own seeded random generator:

- chat users (`--chat-workers`, 4): many users, each a browser with its own session cookie (some vouched for by the
  host app through `POST /api/v1/identity`, coming back later as the same user) or an integration with a user
  token; a conversation through the JSON API (`docs/conversation-api.md`) with an opening message of
  `data/simulation/messages.tsv`, then a reply to each question asked, by its stage, from
  `data/eval/independent/replies_dev.tsv` or a button's value; some turns as server-sent events, some through the
  one-shot `POST /api/v1/messages`; ratings, reloads, conversation lists, a few bad bodies, a few impatient users
  who meet the rate limit, a few who delete their history;
- Alertmanager (one worker): version-4 webhooks with an operator's token, firing, resolved, repeated, with an empty
  or missing fingerprint, one of 1,200 alerts, a small storm (5 x 120 alerts over 5 services in 10 s, one with
  `truncatedAlerts`), and bad ones: malformed JSON, a schema error, a lone surrogate, the wrong Content-Type, no
  token, the wrong role, a body over 10 MiB;
- telemetry: the server's monitor scrapes a Prometheus source this script serves on loopback every 5 s, its text
  with faults mixed in (malformed lines, +Inf, NaN, a BOM, duplicate series, out-of-range values, a `_total`
  counter, a histogram under a gauge's name, a bad version, unescaped quotes, an exemplar, a long line, now and then
  a 9 MB body) and a fault episode every 100 s (a metric ramps past its limit and back), with a 15 s outage of the
  source every 120 s (HTML, 500, empty, slower than the timeout, cut short); a Prometheus-like worker reads the
  server's `/metrics` every 5 s with the operator's token (once per outage too: that read is counted apart);
- a curator (one worker, curator token): learned rules (list, read, diff, now and then approve or reject one),
  playbooks, the unmatched queue, decision traces.

Then, with the traffic stopped: every conversation is read back through the API as its user, the server is stopped
with SIGINT (as Ctrl+C) and the DuckDB file is read with `firstline sql`. Checks: zero 5xx (but for the /metrics
read during an outage of its source, which is to answer 503: counted apart) and no dropped connection; the server's
RSS at the end within `start x 1.25 + 50 MB` (start = the first sample after the warm-up, the first tenth of the
run, at most 60 s); no lost accepted user message (every 2xx turn's text is in its conversation, through the API and
in the file; deleted users' are gone); no lost accepted alert (every alert of a 2xx notification is in `alerts`, the
notifications and their summarised counts in `alert_notifications`); every refused notification in `dead_letters`
(by the id its refusal carried); the receiver answering each kind as documented; no traceback in the server's log;
the server exiting within `--stop-wait` of SIGINT (else its threads' signal state and stacks are kept in the
results).

Why that memory bound: after the warm-up the server holds the model, torch, the faiss index and the first turns'
buffers (about 1 GB here). What may still grow without leaking is DuckDB's buffer pool (the file reaches about
30 MB in ten minutes), the learned examples joining the index, and glibc's per-thread arenas (some 50 threads):
tens of MB. The bound allows about 300 MB over a 1 GB start: a leak of 200 KB per chat turn (about 1,500 turns in
ten minutes) crosses it; the slope of a line fitted to the second half's samples shows a smaller one.

This file is the command; its parts are in `bench/soaklib/`: `client.py` (the HTTP client and the record of every
request), `ledger.py` (what the server accepted), `source.py` (the telemetry source with faults), `server.py` (the
server process and its settings), `context.py` (what the workers share), `chat.py`, `alerts.py`, `scrape.py` and
`curator.py` (the traffic), `checks.py` (read-back, the file, memory, the checks) and `report.py` (the table).

usage: .venv/bin/python bench/soak.py [--duration 600] [--seed 7] [--chat-workers 4] [--think 1.0]
                                      [--index-from var] [--stop-wait 60] [--json PATH] [--keep]
Prints a readable table and a JSON object (last line); exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.soaklib.alerts import alert_worker
from bench.soaklib.chat import chat_worker, load_texts
from bench.soaklib.checks import check_database, checks, memory_figures, read_back
from bench.soaklib.client import Recorder
from bench.soaklib.context import Context, guarded
from bench.soaklib.curator import curator_worker
from bench.soaklib.ledger import Ledger
from bench.soaklib.report import report
from bench.soaklib.scrape import scrape_worker
from bench.soaklib.server import Server, server_env
from bench.soaklib.source import FaultySource
from core.settings import PROJECT_ROOT

TOKENS = (("operator", "prometheus", "operator"), ("curator", "cora", "curator"), ("bot", "helpdesk-bot", "user"))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of traffic")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--chat-workers", type=int, default=4, help="threads sending chat users' turns")
    parser.add_argument("--think", type=float, default=1.0, help="multiplies the users' pauses (0.3-2.5 s a turn)")
    parser.add_argument("--index-from", type=Path, default=PROJECT_ROOT / "var",
                        help="a data folder whose index/ and cache/ are copied in (else the index is built)")
    parser.add_argument("--stop-wait", type=float, default=60.0,
                        help="seconds the server has to exit after SIGINT before its stacks are dumped (SIGABRT)")
    parser.add_argument("--json", type=Path, default=None, help="also write the JSON object to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data folder (its path is printed)")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        # Started in the background by a shell without job control (`... &`), which ignores SIGINT; a child inherits
        # that, and a server ignoring SIGINT cannot be stopped as Ctrl+C would. A handler here is reset at exec.
        signal.signal(signal.SIGINT, signal.default_int_handler)
    folder = Path(tempfile.mkdtemp(prefix="firstline-soak-"))
    source = FaultySource(args.seed).start()
    env, settings = server_env(folder, source.url)
    server = Server(folder, env)
    shown = {k: v for k, v in settings.items() if k not in ("FIRSTLINE_DATA_DIR", "FIRSTLINE_SCRAPE_URL")}
    results: dict[str, Any] = {"duration_s": args.duration, "seed": args.seed, "chat_workers": args.chat_workers,
                               "think": args.think, "settings": shown}
    try:
        results["index"] = build_index(server, args.index_from, folder)
        tokens = create_tokens(server)
        results["start_s"] = round(server.start(), 1)
        assert server.process is not None  # started
        print(f"server on {server.url} (pid {server.process.pid}), data folder {folder}", file=sys.stderr)
        ctx = run_traffic(args, server, source, tokens)
        results |= afterwards(args, server, source, ctx)
    finally:
        if server.process is not None and server.process.poll() is None:
            server.process.kill()
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    report(results)
    if args.keep:
        print(f"data folder kept: {folder}")
    text = json.dumps(results)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n", encoding="utf-8")
    print(text)
    sys.exit(0 if results["passed"] else 1)


def build_index(server: Server, index_from: Path, folder: Path) -> dict[str, Any]:
    """The index and embedding cache copied from `index_from` when it has them, then `firstline index build`
    (which finds them fresh); the figures, build_s in seconds."""
    setup = time.perf_counter()
    copied = []
    for part in ("index", "cache"):
        if (index_from / part).is_dir():
            shutil.copytree(index_from / part, folder / part)
            copied.append(part)
    built = server.firstline("index", "build")
    if built.returncode != 0:
        raise SystemExit(f"firstline index build failed: {built.stderr[-2000:]}")
    return {"copied_from": str(index_from) if copied else None, "parts": copied,
            "build_s": round(time.perf_counter() - setup, 1), "rebuilt": "index built" in built.stdout}


def create_tokens(server: Server) -> dict[str, str]:
    """A token for the operator (Prometheus, Alertmanager), the curator and an integration: name -> token."""
    tokens = {}
    for name, user, role in TOKENS:
        made = server.firstline("token", "create", "--user", user, "--role", role)
        if made.returncode != 0:
            raise SystemExit(f"firstline token create: {made.stderr}")
        tokens[name] = made.stdout.split()[0]
    return tokens


def run_traffic(args: argparse.Namespace, server: Server, source: FaultySource, tokens: dict[str, str]) -> Context:
    """Every worker, each seeded, until `--duration` has passed, the server's memory sampled every 2 s meanwhile;
    the context they shared (its recorder and ledger hold what happened)."""
    recorder, ledger = Recorder(), Ledger()
    openings, replies = load_texts()
    traffic_started = time.monotonic()
    ctx = Context(server.url, args.seed, traffic_started + args.duration, traffic_started, args.duration,
                  args.think, recorder, ledger, source, tokens, openings, replies)
    recorder.started = traffic_started
    server.sample_memory(2.0, traffic_started)
    with ThreadPoolExecutor(max_workers=args.chat_workers + 3, thread_name_prefix="soak") as pool:
        futures = [pool.submit(guarded, chat_worker, ctx, i) for i in range(args.chat_workers)]
        futures += [pool.submit(guarded, work, ctx) for work in (alert_worker, scrape_worker, curator_worker)]
        try:
            for future in futures:
                future.result()
        except KeyboardInterrupt:
            ctx.stop.set()
            raise
    return ctx


def afterwards(args: argparse.Namespace, server: Server, source: FaultySource, ctx: Context) -> dict[str, Any]:
    """With the traffic stopped: the figures (memory, read-back, requests, the stop, the file) and the checks, under
    the published JSON keys, in their published order."""
    traffic_s = time.monotonic() - ctx.started
    last = server.reading()
    if last:
        server.samples.append((time.monotonic() - ctx.started, *last))
    recorder, ledger = ctx.recorder, ctx.ledger
    warmup_s = max(10.0, min(60.0, args.duration / 10))
    found: dict[str, Any] = {"traffic_s": round(traffic_s, 1)}
    found["memory"] = memory_figures(server.samples, warmup_s, args.duration)
    found["libraries_loaded_during_traffic"] = server.libraries
    found["machine"] = {"cores": os.cpu_count(), "load_1min_median": statistics.median(server.load),
                        "load_1min_max": max(server.load)}
    found["read_back"] = read_back(ctx)
    found["requests"] = recorder.summary()
    found["server"] = server.stop(args.stop_wait)
    source.stop()
    found["database"] = check_database(server, ledger)
    found["chat"] = dict(sorted(ledger.counts.items()))
    found["alerts"] = {kind: dict(sorted(Counter(str(s) for k, s in ledger.alert_posts if k == kind).items()))
                       for kind in sorted({k for k, _ in ledger.alert_posts})}
    found["scrape_source"] = dict(sorted(source.served.items()))
    found["metrics_during_outages"] = ledger.outage_probes
    found["transport_errors"] = recorder.transport_errors[:20]
    found["bench_errors"] = ledger.bench_errors
    found["checks"] = checks(found, ledger)
    found["passed"] = all(c["passed"] for c in found["checks"] if c["passed"] is not None)
    return found


if __name__ == "__main__":
    main()
