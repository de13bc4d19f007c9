"""ZMQ spectrum ingest: pystream's SpectrumReceiver vs a bare pyzmq SUB.

One publisher process sends AvgStreamingOp messages (3072x4 float32, real
JSON headers) while two subscribers listen to the same stream at the same
time: a bare pyzmq SUB that only counts (its own process) and pystream's
SpectrumReceiver (this process: socket thread, validation, Frame, router,
batch processing into the ring). Reports ingest ratio (receiver / bare SUB),
CPU %, peak RSS and memory flatness, as a markdown table.

    python benchmarks/zmq_spectra.py [--seconds 8] [--rates 0,2000]

Measured, never pass/fail: numbers depend on the machine (here: 2 shared cores
for 3 busy processes).
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))


def publisher_main(port_queue, go, done, seconds: float, rate: float, result_queue):
    import zmq

    from pystream.publish.zmq_spectra import SyntheticSpectra, make_header, time_tag_of

    context = zmq.Context()
    socket = context.socket(zmq.PUB)
    socket.setsockopt(zmq.LINGER, 0)
    socket.bind("tcp://127.0.0.1:*")
    port_queue.put(int(socket.getsockopt_string(zmq.LAST_ENDPOINT).rsplit(":", 1)[1]))
    generator = SyntheticSpectra(seed=0)
    payloads = [generator.next() for _ in range(32)]  # pre-generated: measure transport, not numpy
    time_tag = time_tag_of(time.time())
    # warm-up trickle until both subscribers say they are in (PUB/SUB slow joiner)
    while not go.is_set():
        socket.send_multipart([b"warmup", b"{}", b""])
        time.sleep(0.01)
    sent = 0
    period = 1.0 / rate if rate > 0 else 0.0
    t0 = time.monotonic()
    next_time = t0
    while time.monotonic() - t0 < seconds:
        header = json.dumps(make_header((1, 3072, 4), time_tag=time_tag)).encode()
        socket.send_multipart([b"data", header, payloads[sent % 32]])
        sent += 1
        if period:
            next_time += period
            delay = next_time - time.monotonic()
            if delay > 0:
                time.sleep(delay)
    elapsed = time.monotonic() - t0
    done.set()
    result_queue.put(("publisher", {"sent": sent, "seconds": elapsed}))
    time.sleep(0.5)
    socket.close(0)
    context.term()


def bare_sub_main(port: int, ready, done, result_queue):
    import psutil
    import zmq

    context = zmq.Context()
    socket = context.socket(zmq.SUB)
    socket.setsockopt(zmq.SUBSCRIBE, b"")
    socket.connect(f"tcp://127.0.0.1:{port}")
    count = 0
    while True:  # wait for the warm-up trickle
        if socket.poll(5000) and socket.recv_multipart()[0] == b"warmup":
            break
    ready.set()
    process = psutil.Process()
    cpu0 = process.cpu_times()
    t0 = time.monotonic()
    while True:
        if not socket.poll(1000):
            if done.is_set():
                break
            continue
        parts = socket.recv_multipart()
        if parts[0] == b"data":
            count += 1
    cpu1 = process.cpu_times()
    wall = time.monotonic() - t0 - 1.0
    cpu = (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / max(wall, 1e-9) * 100
    result_queue.put(("bare", {"received": count, "cpu_percent": cpu,
                               "rss_mb": process.memory_info().rss / 2**20}))
    socket.close(0)
    context.term()


def run(seconds: float, rate: float) -> dict:
    import psutil

    from pystream.spectra import SpectrumReceiver

    ctx = mp.get_context("spawn")
    port_queue, result_queue = ctx.Queue(), ctx.Queue()
    go, done, bare_ready = ctx.Event(), ctx.Event(), ctx.Event()
    publisher = ctx.Process(target=publisher_main, args=(port_queue, go, done, seconds, rate, result_queue))
    publisher.start()
    port = port_queue.get(timeout=30)
    bare = ctx.Process(target=bare_sub_main, args=(port, bare_ready, done, result_queue))
    bare.start()

    receiver = SpectrumReceiver(stream_port=port, plot_interval=0)
    receiver.start()
    deadline = time.monotonic() + 30
    while (receiver.counters.get("rejected") == 0 or not bare_ready.is_set()) and time.monotonic() < deadline:
        time.sleep(0.01)  # warm-up messages arrive as 'wrong_topic' rejects: we are subscribed

    process = psutil.Process()
    rss_samples = []
    sampling = threading.Event()

    def sample_rss():
        while not sampling.wait(0.1):
            rss_samples.append(process.memory_info().rss / 2**20)

    sampler = threading.Thread(target=sample_rss, daemon=True)
    sampler.start()
    cpu0 = process.cpu_times()
    t0 = time.monotonic()
    go.set()
    done.wait(seconds + 30)
    # let the queues drain: stop when nothing new arrived for 1 s
    last, quiet_since = -1, time.monotonic()
    while time.monotonic() - quiet_since < 1.0:
        total = receiver.ring.total
        if total != last:
            last, quiet_since = total, time.monotonic()
        time.sleep(0.05)
    wall = time.monotonic() - t0 - 1.0
    cpu1 = process.cpu_times()
    sampling.set()
    sampler.join()
    receiver.stop()
    snap = receiver.counters.snapshot()

    results = {}
    for _ in range(2):
        name, values = result_queue.get(timeout=30)
        results[name] = values
    publisher.join(10)
    bare.join(10)
    quarter = max(1, len(rss_samples) // 4)
    return {
        "rate": rate, "seconds": results["publisher"]["seconds"],
        "sent": results["publisher"]["sent"], "bare": results["bare"],
        "received": snap["received"], "in_ring": receiver.ring.total,
        # warm-up messages are 'wrong_topic' by design; anything else is a real reject
        "rejected": sum(v for k, v in snap["rejected_by_reason"].items() if k != "wrong_topic"),
        "ring_drops": snap["ring_drops"],
        "batches": snap["batches"],
        "cpu_percent": (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / max(wall, 1e-9) * 100,
        "rss_peak_mb": max(rss_samples) if rss_samples else float("nan"),
        "rss_growth_mb": (sum(rss_samples[-quarter:]) / quarter - sum(rss_samples[quarter:2 * quarter]) / quarter)
        if len(rss_samples) >= 8 else float("nan"),
    }


def run_display(seconds: float, rate: float) -> dict:
    """The whole viewer: `pystream --zmq ... --offscreen` against `pystream sim zmq`;
    the waterfall's real paints per second (counted at paint, not at setImage)."""
    import socket
    import tempfile

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cli = [sys.executable, "-m", "pystream.cli"]
    publisher = subprocess.Popen(cli + ["sim", "zmq", "--port", str(port), "--rate", str(rate),
                                        "--log-level", "WARNING"])
    with tempfile.TemporaryDirectory() as tmp:
        stats = os.path.join(tmp, "stats.json")
        env = dict(os.environ, HOME=tmp, QT_QPA_PLATFORM="offscreen")
        try:
            subprocess.run(cli + ["--zmq", f"tcp://127.0.0.1:{port}", "--offscreen", "--exit-after",
                                  str(seconds), "--stats-json", stats, "--log-level", "WARNING"],
                           env=env, check=True, timeout=seconds + 60)
            with open(stats) as fh:
                snap = json.load(fh)["spectra"]
        finally:
            publisher.terminate()
            publisher.wait(10)
    # rates over the last 2 s before exit (start-up excluded)
    return {"rate": rate, "received_per_s": snap["recv_fps"], "displayed": snap["displayed"],
            "display_fps": snap["display_fps"], "rejected": snap["rejected"],
            "ring_drops": snap.get("ring_drops", 0), "delay_s": snap.get("delay_s")}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="send time per scenario")
    parser.add_argument("--rates", default="0,2000", help="publisher rates in msg/s, 0 = full speed")
    parser.add_argument("--single", type=float, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--display-rates", default="0,100",
                        help="publisher rates for the whole-viewer waterfall phase ('' to skip)")
    args = parser.parse_args(argv)
    if args.single is not None:  # one scenario, in a fresh process: RSS is not inherited
        print("RESULT " + json.dumps(run(args.seconds, args.single)))
        return
    rows = []
    for rate in args.rates.split(","):
        out = subprocess.run([sys.executable, os.path.abspath(__file__), "--seconds", str(args.seconds),
                              "--single", rate], capture_output=True, text=True, check=True).stdout
        rows.append(json.loads(next(l for l in out.splitlines() if l.startswith("RESULT "))[7:]))
    print(f"\nZMQ spectra ingest, 3072x4 float32 (49,152 B) messages, {os.cpu_count()} CPUs, "
          f"{args.seconds:g} s per scenario\n")
    print("| publisher rate | sent (msg/s) | bare SUB recv | bare SUB CPU % | SpectrumReceiver recv "
          "| in ring | ingest vs bare | receiver CPU % | peak RSS MB | RSS growth MB (2nd→4th quarter) "
          "| bad/drops |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        label = "full speed" if r["rate"] == 0 else f"{r['rate']:g} msg/s"
        bare = r["bare"]["received"]
        ratio = r["received"] / bare * 100 if bare else float("nan")
        print(f"| {label} | {r['sent']} ({r['sent'] / r['seconds']:.0f}) | {bare} | "
              f"{r['bare']['cpu_percent']:.0f} | {r['received']} | {r['in_ring']} | {ratio:.1f} % | "
              f"{r['cpu_percent']:.0f} | {r['rss_peak_mb']:.0f} | {r['rss_growth_mb']:+.1f} | "
              f"{r['rejected']}/{r['ring_drops']} |")
    display_rates = [r for r in args.display_rates.split(",") if r]
    if display_rates:
        print("\nWaterfall in the viewer (`pystream --zmq ... --offscreen`, rates over the last 2 s)\n")
        print("| publisher rate | spectra received /s | waterfall painted /s | rejected | ring drops | delay s |")
        print("|---|---|---|---|---|---|")
        for rate in display_rates:
            r = run_display(args.seconds, float(rate))
            label = "full speed" if r["rate"] == 0 else f"{r['rate']:g} msg/s"
            print(f"| {label} | {r['received_per_s']:.0f} | {r['display_fps']:.1f} | {r['rejected']} | "
                  f"{r['ring_drops']} | {r['delay_s']} |")


if __name__ == "__main__":
    main()
