"""pystream against a bare pvapy monitor, on a simulated NTNDArray detector.

    python benchmarks/pva_display.py [--seconds 10] [--sizes 512,1024,2048]
                                     [--rates 0,100] [--rounds 1] [--soak 300]

For every (size, rate), one after the other (never two consumers at once: on
a 2-core machine they would split the CPU):

1. a fresh publisher process ``pystream sim pva --size NxN --rate R --dtype
   uint16 --no-counter`` (rate 0 = flood) and ``benchmarks/bare_monitor.py``
   against it: received fps, uid gaps, CPU %, peak RSS;
2. another fresh publisher (new PV name, same settings) and ``pystream --pv
   NAME --offscreen --stats-json FILE`` (``paced``: nothing records, so it
   receives about as fast as it paints), then the same with ``--pva-lossless``
   (``lossless``: every update taken off the wire, as while recording):
   received and displayed fps from two stats snapshots (after the warm-up
   and at the end of the window), frames the server did not send
   (``skipped_upstream``), latency p50/p95 (the viewer's last 1000 paints),
   CPU % and peak RSS.

A fresh publisher per consumer so each starts from the same state (no
backlog, uid from 1). CPU % is user+system time of the process over the
window / wall time (100 % = one core). Peak RSS is the kernel's ``ru_maxrss``
of the child (``os.wait4``), i.e. over the whole life of the process.
"Other load" is the machine's busy CPU in the window minus what the
benchmark's own processes used: other users of this shared machine.

``--rounds N`` repeats every (size, rate) N times, rounds outermost, and
adds a table of medians: recv / bare is taken within each round (the bare
monitor and pystream a minute apart), then the median of those ratios, so a
slow spell of this shared machine moves both sides of one ratio.

``--pin`` runs the publisher on CPU 1 and each consumer on CPU 0, so the
two never compete for a core (as when the IOC is another host): it measures
the consumer rather than how the scheduler splits two cores.

``--soak N`` adds one pystream phase of N seconds at 2048² (100 Hz unless
``--soak-rate``), with RSS sampled every 5 s; growth is the mean RSS of the
last minute minus the mean of the first minute after the warm-up.

Prints a markdown table and writes JSON to ``benchmarks/results/``.
Benchmarks here measure; they never pass or fail on time.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

import psutil

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
EPICS_ENV = {
    "EPICS_PVA_ADDR_LIST": "127.0.0.1",
    "EPICS_PVA_AUTO_ADDR_LIST": "NO",
    "EPICS_PVAS_INTF_ADDR_LIST": "127.0.0.1",
}
ENV = dict(os.environ, **EPICS_ENV)


PIN: dict[str, int] = {}  # role ("publisher", "consumer") -> the one CPU it runs on (--pin)


def _pinned(role: str):
    """A preexec_fn that keeps the child (and all its threads) on its CPU."""
    cpu = PIN.get(role)
    return None if cpu is None else (lambda: os.sched_setaffinity(0, {cpu}))


def _restore_sigint() -> None:
    # a background shell starts us with SIGINT ignored, and exec keeps an
    # ignored signal ignored in children: handle it here, so the publisher
    # starts with the default and SIGINT stops it cleanly
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as fh:
        return fh.read()


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ sampling

class Sampler(threading.Thread):
    """Samples CPU time and RSS of named processes, and the machine's CPU, every ``interval``."""

    def __init__(self, interval: float = 0.2):
        super().__init__(daemon=True)
        self.interval = interval
        self.procs: dict[str, psutil.Process] = {}
        self.series: dict[str, list[tuple]] = {}  # name -> [(t, cpu_s, rss_bytes)]
        self.system: list[tuple] = []  # (t, busy_s, total_s)
        self._halt = threading.Event()
        self._lock = threading.Lock()
        self.track("harness", os.getpid())

    def track(self, name: str, pid: int) -> None:
        with self._lock:
            self.procs[name] = psutil.Process(pid)
            self.series[name] = []

    def untrack(self, name: str) -> None:
        with self._lock:
            self.procs.pop(name, None)

    def sample(self) -> None:
        t = time.time()
        ct = psutil.cpu_times()
        idle = ct.idle + getattr(ct, "iowait", 0.0)
        total = sum(ct)
        with self._lock:
            self.system.append((t, total - idle, total))
            for name, proc in list(self.procs.items()):
                try:
                    with proc.oneshot():
                        c = proc.cpu_times()
                        rss = proc.memory_info().rss
                    main = 0.0
                    if name == "consumer":  # the GUI thread's share (its tid is the pid)
                        for th in proc.threads():
                            if th.id == proc.pid:
                                main = th.user_time + th.system_time
                    self.series[name].append((t, c.user + c.system, rss, main))
                except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
                    self.procs.pop(name, None)

    def run(self) -> None:
        while not self._halt.is_set():
            self.sample()
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()

    @staticmethod
    def _at(series, t):
        """The last sample at or before t (or the first one)."""
        best = series[0] if series else None
        for s in series:
            if s[0] <= t:
                best = s
            else:
                break
        return best

    def _cpu_share(self, name: str, t0: float, t1: float, column: int) -> float | None:
        """Percent of a core between t0 and t1 from a cumulative CPU-seconds column."""
        with self._lock:
            series = list(self.series.get(name, []))
        a, b = self._at(series, t0), self._at(series, t1)
        if a is None or b is None or b[0] <= a[0]:
            return None
        return 100.0 * (b[column] - a[column]) / (b[0] - a[0])

    def cpu_pct(self, name: str, t0: float, t1: float) -> float | None:
        return self._cpu_share(name, t0, t1, 1)  # the whole process

    def main_thread_pct(self, name: str, t0: float, t1: float) -> float | None:
        return self._cpu_share(name, t0, t1, 3)  # its main (GUI) thread

    def busy_cores(self, t0: float, t1: float) -> float | None:
        with self._lock:
            series = list(self.system)
        a, b = self._at(series, t0), self._at(series, t1)
        if a is None or b is None or b[0] <= a[0]:
            return None
        return (b[1] - a[1]) / (b[0] - a[0])  # cpu_times are summed over cores

    def peak_rss(self, name: str) -> float | None:
        series = self.series.get(name, [])
        return max(s[2] for s in series) / 2**20 if series else None


