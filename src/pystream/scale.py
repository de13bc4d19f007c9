"""``pystream scale``: the pipeline on many processes through pvapy's streaming framework.

One command starts ``pvapy-hpc-consumer`` processes running
``pystream.hpc.PipelineProcessor`` (each one takes every Nth update of the
input PV from the server-side data distributor and publishes its results on
``OUT:<id>``) and, with ``--collector``, a ``pvapy-hpc-collector`` that
publishes them again on one PV ``OUT``, in ``uniqueId`` order. It prints
what it started and the command lines that add consumers on other hosts,
reports the aggregate rate once a second from the consumers' status
channels (``OUT:<id>:status``), and stops every child on Ctrl-C, SIGTERM or
SIGHUP. No cluster, queue or RPC of ours: pvapy's tools do the work.

``ScaleStatus`` (the status-channel reader) also feeds the viewer's
``--scale-status``.

Facts measured with pvapy 5.6.0 (and built into the command lines below):

- without ``--distributor-trigger`` the distributor hands each consumer one
  update and then nothing, for a server that leaves the NTNDArray's
  ``timeStamp`` field unchanged; ``--distributor-trigger uniqueId`` splits
  on the frame counter, which every NTNDArray producer sets;
- the first update a consumer sees is not processed unless
  ``--skip-initial-updates 0``;
- a consumer updates its status channel every 10 s unless
  ``--report-period`` asks for more (which also prints the statistics to
  its log);
- the collector needs a processor class to publish anything: pvapy's own
  ``UserDataProcessor`` passes each object through.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from . import argtypes

log = logging.getLogger("pystream.scale")

PROCESSOR_CLASS = "pystream.hpc.PipelineProcessor"
COLLECTOR_PROCESSOR_CLASS = "pvapy.hpc.userDataProcessor.UserDataProcessor"
STOP_TIMEOUT = 5.0  # seconds a child gets after SIGTERM before SIGKILL


def status_channel(output: str, consumer_id: Any) -> str:
    """The status PV of consumer ``consumer_id`` (``*``: pvapy's pattern for all)."""
    return f"{output}:{consumer_id}:status"


# ---------------------------------------------------------------- command lines

@dataclass
class ScalePlan:
    """What ``pystream scale`` starts, as command lines (also printed for other hosts)."""

    input: str
    output: str
    proc_config: Optional[str]
    consumers: int
    collector: bool = False
    first_id: int = 1
    total_consumers: int = 0  # consumers on all hosts (0: only ours)
    distributor_updates: int = 1
    on_error: str = "pass"
    codec: str = ""
    server_queue_size: int = 4
    report_period: float = 1.0
    executable: Dict[str, str] = field(default_factory=dict)

    @property
    def all_consumers(self) -> int:
        return max(self.total_consumers, self.consumers)

    @property
    def consumer_ids(self) -> List[int]:
        return list(range(self.first_id, self.first_id + self.consumers))

    def processor_args(self) -> str:
        args: Dict[str, Any] = {"on_error": self.on_error}
        if self.proc_config:
            args["config"] = str(Path(self.proc_config).resolve())
        if self.codec:
            args["codec"] = self.codec
        return json.dumps(args)

    def _tool(self, name: str) -> List[str]:
        return [self.executable.get(name, name)]

    def consumer_command(self, consumer_id: Any) -> List[str]:
        n = self.all_consumers
        return self._tool("pvapy-hpc-consumer") + [
            "--input-channel", self.input,
            "--output-channel", f"{self.output}:*",
            "--status-channel", status_channel(self.output, "*"),
            "--consumer-id", str(consumer_id), "--n-consumers", "1",
            "--processor-class", PROCESSOR_CLASS,
            "--processor-args", self.processor_args(),
            "--distributor-updates", str(self.distributor_updates),
            "--distributor-trigger", "uniqueId",
            "--oid-offset", str((n - 1) * self.distributor_updates + 1),
            "--server-queue-size", str(self.server_queue_size),
            "--skip-initial-updates", "0",
            "--report-period", str(self.report_period), "--report-stats", "user",
            "--disable-curses", "--log-level", "warning",
        ]

    def collector_command(self) -> List[str]:
        ids = ",".join(str(i) for i in range(self.first_id, self.first_id + self.all_consumers))
        return self._tool("pvapy-hpc-collector") + [
            "--collector-id", "1", "--producer-id-list", ids,
            "--input-channel", f"{self.output}:*",
            "--output-channel", self.output,
            "--status-channel", f"{self.output}:collector:status",
            "--processor-class", COLLECTOR_PROCESSOR_CLASS,
            "--server-queue-size", str(self.server_queue_size),
            "--skip-initial-updates", "0",
            "--report-period", "5", "--report-stats", "collector",
            "--disable-curses", "--log-level", "warning",
        ]


def shell_line(argv: List[str]) -> str:
    return " ".join(shlex.quote(a) for a in argv)


# ---------------------------------------------------------------- status channels

@dataclass
class ConsumerState:
    """The last status a consumer published, and the rate between the last two."""

    channel: str
    connected: bool = False
    updates: int = 0
    processed: int = 0     # frames published by the pipeline (with or without a failed step)
    dropped: int = 0       # a step failed and on_error is "drop"
    rejected: int = 0      # could not be decoded
    step_errors: int = 0
    missed: int = 0        # uniqueId gaps pvapy saw in this consumer's share
    ms_per_frame: float = 0.0
    fps: float = 0.0
    last_error: str = ""
    _last: Optional[tuple] = None  # (objectTime, processed)

    def update(self, status: Dict[str, Any]) -> None:
        user = status.get("userStats") or {}
        proc = status.get("processorStats") or {}
        if "framesProcessed" in user:
            processed = int(user.get("framesProcessed", 0)) + int(user.get("framesPassedWithErrors", 0))
        else:  # a processor that is not ours: pvapy's own count
            processed = int(proc.get("nProcessed", 0))
        t = float(status.get("objectTime", 0.0) or time.time())
        if self._last is not None and t > self._last[0]:
            self.fps = max(0.0, (processed - self._last[1]) / (t - self._last[0]))
        self._last = (t, processed)
        self.processed = processed
        self.dropped = int(user.get("framesDropped", 0))
        self.rejected = int(user.get("framesRejected", 0))
        self.step_errors = int(user.get("stepErrors", 0))
        self.missed = int(proc.get("nMissed", 0))
        self.ms_per_frame = float(user.get("msPerFrame", 0.0))
        self.last_error = str(user.get("lastError", ""))
        self.updates += 1

    def as_dict(self) -> Dict[str, Any]:
        return {"connected": self.connected, "processed": self.processed,
                "processed_fps": round(self.fps, 2), "step_errors": self.step_errors,
                "dropped": self.dropped, "rejected": self.rejected, "missed": self.missed,
                "ms_per_frame": round(self.ms_per_frame, 3), "last_error": self.last_error}


class ScaleStatus:
    """Monitors the consumers' status channels (``OUT:<id>:status``).

    ``stats()`` is the ``scale`` block of ``--stats-json``; ``summary()`` the
    one-line report. The monitor callbacks only copy a small structure."""

    def __init__(self, output: str, consumer_ids: List[int]):
        self.output = output
        self.consumers: Dict[int, ConsumerState] = {
            i: ConsumerState(status_channel(output, i)) for i in consumer_ids}
        self._lock = threading.Lock()
        self._channels: List[Any] = []

    def start(self) -> "ScaleStatus":
        import pvaccess as pva
        for consumer_id, state in self.consumers.items():
            channel = pva.Channel(state.channel)
            channel.setConnectionCallback(
                lambda connected, s=state: setattr(s, "connected", bool(connected)))
            channel.subscribe("pystream-scale", lambda pv, i=consumer_id: self._on_status(i, pv))
            channel.startMonitor()
            self._channels.append(channel)
        return self

    def _on_status(self, consumer_id: int, pv) -> None:
        try:
            status = pv.toDict()
        except Exception as exc:  # not pvapy's consumer status structure
            log.debug("status of consumer %s unreadable: %s", consumer_id, exc)
            return
        with self._lock:
            state = self.consumers[consumer_id]
            state.connected = True
            state.update(status)

    def stop(self) -> None:
        for channel in self._channels:
            try:
                channel.stopMonitor()
            except Exception:
                pass
        self._channels = []

    def stats(self) -> Dict[str, Any]:
        with self._lock:
            per = {str(i): s.as_dict() for i, s in self.consumers.items()}
            live = [s for s in self.consumers.values() if s.updates]
            return {
                "scale_consumers": len(self.consumers),
                "scale_consumers_reporting": len(live),
                "scale_processed_fps": round(sum(s.fps for s in live), 2),
                "scale_processed": sum(s.processed for s in live),
                "scale_step_errors": sum(s.step_errors for s in live),
                "scale_dropped": sum(s.dropped for s in live),
                "scale_rejected": sum(s.rejected for s in live),
                "scale_by_consumer": per,
            }

    def summary(self) -> str:
        s = self.stats()
        rates = " ".join(f"{c['processed_fps']:.1f}" for c in s["scale_by_consumer"].values())
        line = (f"{s['scale_processed_fps']:.1f} frames/s processed ({rates}) | "
                f"consumers {s['scale_consumers_reporting']}/{s['scale_consumers']} reporting | "
                f"processed {s['scale_processed']} | step errors {s['scale_step_errors']}")
        if s["scale_dropped"]:
            line += f" | dropped {s['scale_dropped']}"
        if s["scale_rejected"]:
            line += f" | rejected {s['scale_rejected']}"
        return line


# ---------------------------------------------------------------- children

def _die_with_parent() -> None:
    """In the child, before exec (Linux): SIGTERM when ``pystream scale`` dies,
    even by SIGKILL, which leaves it no time to stop its children itself."""
    if sys.platform.startswith("linux"):
        import ctypes
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Child:
    """One started process, in its own process group (a signal to the group reaches
    the multiprocessing workers pvapy may start too)."""

    def __init__(self, name: str, argv: List[str], log_path: Path, env: Optional[dict] = None):
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.process = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, env=env,
                                        start_new_session=True, preexec_fn=_die_with_parent)
        self.reported = False

    @property
    def pid(self) -> int:
        return self.process.pid

    def poll(self) -> Optional[int]:
        return self.process.poll()

    def signal(self, signum: int) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signum)
            except ProcessLookupError:
                pass

    def close_log(self) -> None:
        self._log.close()

    def log_tail(self, lines: int = 8) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(text[-lines:])


