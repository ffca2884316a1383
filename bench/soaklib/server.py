"""The server: `firstline serve` in a subprocess on a temporary data folder, the settings it is started with, its
log kept, its memory sampled from /proc, stopped as Ctrl+C would, its file read with `firstline sql`."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

from core.settings import PROJECT_ROOT

IDENTITY_SECRET = "soak-identity-secret"  # the host app's, to vouch for its users (bench/soaklib/chat.py)
MONITOR_INTERVAL_S = 5
SCRAPE_TIMEOUT_S = 2  # the faulty source's slow outage outlasts it (bench/soaklib/source.py)


def server_env(folder: Path, scrape_url: str) -> tuple[dict[str, str], dict[str, str]]:
    """The server's environment (this process's without any FIRSTLINE_* variable, then the soak's settings), and
    the soak's settings alone: FIRSTLINE_* name -> value."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIRSTLINE_")}
    settings = {
        "FIRSTLINE_DATA_DIR": str(folder), "FIRSTLINE_HOST": "127.0.0.1", "FIRSTLINE_PORT": "0",
        "FIRSTLINE_TELEMETRY_SOURCE": "scrape", "FIRSTLINE_SCRAPE_URL": scrape_url,
        "FIRSTLINE_SCRAPE_TIMEOUT_S": str(SCRAPE_TIMEOUT_S), "FIRSTLINE_MONITOR_INTERVAL_S": str(MONITOR_INTERVAL_S),
        # Every simulated user comes from 127.0.0.1: the per-address allowance would be theirs together.
        "FIRSTLINE_RATE_LIMIT_PER_ADDRESS": "1000000", "FIRSTLINE_IDENTITY_SECRET": IDENTITY_SECRET,
    }
    env.update(settings, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1", PYTHONFAULTHANDLER="1")
    return env, settings


def proc_field(pattern: str, text: str) -> str:
    """The first group of `pattern` in the text of a /proc file; a field missing is a kernel this script does not
    know, an error of the script."""
    found = re.search(pattern, text)
    if found is None:
        raise RuntimeError(f"no {pattern!r} in a /proc file")
    return found.group(1)


class Server:
    """`firstline serve` in a subprocess on a temporary data folder, with its log kept and its memory sampled."""

    LOG_PATTERNS: ClassVar[dict[str, str]] = {
        "tracebacks": "Traceback (most recent call last)", "unhandled errors": "unhandled error",
        "telemetry problems logged": "telemetry problem from", "scrapes failed": "cannot scrape",
        "alert refusals logged": "alert notification refused", "chat turns without telemetry": "chat telemetry:"}

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.folder, self.env = folder, env
        self.log_path = folder / "serve.log"
        self.process: subprocess.Popen | None = None
        self.url = ""
        self.samples: list[tuple[float, float, int, int, float]] = []  # t, rss MB, threads, fds, cpu s
        self.load: list[float] = []  # the machine's 1-minute load average at each sample
        self.libraries: dict[str, float] = {}  # shared libraries first mapped during the traffic: path -> t
        self._listening = threading.Event()
        self._sampling = threading.Event()

    def firstline(self, *args: str, extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "firstline", *args], cwd=PROJECT_ROOT,
                              env={**self.env, **(extra or {})}, capture_output=True, text=True, check=False,
                              timeout=900)

    def start(self) -> float:
        started = time.perf_counter()
        self.process = subprocess.Popen([sys.executable, "-m", "firstline", "serve"], cwd=PROJECT_ROOT, env=self.env,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        threading.Thread(target=self._read_log, name="soak-server-log", daemon=True).start()
        if not self._listening.wait(600) or not self.url:
            raise SystemExit(f"the server did not start; its log: {self.log_path}")
        return time.perf_counter() - started

    def _read_log(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        with self.log_path.open("w", encoding="utf-8") as log:
            for line in self.process.stdout:
                log.write(line)
                log.flush()
                found = re.search(r"serving .* on (http://[0-9.]+:\d+)/", line)
                if found and not self.url:
                    self.url = found.group(1)
                    self._listening.set()
        self._listening.set()  # it ended before listening

    def sample_memory(self, every_s: float, since: float) -> threading.Thread:
        def loop() -> None:
            known = self.mapped()
            while not self._sampling.is_set():
                reading = self.reading()
                if reading:
                    self.samples.append((time.monotonic() - since, *reading))
                    self.load.append(float(Path("/proc/loadavg").read_text().split()[0]))
                    for path in self.mapped() - known:
                        self.libraries[path] = round(time.monotonic() - since, 1)
                        known.add(path)
                self._sampling.wait(every_s)

        thread = threading.Thread(target=loop, name="soak-rss", daemon=True)
        thread.start()
        return thread

    def signal_state(self) -> dict[str, Any]:
        """Whether SIGINT is pending, and which of the server's threads block, ignore or catch it (/proc)."""
        assert self.process is not None
        bit = 1 << (signal.SIGINT - 1)

        def field(text: str, name: str) -> int:
            return int(proc_field(rf"{name}:\s+([0-9a-f]+)", text), 16)

        try:
            main = Path(f"/proc/{self.process.pid}/status").read_text()
            tasks = [Path(t, "status").read_text() for t in Path(f"/proc/{self.process.pid}/task").iterdir()]
        except OSError:
            return {}
        return {"pending_for_the_process": bool(field(main, "ShdPnd") & bit),
                "pending_for_a_thread": sum(bool(field(t, "SigPnd") & bit) for t in tasks),
                "caught": bool(field(main, "SigCgt") & bit), "ignored": bool(field(main, "SigIgn") & bit),
                "blocked_by_the_main_thread": bool(field(main, "SigBlk") & bit),
                "threads_blocking_it": sum(bool(field(t, "SigBlk") & bit) for t in tasks), "threads": len(tasks)}

    def mapped(self) -> set[str]:
        """The shared libraries the server has loaded."""
        assert self.process is not None
        try:
            maps = Path(f"/proc/{self.process.pid}/maps").read_text()
        except OSError:
            return set()
        return {line.split()[-1] for line in maps.splitlines() if ".so" in line.rsplit("/", 1)[-1]}

    def reading(self) -> tuple[float, int, int, float] | None:
        """The server's RSS (MB), threads, open files and CPU seconds, from /proc."""
        assert self.process is not None
        pid = self.process.pid
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            fds = len(os.listdir(f"/proc/{pid}/fd"))
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        rss_kb = int(proc_field(r"VmRSS:\s+(\d+)", status))
        threads = int(proc_field(r"Threads:\s+(\d+)", status))
        cpu_s = (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
        return rss_kb / 1024, threads, fds, cpu_s

    def stop(self, wait_s: float) -> dict[str, Any]:
        """Stop the server as Ctrl+C does. If it has not exited after `wait_s`, the signal state of its threads is
        read from /proc, and SIGABRT makes faulthandler (PYTHONFAULTHANDLER=1) write every thread's stack into the
        log; both are kept in the results."""
        self._sampling.set()
        assert self.process is not None
        log_at = self.log_path.stat().st_size
        before = self.reading()
        started = time.perf_counter()
        print(f"stopping the server (SIGINT to pid {self.process.pid})", file=sys.stderr, flush=True)
        self.process.send_signal(signal.SIGINT)
        answer: dict[str, Any] = {}
        try:
            code = self.process.wait(wait_s)
            how = "SIGINT"
        except subprocess.TimeoutExpired:
            answer["signals_while_stopping"] = self.signal_state()
            hung = self.reading()
            answer["cpu_s_while_stopping"] = round(hung[3] - before[3], 1) if hung and before else None
            answer["threads_while_stopping"] = hung[1] if hung else None
            self.process.send_signal(signal.SIGABRT)
            try:
                code = self.process.wait(30)
                how = f"SIGABRT after {wait_s:g} s"
            except subprocess.TimeoutExpired:
                self.process.kill()
                code = self.process.wait()
                how = f"killed after {wait_s:g} s"
        time.sleep(0.5)  # the log reader's last lines
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        after = text[log_at:]
        answer |= {"exit_code": code, "stopped_by": how, "stop_s": round(time.perf_counter() - started, 1),
                   "log": {name: text.count(pattern) for name, pattern in self.LOG_PATTERNS.items()},
                   "log_lines": text.count("\n"), "log_lines_after_sigint": after.count("\n")}
        if how != "SIGINT":
            dump = after[after.find("Fatal Python error"):] if "Fatal Python error" in after else after[-6000:]
            answer["stacks"] = dump[:20000]
        return answer

    def sql(self, query: str) -> list[list[Any]]:
        """Rows of a read-only query on the data folder (the server stopped), through `firstline sql`."""
        result = self.firstline("sql", query, "--format", "json", extra={"FIRSTLINE_ANALYST_ROW_CAP": "1000000",
                                                                         "FIRSTLINE_ANALYST_MAX_RESULT_MB": "512",
                                                                         "FIRSTLINE_ANALYST_TIME_LIMIT_S": "120"})
        if result.returncode != 0:
            raise RuntimeError(f"firstline sql {query!r}: {result.stderr.strip()}")
        answer = json.loads(result.stdout)
        if answer.get("truncated"):
            raise RuntimeError(f"firstline sql {query!r}: truncated ({answer.get('truncated_reason')})")
        return answer["rows"]