_RUSAGE: dict[int, Any] = {}


def try_reap(proc: subprocess.Popen) -> bool:
    """Reap ``proc`` if it has exited, keeping its rusage; True once it is gone.

    Never ``proc.poll()``: that reaps with waitpid and the rusage is lost.
    """
    if proc.pid in _RUSAGE:
        return True
    try:
        pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
    except ChildProcessError:
        _RUSAGE[proc.pid] = None
        return True
    if pid:
        proc.returncode = os.waitstatus_to_exitcode(status)
        _RUSAGE[proc.pid] = ru
        return True
    return False


def wait_reap(proc: subprocess.Popen, timeout: float) -> Any | None:
    """Wait for ``proc`` with os.wait4 to get its rusage (ru_maxrss); None on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if try_reap(proc):
            return _RUSAGE[proc.pid]
        time.sleep(0.05)
    return None


def stop_and_reap(proc: subprocess.Popen, sig=signal.SIGINT, timeout: float = 10.0,
                  kill: bool = True):
    if try_reap(proc):
        return _RUSAGE[proc.pid]
    try:
        proc.send_signal(sig)
    except ProcessLookupError:
        pass
    ru = wait_reap(proc, timeout)
    if ru is None and kill:
        proc.kill()
        ru = wait_reap(proc, 5.0)
    return ru


# ------------------------------------------------------------------ processes

class Publisher:
    def __init__(self, pv: str, size: int, rate: float, workdir: str, sampler: Sampler):
        self.pv, self.size, self.rate = pv, size, rate
        self.sampler = sampler
        self.logpath = os.path.join(workdir, pv.replace(":", "_") + ".sim.log")
        self.proc: subprocess.Popen | None = None
        self.t_ready = None
        self.published = None
        self.lifetime_fps = None

    def start(self, timeout: float = 90.0) -> None:
        cmd = ["pystream", "sim", "pva", "--pv", self.pv, "--size", f"{self.size}x{self.size}",
               "--rate", str(self.rate), "--dtype", "uint16", "--no-counter", "--log-level", "INFO"]
        self.logfh = open(self.logpath, "w")  # noqa: SIM115 (closed in stop())
        self.proc = subprocess.Popen(cmd, env=ENV, stdout=self.logfh, stderr=subprocess.STDOUT,
                                     preexec_fn=_pinned("publisher"))
        self.sampler.track("publisher", self.proc.pid)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(self.logpath) as fh:
                if "publishing" in fh.read():
                    self.t_ready = time.time()
                    return
            if try_reap(self.proc):
                break
            time.sleep(0.1)
        raise RuntimeError(f"publisher did not start: {_read(self.logpath)}")

    def stop(self) -> None:
        t_stop = time.time()
        # SIGINT lets it log its count, but a flooding publisher can lose the
        # KeyboardInterrupt inside pvapy's C++ calls: then SIGTERM
        if stop_and_reap(self.proc, signal.SIGINT, timeout=3.0, kill=False) is None:
            stop_and_reap(self.proc, signal.SIGTERM, timeout=10.0)
        self.sampler.untrack("publisher")
        self.logfh.close()
        text = _read(self.logpath)
        for line in text.splitlines():
            if "published" in line and "frames" in line:
                try:
                    self.published = int(line.split("published")[1].split()[0])
                except (ValueError, IndexError):
                    pass
        if self.published and self.t_ready:
            self.lifetime_fps = round(self.published / (t_stop - self.t_ready), 1)


def run_bare(pv: str, seconds: float, warmup: float, workdir: str, sampler: Sampler) -> dict[str, Any]:
    out = os.path.join(workdir, pv.replace(":", "_") + ".bare.json")
    cmd = [sys.executable, os.path.join(HERE, "bare_monitor.py"), pv, "--seconds", str(seconds),
           "--warmup", str(warmup), "--out", out]
    t_start = time.time()
    proc = subprocess.Popen(cmd, env=ENV, preexec_fn=_pinned("consumer"))
    sampler.track("consumer", proc.pid)
    ru = wait_reap(proc, seconds + warmup + 60)
    if ru is None:
        ru = stop_and_reap(proc, signal.SIGKILL)
    sampler.untrack("consumer")
    t_end = time.time()
    if not os.path.exists(out):
        return {"error": f"bare monitor exited {proc.returncode} without a result"}
    res = json.loads(_read(out))
    res["peak_rss_mb"] = round(ru.ru_maxrss / 1024, 1) if ru else sampler.peak_rss("consumer")
    # the monitor's window ends just before it exits; it began `seconds` earlier
    res["_window"] = (t_end - res["window_s"] - 0.3, t_end - 0.3)
    res["_t_start"] = t_start
    return res


def read_stats(path: str) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def run_pystream(pv: str, seconds: float, warmup: float, workdir: str, sampler: Sampler,
                 rss_every: float = 0.0, extra: tuple = ()) -> dict[str, Any]:
    stats = os.path.join(workdir, pv.replace(":", "_") + ".stats.json")
    cmd = ["pystream", "--pv", pv, "--offscreen", "--exit-after", str(seconds + warmup + 60),
           "--stats-json", stats, "--log-level", "WARNING"] + VIEWER_ARGS + list(extra)
    env = dict(ENV, HOME=workdir)  # keep the user's ~/.pystream settings out of it
    proc = subprocess.Popen(cmd, env=env, preexec_fn=_pinned("consumer"))
    sampler.track("consumer", proc.pid)
    snaps: list[tuple] = []  # (read time, snapshot), one per new uptime value
    rss: list[tuple] = []
    last_uptime = None
    first = None
    deadline = time.monotonic() + seconds + warmup + 90
    p = psutil.Process(proc.pid)
    next_rss = time.time()
    while time.monotonic() < deadline and not try_reap(proc):
        now = time.time()
        if rss_every and now >= next_rss:
            try:
                rss.append((now, p.memory_info().rss / 2**20))
            except psutil.Error:
                pass
            next_rss += rss_every
        s = read_stats(stats)
        if s and s.get("uptime_s") != last_uptime:
            last_uptime = s.get("uptime_s")
            snaps.append((now, s))
            if first is None and s.get("received", 0) > 0:
                first = (now, s)  # frames flow: the warm-up starts here
            if first and s["uptime_s"] >= first[1]["uptime_s"] + warmup + seconds:
                break
        time.sleep(0.1)
    ru = stop_and_reap(proc, signal.SIGTERM, timeout=15)
    sampler.untrack("consumer")
    if first is None:
        return {"error": f"pystream saw no frame (exit {proc.returncode})",
                "peak_rss_mb": round(ru.ru_maxrss / 1024, 1) if ru else None}
    start_up = first[1]["uptime_s"] + warmup
    a = next((x for x in snaps if x[1]["uptime_s"] >= start_up), snaps[-1])
    b = snaps[-1]
    sa, sb = a[1], b[1]
    span = sb["uptime_s"] - sa["uptime_s"]

    def d(key):
        return sb.get(key, 0) - sa.get(key, 0)

    res = {
        "window_s": round(span, 3),
        "received": d("received"),
        "recv_fps": round(d("received") / span, 2) if span > 0 else None,
        "displayed": d("displayed"),
        "display_fps": round(d("displayed") / span, 2) if span > 0 else None,
        "decoded": d("decoded"),
        "skipped": d("skipped"),
        "dropped_upstream": d("dropped_upstream"),
        "skipped_upstream": d("skipped_upstream"),
        "rejected": d("rejected"),
        "publisher_fps": (round((d("received") + d("dropped_upstream") + d("skipped_upstream")) / span, 2)
                          if span > 0 else None),
        "latency_ms_p50": sb.get("latency_ms_p50"),
        "latency_ms_p95": sb.get("latency_ms_p95"),
        "cpu_pct": sampler.cpu_pct("consumer", a[0], b[0]),
        "gui_thread_cpu_pct": sampler.main_thread_pct("consumer", a[0], b[0]),
        "peak_rss_mb": round(ru.ru_maxrss / 1024, 1) if ru else sampler.peak_rss("consumer"),
        "sampled_peak_rss_mb": sampler.peak_rss("consumer"),
        "final_stats": sb,
        "_window": (a[0], b[0]),
    }
    for key in ("cpu_pct", "gui_thread_cpu_pct"):
        if res[key] is not None:
            res[key] = round(res[key], 1)
    if rss:
        res["rss_series"] = [(round(t - rss[0][0], 1), round(m, 1)) for t, m in rss]
    return res


def window_context(sampler: Sampler, window) -> dict[str, Any]:
    t0, t1 = window
    busy = sampler.busy_cores(t0, t1)
    ours = sum((sampler.cpu_pct(n, t0, t1) or 0.0) for n in ("publisher", "consumer", "harness")) / 100
    return {
        "publisher_cpu_pct": round(sampler.cpu_pct("publisher", t0, t1) or 0.0, 1),
        "machine_busy_cores": round(busy, 2) if busy is not None else None,
        "other_load_cores": round(max(0.0, busy - ours), 2) if busy is not None else None,
    }


# ------------------------------------------------------------------ phases

QUIET = {"threshold": 0.5, "max_wait": 60.0}
VIEWER_ARGS: list[str] = []  # extra pystream options (--viewer-args)
# bare: benchmarks/bare_monitor.py; paced: pystream as it starts (nothing
# records: receives what the display shows); lossless: pystream --pva-lossless
# (every update taken off the wire, as while recording)
CONSUMERS: list[str] = ["bare", "paced", "lossless"]
VIEWERS = {"paced": (), "lossless": ("--pva-lossless",), "pystream": ()}


def wait_for_quiet(sampler: Sampler) -> dict[str, Any]:
    """Shared machine: wait (bounded) until others use less than ``threshold`` cores."""
    t_start = time.time()
    busy = None
    while True:
        t0 = time.time()
        sampler.sample()
        time.sleep(1.0)
        sampler.sample()
        busy = sampler.busy_cores(t0, time.time())
        if busy is None or busy < QUIET["threshold"] or time.time() - t_start > QUIET["max_wait"]:
            break
    waited = round(time.time() - t_start - 1.0, 1)
    if waited > 0.5:
        log(f"  waited {waited} s for a quieter machine (busy {busy:.2f} cores)")
    return {"waited_s": waited, "busy_before_cores": round(busy, 2) if busy is not None else None}


def run_phase(size: int, rate: float, seconds: float, warmup: float, workdir: str,
              sampler: Sampler, tag: str) -> dict[str, Any]:
    row: dict[str, Any] = {"size": size, "rate": rate, "loadavg_start": os.getloadavg()}
    for consumer in CONSUMERS:
        quiet = wait_for_quiet(sampler)
        pv = f"pystream:bench:{tag}:{size}:{int(rate)}:{consumer}"
        log(f"{size}² rate={rate or 'flood'}: {consumer} on {pv}")
        pub = Publisher(pv, size, rate, workdir, sampler)
        pub.start()
        try:
            if consumer == "bare":
                res = run_bare(pv, seconds, warmup, workdir, sampler)
            else:
                res = run_pystream(pv, seconds, warmup, workdir, sampler, extra=VIEWERS[consumer])
        finally:
            pub.stop()
        if "_window" in res:
            res.update(window_context(sampler, res.pop("_window")))
        res.pop("_t_start", None)
        res.update(quiet)
        res["publisher_lifetime_fps"] = pub.lifetime_fps
        res["publisher_published"] = pub.published
        row[consumer] = res
        log(f"  -> { {k: v for k, v in res.items() if k not in ('final_stats', 'rss_series')} }")
        time.sleep(1.0)
    row["loadavg_end"] = os.getloadavg()
    row["targets"] = check_targets(row)
    return row


def check_targets(row: dict[str, Any]) -> list[str]:
    """The issue's targets, as notes (benchmarks never fail)."""
    bare, ps = row.get("bare", {}), row.get("paced", row.get("pystream", {}))
    size, rate = row["size"], row["rate"]
    misses = []
    disp = ps.get("display_fps") or 0
    if rate == 0:
        need = 60 if size >= 2048 else 120
        if disp < need:
            misses.append(f"displayed {disp:.0f} < {need}")
        if bare.get("recv_fps") and (ps.get("recv_fps") or 0) < 0.9 * bare["recv_fps"]:
            misses.append(f"received {ps.get('recv_fps')} < 90% of bare {bare['recv_fps']}")
    else:
        if ps.get("dropped_upstream"):
            misses.append(f"dropped {ps['dropped_upstream']}")
        if disp < min(60, 0.95 * rate):
            misses.append(f"displayed {disp:.0f} < 60")
        if (ps.get("cpu_pct") or 0) > 100:
            misses.append(f"CPU {ps['cpu_pct']:.0f}% > 100%")
    if (ps.get("latency_ms_p50") or 0) > 20:
        misses.append(f"latency p50 {ps['latency_ms_p50']:.1f} > 20 ms")
    if size >= 2048 and (ps.get("peak_rss_mb") or 0) > 150:
        misses.append(f"peak RSS {ps['peak_rss_mb']:.0f} > 150 MB")
    return misses