def stop_children(children: List[Child], timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM to every child's group, wait, SIGKILL what is left: no orphans."""
    for child in children:
        child.signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for child in children:
        try:
            child.process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("%s (pid %d) did not stop within %.0f s: killed", child.name, child.pid,
                        timeout)
            child.signal(signal.SIGKILL)
            child.process.wait()
        try:  # its group may still hold workers that outlived it
            os.killpg(child.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        child.close_log()


# ---------------------------------------------------------------- the command

def build_scale_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pystream scale",
        description="Run the processor pipeline on many processes with pvapy's streaming "
                    "framework: N pvapy-hpc-consumer processes share the input PV's updates "
                    "(the server's data distributor deals them out round-robin) and publish "
                    "their results as OUT:1 ... OUT:N; with --collector, pvapy-hpc-collector "
                    "publishes them again, in uniqueId order, on one PV OUT. View it with "
                    "`pystream --pv OUT`. Ctrl-C or SIGTERM stops everything.")
    parser.add_argument("--input", required=True, metavar="PV", help="NTNDArray PV to process")
    parser.add_argument("--output", required=True, metavar="PV",
                        help="output name: consumer i publishes OUT:i (status OUT:i:status); "
                             "with --collector the ordered stream is OUT")
    parser.add_argument("--proc-config", metavar="PATH", default=None,
                        help="processor pipeline JSON, as the viewer's --proc-config (default: "
                             "pipelines/processors.json, looked up as the viewer does)")
    parser.add_argument("--consumers", type=argtypes.positive_int, default=2, metavar="N",
                        help="consumer processes to start here (default: 2)")
    parser.add_argument("--collector", action="store_true",
                        help="also start a collector publishing one ordered output PV OUT")
    parser.add_argument("--first-id", type=argtypes.positive_int, default=1, metavar="ID",
                        help="id of the first consumer started here (default: 1)")
    parser.add_argument("--total-consumers", type=argtypes.positive_int, default=None, metavar="N",
                        help="consumers on all hosts together, when others run elsewhere "
                             "(default: --consumers); sets the collector's producer list")
    parser.add_argument("--distributor-updates", type=argtypes.positive_int, default=1, metavar="K",
                        help="consecutive updates each consumer takes in turn (default: 1)")
    parser.add_argument("--on-error", choices=("pass", "drop"), default="pass",
                        help="a frame on which a step failed: publish it with the step "
                             "bypassed (pass, default) or not at all (drop)")
    parser.add_argument("--codec", default="",
                        help="compress the output: lz4, bslz4, blosc, zlib (default: none)")
    parser.add_argument("--server-queue-size", type=argtypes.positive_int, default=4, metavar="N",
                        help="updates the server may queue for each consumer while it is busy "
                             "(default: 4)")
    parser.add_argument("--log-dir", metavar="DIR", default=None,
                        help="where the children's logs go (default: a new temporary directory)")
    parser.add_argument("--exit-after", type=float, default=None, metavar="SECONDS",
                        help="stop everything after SECONDS (scripts, benchmarks)")
    parser.add_argument("--quiet", action="store_true", help="no rate line every second")
    parser.add_argument("--log-level", default="INFO", type=str.upper,
                        choices=("DEBUG", "INFO", "WARNING", "ERROR"), help="log level (default: INFO)")
    return parser


def plan_from_args(args: argparse.Namespace) -> ScalePlan:
    from .sources.ntndarray import check_codec
    return ScalePlan(input=args.input, output=args.output, proc_config=args.proc_config,
                     consumers=args.consumers, collector=args.collector, first_id=args.first_id,
                     total_consumers=args.total_consumers or 0,
                     distributor_updates=args.distributor_updates, on_error=args.on_error,
                     codec=check_codec(args.codec), server_queue_size=args.server_queue_size)


def _tools_present(plan: ScalePlan) -> Optional[str]:
    import shutil
    for tool in ("pvapy-hpc-consumer", "pvapy-hpc-collector"):
        if shutil.which(plan.executable.get(tool, tool)) is None:
            return f"{tool} not found on PATH (it comes with pvapy: pip install pvapy)"
    return None


def run_scale(args: argparse.Namespace, out=None) -> int:
    """``pystream scale``: start, report, stop. Returns the exit status."""
    from .signals import StopSignals

    out = out or sys.stdout
    try:
        plan = plan_from_args(args)
    except ValueError as exc:
        log.error("%s", exc)
        return 2
    if args.proc_config and not Path(args.proc_config).is_file():
        log.error("pipeline config %s not found", args.proc_config)
        return 2
    missing = _tools_present(plan)
    if missing:
        log.error("%s", missing)
        return 2
    log_dir = Path(args.log_dir) if args.log_dir else Path(tempfile.mkdtemp(prefix="pystream-scale-"))
    log_dir.mkdir(parents=True, exist_ok=True)

    stop = threading.Event()
    signals = StopSignals(lambda name: stop.set())
    signals.install()
    children: List[Child] = []
    status = ScaleStatus(plan.output, plan.consumer_ids)
    code = 0
    try:
        for consumer_id in plan.consumer_ids:
            argv = plan.consumer_command(consumer_id)
            children.append(Child(f"consumer {consumer_id}", argv,
                                  log_dir / f"consumer-{consumer_id}.log"))
        if plan.collector:
            children.append(Child("collector", plan.collector_command(), log_dir / "collector.log"))
        _print_plan(plan, children, log_dir, out)
        status.start()
        deadline = None if args.exit_after is None else time.monotonic() + args.exit_after
        while not stop.wait(1.0):
            for child in children:
                rc = child.poll()
                if rc is not None and not child.reported:
                    child.reported = True
                    code = 1
                    print(f"pystream scale: {child.name} (pid {child.pid}) exited with status "
                          f"{rc}; its log {child.log_path} ends with:\n{child.log_tail()}",
                          file=out, flush=True)
            if all(child.reported for child in children):
                print("pystream scale: every child has exited", file=out, flush=True)
                break
            if not args.quiet:
                print(status.summary(), file=out, flush=True)
            if deadline is not None and time.monotonic() >= deadline:
                break
    finally:
        if children:
            print(f"pystream scale: stopping {len(children)} process(es)"
                  + (f" ({signals.received})" if signals.received else ""), file=out, flush=True)
        stop_children(children)  # first: nothing below may keep them alive
        status.stop()
        signals.restore()
    print(f"pystream scale: stopped. {status.summary()}", file=out, flush=True)
    return code


def _print_plan(plan: ScalePlan, children: List[Child], log_dir: Path, out) -> None:
    p = lambda text="": print(text, file=out)  # noqa: E731
    p(f"pystream scale: {plan.input} -> {plan.output}:<id> through {plan.consumers} consumer(s)"
      + (f" -> {plan.output} (ordered, collector)" if plan.collector else ""))
    for child in children:
        p(f"  started {child.name}: pid {child.pid}, log {child.log_path}")
    p(f"  status channels: {status_channel(plan.output, '<id>')}")
    p("  view the result: pystream --pv "
      + (plan.output if plan.collector else f"{plan.output}:{plan.first_id}")
      + f" --scale-status {plan.output} --scale-consumers "
      + str(plan.all_consumers))
    p("  more consumers on other hosts (ids after ours; start this command with "
      "--total-consumers covering them all):")
    next_id = plan.first_id + plan.consumers
    p("    " + shell_line(plan.consumer_command("<ID>")).replace("'<ID>'", "<ID>")
      + f"    # <ID> = {next_id}, {next_id + 1}, ...")
    p(f"  logs in {log_dir}; Ctrl-C stops everything")
    out.flush()


def main(argv: Optional[List[str]] = None) -> int:
    from .cli import setup_logging
    args = build_scale_parser().parse_args(argv)
    setup_logging(args.log_level)
    return run_scale(args)


# ---------------------------------------------------------------- the viewer's --scale-status

def add_scale_viewer_options(parser: argparse.ArgumentParser) -> None:
    """The viewer's options for watching a scaled-out pipeline and republishing."""
    g = parser.add_argument_group("scale-out and republishing")
    g.add_argument("--scale-status", metavar="OUT", default=None,
                   help="read the status channels OUT:<id>:status of the consumers that "
                        "`pystream scale --output OUT` started: their processed fps and errors "
                        "go into the status bar and --stats-json (scale_*)")
    g.add_argument("--scale-consumers", type=argtypes.positive_int, default=None, metavar="N",
                   help="with --scale-status: consumer ids 1..N (default: 4)")
    g.add_argument("--publish", metavar="NAME", default=None,
                   help="serve the processed frames as an NTNDArray PV NAME (ImageJ, "
                        "c2dataviewer, another pystream can subscribe)")
    g.add_argument("--publish-displayed", action="store_true",
                   help="with --publish: only the frames shown, not every received frame")
    g.add_argument("--publish-buffer", default="256MiB", metavar="SIZE", type=argtypes.byte_size,
                   help="memory for frames waiting to be processed and published; beyond it "
                        "frames are dropped and counted in publish_drops (default: 256MiB)")


def attach_scale_status(window, args: argparse.Namespace) -> Optional[ScaleStatus]:
    """--scale-status OUT: the consumers' status joins the viewer's stats."""
    if not getattr(args, "scale_status", None):
        return None
    ids = list(range(1, (args.scale_consumers or 4) + 1))
    status = ScaleStatus(args.scale_status, ids).start()
    window.add_stats_provider(status.stats)
    return status


if __name__ == "__main__":
    sys.exit(main())


def attach_scale_out(window, args: argparse.Namespace) -> Callable[[], None]:
    """The viewer's --publish and --scale-status, attached to ``window`` (its
    ``session``, ``pipeline``, ``add_stats_provider``); returns their stop()."""
    from .publish.republish import attach_publisher

    publisher = attach_publisher(window, args)
    status = attach_scale_status(window, args)

    def stop() -> None:
        if publisher is not None:
            publisher.stop()
        if status is not None:
            status.stop()

    return stop
