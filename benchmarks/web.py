"""The live web view under load: frames delivered to 1, 10 and 50 WebSocket
clients, end-to-end latency, the viewer's extra CPU, and the window's paint rate.

A simulated detector publishes 1024² uint16 frames at 100 Hz (``pystream sim
pva``, its own process). The viewer (``pystream --offscreen``, its own
process) watches it, first with no web view, then with ``--web`` and N
clients. The clients run in a third process (``--clients-only``): aiohttp
WebSocket clients asking for full-size JPEG at ``--client-fps`` each; each
frame's latency is the client's receipt time minus the producer's timestamp
(``t_source`` in the frame message; same machine, same clock).

Per case: frames per second received by each client (min / median), latency
p50 / p95 over all frames, the viewer's CPU (psutil, % of one core) and its
painted rate (frames painted per second, from ``--stats-json``), against the
web-off runs just before and after it in the same run (the shared machine
drifts; the spread of the off runs is the noise). Run: ``python
benchmarks/web.py`` (about 2-3 minutes).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional

import psutil


def _env() -> Dict[str, str]:
    return dict(os.environ, QT_QPA_PLATFORM="offscreen", EPICS_PVA_ADDR_LIST="127.0.0.1",
                EPICS_PVA_AUTO_ADDR_LIST="NO", EPICS_PVAS_INTF_ADDR_LIST="127.0.0.1")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


# ------------------------------------------------------------------ clients (own process)
async def _client(url: str, fps: float, seconds: float, start_at: float, result: Dict) -> None:
    import aiohttp
    latencies: List[float] = []
    frames = 0
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(url, max_msg_size=0) as ws:
            await ws.send_json({"type": "view", "format": "jpeg", "width": 4096, "height": 4096,
                                "max_fps": fps})
            meta = None
            while True:
                now = time.time()
                if now >= start_at + seconds:
                    break
                try:
                    msg = await ws.receive(timeout=start_at + seconds - now)
                except asyncio.TimeoutError:
                    break
                if msg.type == aiohttp.WSMsgType.TEXT:
                    data = json.loads(msg.data)
                    if data.get("type") == "frame":
                        meta = data["data"]
                elif msg.type == aiohttp.WSMsgType.BINARY:
                    t = time.time()
                    if meta is not None and meta.get("kind") == "image" and t >= start_at:
                        frames += 1
                        if meta.get("t_source"):
                            latencies.append(t - meta["t_source"])
                    meta = None
                else:
                    break
    result["frames"] = frames
    result["latencies"] = latencies


async def _clients(url: str, n: int, fps: float, warmup: float, seconds: float) -> Dict:
    start_at = time.time() + warmup
    results = [dict() for _ in range(n)]
    await asyncio.gather(*(_client(url, fps, seconds, start_at, r) for r in results))
    rates = [r.get("frames", 0) / seconds for r in results]
    lat = sorted(x for r in results for x in r.get("latencies", []))
    pct = (lambda q: 1000 * lat[min(len(lat) - 1, int(q * len(lat)))]) if lat else (lambda q: None)
    return {"clients": n, "fps_min": min(rates), "fps_median": statistics.median(rates),
            "latency_ms_p50": pct(0.50), "latency_ms_p95": pct(0.95), "frames": len(lat)}


# ------------------------------------------------------------------ one case
def run_case(pv: str, clients: int, args, tmp: str) -> Dict:
    stats_path = os.path.join(tmp, f"stats_{clients}.json")
    cmd = [sys.executable, "-m", "pystream.cli", "--pv", pv, "--offscreen", "--no-plugins",
           "--stats-json", stats_path]
    web = clients >= 0
    if web:
        cmd += ["--web", "127.0.0.1:0", "--web-fps", str(args.client_fps)]
    viewer = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True)
    try:
        url = None
        if web:
            for line in viewer.stderr:
                match = re.search(r"web view at (http://\S+)", line)
                if match:
                    url = match.group(1).rstrip("/") + "/ws"
                    break
        client_proc = None
        if web and clients > 0:
            client_proc = subprocess.Popen(
                [sys.executable, __file__, "--clients-only", url, "--clients", str(clients),
                 "--client-fps", str(args.client_fps), "--warmup", str(args.warmup),
                 "--seconds", str(args.seconds)], stdout=subprocess.PIPE, text=True)
        time.sleep(args.warmup)
        proc = psutil.Process(viewer.pid)
        before = _read(stats_path)
        cpu0, t0 = proc.cpu_times(), time.monotonic()
        time.sleep(args.seconds)
        cpu1, t1 = proc.cpu_times(), time.monotonic()
        after = _read(stats_path)
        cpu = 100.0 * ((cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)) / (t1 - t0)
        painted = (after["displayed"] - before["displayed"]) / (after["uptime_s"] - before["uptime_s"])
        received = (after["received"] - before["received"]) / (after["uptime_s"] - before["uptime_s"])
        row = {"clients": clients if web else "off", "viewer_cpu": cpu, "painted_fps": painted,
               "received_fps": received}
        if client_proc is not None:
            out, _ = client_proc.communicate(timeout=args.seconds + 60)
            row.update(json.loads(out.strip().splitlines()[-1]))
            row["clients"] = clients
            row["web_skips"] = after.get("web", {}).get("skips")
            row["encode_ms"] = after.get("web", {}).get("encode_ms_mean")
        return row
    finally:
        _stop(viewer)


def _read(path: str) -> Dict:
    deadline = time.monotonic() + 30
    while True:
        try:
            with open(path) as fh:
                return json.load(fh)
        except (OSError, ValueError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="1024x1024")
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--clients", default="1,10,50")
    parser.add_argument("--client-fps", type=float, default=30.0)
    parser.add_argument("--warmup", type=float, default=4.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients-only", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.clients_only:
        print(json.dumps(asyncio.run(_clients(args.clients_only, int(args.clients), args.client_fps,
                                              args.warmup, args.seconds))))
        return 0

    pv = f"pystream:bench:web:{os.getpid()}:Image"
    sim = subprocess.Popen([sys.executable, "-m", "pystream.cli", "sim", "pva", "--pv", pv, "--size",
                            args.size, "--rate", str(args.rate), "--no-counter"], env=_env(),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows = []
    try:
        time.sleep(2)
        with tempfile.TemporaryDirectory() as tmp:
            cases = [-1]  # web off before and after every case: the machine's drift shows
            for n in args.clients.split(","):
                cases += [int(n), -1]
            for n in cases:
                row = run_case(pv, n, args, tmp)
                rows.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
    finally:
        _stop(sim)
    for i, r in enumerate(rows):  # compared with the web-off runs just before and after
        if r["clients"] != "off":
            r["off_paint"] = (rows[i - 1]["painted_fps"] + rows[i + 1]["painted_fps"]) / 2
            r["off_cpu"] = (rows[i - 1]["viewer_cpu"] + rows[i + 1]["viewer_cpu"]) / 2
    print(f"\n{args.size} uint16 at {args.rate:g} Hz, clients ask for {args.client_fps:g} fps of "
          f"full-size JPEG; {args.seconds:g} s per case\n")
    print("| web clients | fps per client (min / median) | latency p50 / p95 ms | viewer CPU % "
          "| extra CPU % | painted fps | painted vs off around it | received fps | web skips | encode ms |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if r["clients"] == "off":
            print(f"| off | - | - | {r['viewer_cpu']:.0f} | - | {r['painted_fps']:.1f} | - "
                  f"| {r['received_fps']:.1f} | - | - |")
            continue
        lat = ("-" if r.get("latency_ms_p50") is None
               else f"{r['latency_ms_p50']:.0f} / {r['latency_ms_p95']:.0f}")
        print(f"| {r['clients']} | {r.get('fps_min', 0):.1f} / {r.get('fps_median', 0):.1f} | {lat} "
              f"| {r['viewer_cpu']:.0f} | {r['viewer_cpu'] - r['off_cpu']:+.0f} | {r['painted_fps']:.1f} "
              f"| {100 * (r['painted_fps'] / r['off_paint'] - 1):+.0f} % | {r['received_fps']:.1f} "
              f"| {r.get('web_skips', '-')} | {r.get('encode_ms') or '-'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