def run_soak(seconds: float, rate: float, size: int, warmup: float, workdir: str,
             sampler: Sampler, tag: str) -> dict[str, Any]:
    pv = f"pystream:bench:{tag}:soak"
    quiet = wait_for_quiet(sampler)
    log(f"soak: {size}² rate={rate or 'flood'} for {seconds} s on {pv}")
    pub = Publisher(pv, size, rate, workdir, sampler)
    pub.start()
    la0 = os.getloadavg()
    try:
        res = run_pystream(pv, seconds, warmup, workdir, sampler, rss_every=5.0)
    finally:
        pub.stop()
    if "_window" in res:
        res.update(window_context(sampler, res.pop("_window")))
    series = res.get("rss_series", [])
    t_end = series[-1][0] if series else 0
    first = [m for t, m in series if warmup + 5 <= t < warmup + 65]
    last = [m for t, m in series if t >= t_end - 60]
    res.update(quiet)
    res.update(size=size, rate=rate, loadavg_start=la0, loadavg_end=os.getloadavg(),
               rss_first_minute_mb=round(sum(first) / len(first), 1) if first else None,
               rss_last_minute_mb=round(sum(last) / len(last), 1) if last else None)
    if first and last:
        res["rss_growth_mb"] = round(res["rss_last_minute_mb"] - res["rss_first_minute_mb"], 1)
    log(f"  -> soak growth {res.get('rss_growth_mb')} MB "
        f"({res.get('rss_first_minute_mb')} -> {res.get('rss_last_minute_mb')})")
    return res


