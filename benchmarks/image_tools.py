"""Displayed fps with the image tools off vs crosshair + ROI + line + flat-field on.

A simulated detector (``pystream sim pva --rate R --no-counter``, R = ``--rate``, 0 = flood)
runs in its own process; the real MainWindow runs here, offscreen, for
``--seconds`` per configuration, alternating configurations for
``--rounds`` rounds (a shared VM drifts: alternation keeps the comparison
fair), and reads ``window.stats()``. Configurations:

- ``off``: the window alone (no ImageTools attached);
- ``attached``: ImageTools attached, every tool off;
- ``on``: crosshair (a pixel picked), a 1024x1024 ROI, a line across the
  frame and the flat field applied (a flat of the stream's shape);
- any of ``cross``, ``roi``, ``line``, ``flat`` joined by ``+``: those alone
  (``cross+roi+flat`` is the image-tools issue's "crosshair, ROI and
  flat-field all on");
- ``stats``: the Statistics panel (per-frame mean/std/min/max/sum of the
  whole frame at its default rate or ``--stats-rate``), in front and plotting,
  with no image tools; ``stats+roi``: with the image tools and of their ROI.

The display binning is fixed (``--display-bin``, default 2) so that every
configuration decimates alike (auto binning depends on the view size, which
the side-panel dock changes).

``--pin`` runs the publisher on CPU 1 and the viewer on CPU 0, so the two
never compete for a core (as when the detector is another host).

Run: ``python benchmarks/image_tools.py [--size 2048] [--seconds 10] [--rounds 2] [--pin]``
Prints one JSON line per measurement (displayed and received fps, the
viewer's CPU, CPU time per displayed frame, CPU per thread: GUI, display
worker, pvAccess receive, other) and a summary with the ratio on/off.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
for key, value in (("EPICS_PVA_ADDR_LIST", "127.0.0.1"), ("EPICS_PVA_AUTO_ADDR_LIST", "NO"),
                   ("EPICS_PVAS_INTF_ADDR_LIST", "127.0.0.1")):
    os.environ[key] = value

import numpy as np  # noqa: E402

TOOLS = ("cross", "roi", "line", "flat")


def start_publisher(pv: str, size: int, rate: float = 0.0, cpu=None) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "pystream.cli", "sim", "pva", "--pv", pv, "--size", f"{size}x{size}",
           "--rate", str(rate), "--no-counter", "--log-level", "WARNING"]
    pin = None if cpu is None else (lambda: os.sched_setaffinity(0, {cpu}))
    return subprocess.Popen(cmd, env=dict(os.environ), preexec_fn=pin)


def wait(app, seconds: float, until=None) -> bool:
    """Run Qt's real event loop for ``seconds`` (or until ``until()``), as the
    application does: a loop of processEvents() and sleeps would spend CPU
    and hold the GIL on polling that the viewer never does."""
    from pyqtgraph.Qt import QtCore

    loop = QtCore.QEventLoop()
    done = [until is None]
    QtCore.QTimer.singleShot(int(seconds * 1000), loop.quit)
    poll = None
    if until is not None:
        def check():
            if until():
                done[0] = True
                loop.quit()
        poll = QtCore.QTimer()
        poll.timeout.connect(check)
        poll.start(20)
        if until():
            return True
    loop.exec_()
    if poll is not None:
        poll.stop()
    return done[0]


def thread_cpu() -> dict:
    """CPU seconds so far of each thread of this process, by tid, with its name."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as fh:
                raw = fh.read()
        except OSError:  # the thread ended
            continue
        fields = raw.rsplit(")", 1)[1].split()
        out[int(tid)] = (raw[raw.index("(") + 1:raw.rindex(")")], (int(fields[11]) + int(fields[12])) / tick)
    return out


def cpu_by_role(before: dict, after: dict, worker_tid, elapsed: float) -> dict:
    """Percent of a core per role: the GUI (main) thread, the display worker,
    pvAccess's receive thread, everything else."""
    roles = {"gui": 0.0, "worker": 0.0, "receive": 0.0, "other": 0.0}
    for tid, (name, cpu) in after.items():
        used = cpu - before.get(tid, (name, 0.0))[1]
        role = ("gui" if tid == os.getpid() else "worker" if tid == worker_tid
                else "receive" if name.startswith("TCP-rx") else "other")
        roles[role] += used
    return {role: round(100 * used / elapsed) for role, used in roles.items()}


def measure(app, pv: str, config: str, seconds: float, display_bin: int,
            stats_rate=None) -> dict:
    from pystream.gui.main_window import MainWindow
    from pystream.sources.pva import PvaSource

    window = MainWindow(source_factory=PvaSource, display_bin=display_bin)
    window.resize(1200, 860)
    window.show()
    tokens = set(config.split("+"))
    tools = None
    if config in ("attached", "on") or tokens & set(TOOLS):
        from pystream.gui.image_tools import ImageTools
        tools = ImageTools(window)
    panel = None
    if "stats" in tokens:
        from pystream.gui.stats_panel import StatisticsPanel
        panel = StatisticsPanel(window, tools=tools, **({} if stats_rate is None else {"rate": stats_rate}))
        window.add_dock(panel, "Statistics").raise_()
    window.connect_source(PvaSource(pv))
    if not wait(app, 20, lambda: window.stats().get("displayed", 0) >= 3):
        raise SystemExit(f"no frames from {pv}: {window.stats()}")
    tools_on = set(TOOLS) if config == "on" else tokens & set(TOOLS)
    shape = window.current.raw.shape
    if "cross" in tools_on:
        tools.set_crosshair_enabled(True)
        tools.set_crosshair_pixel(shape[1] // 3, shape[0] // 3)
    if "roi" in tools_on:
        tools.set_roi_enabled(True)
        tools.set_roi_rect((shape[1] / 4, shape[0] / 4, shape[1] / 2, shape[0] / 2))
    if "line" in tools_on:
        tools.set_line_enabled(True)
        tools.set_line((0.5, 0.5), (shape[1] - 0.5, shape[0] - 0.5))
    if "flat" in tools_on:
        flat = np.random.default_rng(0).uniform(1000, 2000, shape[:2]).astype(np.float32)
        tools.set_reference("flat", flat)
        tools.apply_flat_box.setChecked(True)
        if not wait(app, 10, lambda: window.current.meta.get("corrections") == "flat"):
            raise SystemExit("flat field never applied")
    if panel is not None and "roi" in tools_on:
        panel.set_region(True)
    stats_cpu = {"worker": 0.0, "calls": 0, "gui": 0.0, "refreshes": 0}
    if panel is not None:  # the panel's own CPU, timed where it is spent
        analyse, refresh = window.analyses["frame_stats"], panel.refresh

        def timed_analysis(arr, meta):
            c0 = time.thread_time()
            result = analyse(arr, meta)
            if result is not None:
                stats_cpu["worker"] += time.thread_time() - c0
                stats_cpu["calls"] += 1
            return result

        def timed_refresh():
            c0 = time.thread_time()
            refresh()
            panel.repaint()  # now, synchronously: the paint refresh() asked for
            stats_cpu["gui"] += time.thread_time() - c0
            stats_cpu["refreshes"] += 1

        window.analyses["frame_stats"] = timed_analysis
        panel.timer.timeout.disconnect()
        panel.timer.timeout.connect(timed_refresh)
    wait(app, 2.0)  # settle
    stats_cpu.update(worker=0.0, calls=0, gui=0.0, refreshes=0)
    before = window.stats()
    threads0 = thread_cpu()
    cpu0 = time.process_time()  # every thread of this process: receive, worker, GUI
    t0 = time.monotonic()
    wait(app, seconds)
    after = window.stats()
    elapsed = time.monotonic() - t0
    cpu = time.process_time() - cpu0
    by_role = cpu_by_role(threads0, thread_cpu(), window.session.worker.native_id, elapsed)
    displayed = after["displayed"] - before["displayed"]
    result = {
        "config": config,
        "displayed_fps": round(displayed / elapsed, 2),
        "received_fps": round((after["received"] - before["received"]) / elapsed, 2),
        "cpu_percent": round(100 * cpu / elapsed),  # 100 = one core
        "cpu_ms_per_displayed": round(1000 * cpu / max(1, displayed), 2),
        "cpu_percent_by_thread": by_role,
        "latency_ms_p50": after.get("latency_ms_p50"),
        "bin": window.current.bin,
        "image_dtype": str(window.current.image.dtype),
        "raw_kind": type(window.current.raw).__name__,
        "last_error": after.get("last_error"),
    }
    if panel is not None:
        result["stats_samples"] = panel.analysis.series.total
        # CPU per second of the measured window: the worker's statistics, the GUI's
        # refresh and repaint of the panel
        result["stats_cpu_ms_per_s"] = {"worker": round(1000 * stats_cpu["worker"] / elapsed, 1),
                                        "gui": round(1000 * stats_cpu["gui"] / elapsed, 1)}
        result["stats_ms_per_call"] = {
            "worker": round(1000 * stats_cpu["worker"] / max(1, stats_cpu["calls"]), 2),
            "gui": round(1000 * stats_cpu["gui"] / max(1, stats_cpu["refreshes"]), 2)}
        panel.detach()
    if tools is not None or panel is not None:
        result["analyses"] = sorted(window.current.analysis)
    if tools is not None:
        tools.detach()
    window.disconnect_source()
    window.close()
    window.deleteLater()
    app.processEvents()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--rate", type=float, default=0.0,
                        help="publisher rate in Hz (default: 0 = flood, as fast as it can)")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--configs", default="off,attached,on",
                        help="comma-separated: off, attached, on, or tools joined by + "
                             "(cross, roi, line, flat), e.g. flat+roi; stats = the Statistics panel")
    parser.add_argument("--stats-rate", type=float, default=None,
                        help="frames the Statistics panel measures per second (default: the "
                             "panel's own, 2; 0 = every shown frame)")
    parser.add_argument("--display-bin", type=int, default=2,
                        help="fixed display binning, the same for every configuration (default: 2; "
                             "0 = auto, which depends on the view size the dock leaves)")
    parser.add_argument("--pin", action="store_true",
                        help="publisher on CPU 1, the viewer (this process) on CPU 0")
    args = parser.parse_args()
    if args.pin:  # before any thread starts: they inherit it
        os.sched_setaffinity(0, {0})

    from pystream.gui.app import make_app
    app, _ = make_app()
    pv = f"pystream:bench:{uuid.uuid4().hex[:6]}:Image"
    publisher = start_publisher(pv, args.size, args.rate, cpu=1 if args.pin else None)
    results = []
    try:
        time.sleep(2.0)
        for _ in range(args.rounds):
            for config in args.configs.split(","):
                result = measure(app, pv, config, args.seconds, args.display_bin, args.stats_rate)
                print(json.dumps(result), flush=True)
                results.append(result)
    finally:
        publisher.terminate()
        publisher.wait(10)
    fps = {c: statistics.median(r["displayed_fps"] for r in results if r["config"] == c)
           for c in args.configs.split(",")}
    summary = {"size": args.size, "rate": args.rate or "flood", "pinned": args.pin,
               "median_displayed_fps": fps,
               "median_cpu_percent_by_thread": {
                   c: {role: statistics.median(r["cpu_percent_by_thread"][role]
                                               for r in results if r["config"] == c)
                       for role in ("gui", "worker", "receive", "other")}
                   for c in args.configs.split(",")}}
    if fps.get("off"):
        summary["loss_percent_vs_off"] = {c: round(100 * (1 - v / fps["off"]), 1)
                                          for c, v in fps.items() if c != "off"}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