# ------------------------------------------------------------------ report

def rate_label(rate: float) -> str:
    return "flood" if not rate else f"{rate:g} Hz"


def fmt(v, spec="{:.0f}"):
    return "—" if v is None else spec.format(v)


def markdown(rows: list[dict[str, Any]], soak: dict[str, Any] | None) -> str:
    """One line per consumer of each (size, rate); ratios against the bare
    monitor of the same row (the same minutes of this shared machine)."""
    out = [] if not rows else [
        ("| size | publisher | consumer | sent fps | recv fps | recv / bare | displayed fps "
         "| skipped upstream | dropped upstream | latency p50 / p95 ms | CPU % (GUI thread) "
         "| peak RSS MB | publisher CPU % | other load (cores) |"),
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        b = r.get("bare", {})
        for consumer in CONSUMERS:
            p = r.get(consumer)
            if p is None:
                continue
            ratio = (p.get("recv_fps") or 0) / b["recv_fps"] if b.get("recv_fps") else None
            bare = consumer == "bare"
            out.append(
                f"| {r['size']}² | {rate_label(r['rate'])} | {consumer} "
                f"| {fmt(p.get('publisher_fps'))} | {fmt(p.get('recv_fps'))} "
                f"| {'' if bare else fmt(ratio and 100 * ratio, '{:.0f} %')} "
                f"| {'' if bare else fmt(p.get('display_fps'))} "
                f"| {'' if bare else fmt(p.get('skipped_upstream'), '{}')} "
                f"| {fmt(p.get('uid_gaps') if bare else p.get('dropped_upstream'), '{}')} "
                f"| {'' if bare else fmt(p.get('latency_ms_p50'), '{:.1f}') + ' / ' + fmt(p.get('latency_ms_p95'), '{:.1f}')} "
                f"| {fmt(p.get('cpu_pct'))}{'' if bare else ' (' + fmt(p.get('gui_thread_cpu_pct')) + ')'} "
                f"| {fmt(p.get('peak_rss_mb'))} | {fmt(p.get('publisher_cpu_pct'))} "
                f"| {fmt(p.get('other_load_cores'), '{:.2f}')} |")
        if r.get("targets"):
            out.append(f"| | | targets missed (paced) | {'; '.join(r['targets'])} | | | | | | | | | | |")
    if soak:
        out += [
            "" if rows else None,
            (f"Soak: pystream on {soak['size']}² at {rate_label(soak['rate'])} "
            f"for {fmt(soak.get('window_s'))} s: received {fmt(soak.get('recv_fps'))} fps, "
            f"displayed {fmt(soak.get('display_fps'))} fps, dropped upstream "
            f"{fmt(soak.get('dropped_upstream'), '{}')}, latency p50/p95 "
            f"{fmt(soak.get('latency_ms_p50'), '{:.1f}')}/{fmt(soak.get('latency_ms_p95'), '{:.1f}')} ms, "
            f"CPU {fmt(soak.get('cpu_pct'))} %, RSS first minute {fmt(soak.get('rss_first_minute_mb'), '{:.1f}')} MB, "
            f"last minute {fmt(soak.get('rss_last_minute_mb'), '{:.1f}')} MB "
            f"(growth {fmt(soak.get('rss_growth_mb'), '{:+.1f}')} MB), peak {fmt(soak.get('peak_rss_mb'))} MB, "
            f"other load {fmt(soak.get('other_load_cores'), '{:.2f}')} cores."),
        ]
    return "\n".join(line for line in out if line is not None)


def _median(values: list) -> float | None:
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def medians(rows: list[dict[str, Any]]) -> str:
    """Per (size, rate) over the rounds: median of the per-round ratios and values."""
    groups: dict[tuple, list] = {}
    for r in rows:
        groups.setdefault((r["size"], r["rate"]), []).append(r)
    out = ["| size | publisher | rounds | bare recv fps | paced recv fps | recv / bare (min-max) "
           "| displayed fps | latency p50 ms | paced CPU % | paced peak RSS MB |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for (size, rate), group in groups.items():
        bare = [g.get("bare", {}) for g in group]
        ps = [g.get("paced", g.get("pystream", {})) for g in group]
        ratios = [p["recv_fps"] / b["recv_fps"] for b, p in zip(bare, ps)
                  if b.get("recv_fps") and p.get("recv_fps") is not None]
        col = lambda rows_, key: _median([x.get(key) for x in rows_])  # noqa: E731
        ratio = _median(ratios)
        spread = f" ({100 * min(ratios):.0f}-{100 * max(ratios):.0f})" if len(ratios) > 1 else ""
        out.append(
            f"| {size}² | {rate_label(rate)} | {len(group)} | {fmt(col(bare, 'recv_fps'))} "
            f"| {fmt(col(ps, 'recv_fps'))} | {fmt(ratio and 100 * ratio, '{:.0f} %')}{spread} "
            f"| {fmt(col(ps, 'display_fps'))} | {fmt(col(ps, 'latency_ms_p50'), '{:.1f}')} "
            f"| {fmt(col(ps, 'cpu_pct'))} | {fmt(col(ps, 'peak_rss_mb'))} |")
    return "\n".join(out)


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in _read("/proc/cpuinfo").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import numpy
    versions = {}
    for mod in ("numpy", "pyqtgraph", "PyQt5.QtCore"):
        try:
            m = __import__(mod, fromlist=["x"])
            versions[mod] = getattr(m, "__version__", None) or getattr(m, "PYQT_VERSION_STR", None)
        except ImportError:
            pass
    try:
        from importlib.metadata import version
        versions["pvapy"] = version("pvapy")
    except ImportError:
        pass
    return {"nproc": os.cpu_count(), "cpu_model": model, "python": platform.python_version(),
            "mem_gb": round(psutil.virtual_memory().total / 2**30, 1), "versions": versions,
            "numpy": numpy.__version__}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="pystream vs a bare pvapy monitor (see the module docstring)")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured window per consumer (default 10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="skipped after the first frame (default 2)")
    parser.add_argument("--sizes", default="512,1024,2048", help="square image sizes (default 512,1024,2048)")
    parser.add_argument("--rates", default="0,100", help="publisher rates in Hz, 0 = flood (default 0,100)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="repeat every (size, rate) this many times and add a table of medians (default 1)")
    parser.add_argument("--soak", type=float, default=0.0, help="also run a soak of N seconds (default: none)")
    parser.add_argument("--soak-rate", type=float, default=100.0, help="publisher rate of the soak (default 100)")
    parser.add_argument("--soak-size", type=int, default=2048, help="image size of the soak (default 2048)")
    parser.add_argument("--soak-only", action="store_true", help="skip the table phases")
    parser.add_argument("--quiet-threshold", type=float, default=0.5,
                        help="before each measurement wait until the machine's busy CPU is below this "
                             "many cores (default 0.5) ...")
    parser.add_argument("--quiet-wait", type=float, default=60.0,
                        help="... but at most this many seconds (default 60; 0 = don't wait)")
    parser.add_argument("--viewer-args", default="",
                        help="extra pystream options, e.g. \"--max-fps 60\" (default: none)")
    parser.add_argument("--consumers", default="bare,paced,lossless",
                        help="which consumers to run per phase: bare, paced (pystream as it starts), "
                             "lossless (pystream --pva-lossless) (default: bare,paced,lossless)")
    parser.add_argument("--pin", action="store_true",
                        help="publisher on CPU 1, consumers on CPU 0 (each has a core of its own)")
    parser.add_argument("--out", help="JSON result path (default: benchmarks/results/pva_display-<time>.json)")
    args = parser.parse_args(argv)

    _restore_sigint()
    QUIET.update(threshold=args.quiet_threshold, max_wait=args.quiet_wait)
    VIEWER_ARGS[:] = args.viewer_args.split()
    CONSUMERS[:] = [c for c in args.consumers.split(",") if c]
    if args.pin:
        PIN.update(publisher=1, consumer=0)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    rates = [float(r) for r in args.rates.split(",") if r]
    tag = f"{os.getpid()}"
    os.makedirs(RESULTS, exist_ok=True)
    out = args.out or os.path.join(RESULTS, f"pva_display-{time.strftime('%Y%m%d-%H%M%S')}.json")
    result: dict[str, Any] = {
        "command": " ".join([os.path.relpath(sys.argv[0]) if sys.argv[0] else "pva_display.py"] + sys.argv[1:]),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": machine(),
        "seconds": args.seconds, "warmup": args.warmup, "viewer_args": VIEWER_ARGS, "pin": PIN or None,
        "rows": [], "soak": None,
    }
    sampler = Sampler()
    sampler.start()
    with tempfile.TemporaryDirectory(prefix="pva_display-") as workdir:
        try:
            if not args.soak_only:
                for round_ in range(1, args.rounds + 1):
                    for size in sizes:
                        for rate in rates:
                            row = run_phase(size, rate, args.seconds, args.warmup, workdir, sampler,
                                            f"{tag}:{round_}")
                            row["round"] = round_
                            result["rows"].append(row)
                            _save(out, result)
            if args.soak:
                result["soak"] = run_soak(args.soak, args.soak_rate, args.soak_size, args.warmup,
                                          workdir, sampler, tag)
        finally:
            sampler.stop()
            result["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
            result["table"] = markdown(result["rows"], result["soak"])
            if args.rounds > 1 and result["rows"]:
                result["table"] += "\n\nMedians over the rounds:\n\n" + medians(result["rows"])
            _save(out, result)
    print(f"\n`{result['command']}`{' (pinned: publisher CPU 1, consumer CPU 0)' if PIN else ''} on {result['machine']['nproc']} x {result['machine']['cpu_model']}, "
          f"{result['started']} .. {result['finished']}\n")
    print(result["table"])
    print(f"\nJSON: {out}")
    return 0


def _save(path: str, result: dict[str, Any]) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(result, fh, indent=1, default=str)


if __name__ == "__main__":
    sys.exit(main())
