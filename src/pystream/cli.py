"""The ``pystream`` command.

    pystream [--pv PV] [viewer options]      the viewer (default)
    pystream demo [viewer options]           viewer + embedded simulated detector
    pystream sim pva --pv NAME [...]         the simulated detector alone
"""
from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
import threading
from typing import List, Optional

from . import argtypes
from ._version import __version__
from .signals import StopRequest, StopSignals
from .web.options import web_address

log = logging.getLogger("pystream")

SUBCOMMANDS = ("demo", "sim", "record", "scale")

EPILOG = """\
subcommands:
  pystream demo [options]     open the viewer on an embedded simulated detector
                              (no EPICS IOC needed); accepts every viewer option
  pystream sim pva [options]  run the simulated NTNDArray detector alone
                              (see: pystream sim pva --help)
  pystream sim zmq [options]  publish synthetic OVRO-style spectra over ZMQ
  pystream record --pv PV --out DIR [--format tiff|tiff-stack|hdf5] [--frames N | --seconds S]
                              record with no window (see: pystream record --help)
  pystream scale --input PV --output OUT --proc-config CFG --consumers N [--collector]
                              the pipeline on N processes with pvapy's streaming
                              framework (see: pystream scale --help)

examples:
  pystream --pv 13SIM1:Pva1:Image
  pystream --pv 2bmSP2:Pva1:Image --max-fps 0 --log-level DEBUG
  pystream demo --offscreen --exit-after 10 --stats-json stats.json
  pystream --zmq tcp://127.0.0.1:9798 --pol I --freq-range 14.36,87.83
  pystream --replay run42/frame_000001.h5 --fps 50 --loop
  pystream demo --offscreen --web          then open http://127.0.0.1:9527/

Ctrl-C, SIGTERM and SIGHUP stop every command cleanly (recordings closed, final
stats written, exit status 0); a second one stops at once.
settings persist in ~/.pystream/viewer_config.json (last PV, colormap, window layout; --pv wins).
"""


def add_pva_queue_option(g) -> None:
    from .sources.pva import DEFAULT_QUEUE_SIZE
    g.add_argument("--pva-queue", type=argtypes.positive_int, default=DEFAULT_QUEUE_SIZE, metavar="N",
                   help="updates the pvAccess monitor may queue (on the server and here) while the "
                        "viewer is briefly busy, instead of dropping them; more absorbs longer "
                        f"hiccups, and adds latency when the stream outruns the viewer "
                        f"(default: {DEFAULT_QUEUE_SIZE}; pvAccess's own default is 2)")


def add_zmq_options(g) -> None:
    g.add_argument("--zmq", metavar="ENDPOINT",
                   help="ZMQ spectrum stream to subscribe to (OVRO AvgStreamingOp format), "
                        "e.g. tcp://127.0.0.1:9798")
    g.add_argument("--addr", metavar="HOST",
                   help="spectrum stream host, as in StreamReceiver (default: 127.0.0.1)")
    g.add_argument("--port", type=argtypes.port, metavar="PORT",
                   help="spectrum stream port, as in StreamReceiver (default: 9798)")


def zmq_endpoint(args: argparse.Namespace) -> Optional[str]:
    """--zmq, or --addr/--port (either one implies the spectrum stream)."""
    if not (args.zmq or args.addr or args.port):
        return None  # an image-only viewer never loads pyzmq (with asyncio and ssl: about 7 MB)
    from .sources.zmq_spectra import make_endpoint
    if args.zmq:
        return make_endpoint(args.zmq)
    return make_endpoint(args.addr or "127.0.0.1", args.port or 9798)


def add_viewer_options(parser: argparse.ArgumentParser,
                       pv_help: str = "NTNDArray PV to watch (default: the last one used, from the "
                                      "settings file)") -> None:
    g = parser.add_argument_group("source")
    g.add_argument("--pv", metavar="NAME", help=pv_help)
    add_pva_queue_option(g)
    g.add_argument("--pva-lossless", action="store_true",
                   help="take every update off the wire even while nothing records (default: "
                        "while only the display uses them, receive about as fast as it shows "
                        "them and let the server drop the rest, counted in skipped_upstream)")
    add_zmq_options(g)
    g = parser.add_argument_group("replay a recording (instead of a live stream)")
    g.add_argument("--replay", metavar="PATH",
                   help="play a recording: a folder or a glob of TIFF files, a multi-page TIFF, "
                        "an HDF5 file or a .npy stack (wins over --pv); read one frame at a time")
    g.add_argument("--fps", type=argtypes.nonneg_float, default=None, metavar="N",
                   help="replay rate in frames per second; 0 = as fast as possible (default: the "
                        "capture rate the recorded timestamps give, else 10)")
    g.add_argument("--loop", action="store_true",
                   help="start the replay again at the end (uids keep increasing)")
    g.add_argument("--dataset", metavar="NAME",
                   help="the HDF5 dataset to replay (default: /entry/data/data, what pystream "
                        "records)")
    g = parser.add_argument_group("spectra (with --zmq)")
    g.add_argument("--pol", default="XX", type=str.upper, choices=("XX", "YY", "I", "V"),
                   help="polarisation: XX, YY, I = (XX+YY)/2 or V = CI (default: XX)")
    g.add_argument("--freq-avg", type=argtypes.positive_int, default=4, metavar="N",
                   help="average N adjacent channels (default: 4: 3072 -> 768)")
    g.add_argument("--freq-range", metavar="F0,F1", type=argtypes.freq_range,
                   help="frequency axis in MHz, e.g. 14.36,87.83 (default: channel numbers)")
    g.add_argument("--buffer-length", type=argtypes.positive_int, default=1200, metavar="ROWS",
                   help="spectra kept for the waterfall (default: 1200)")
    g.add_argument("--plot-interval", type=argtypes.nonneg_float, default=0.0, metavar="S",
                   help="write a spectrum + waterfall PNG every S seconds (0 = never, default)")
    g.add_argument("--plot-dir", default="spectrum_plots", metavar="DIR",
                   help="where the periodic PNGs go (default: ./spectrum_plots)")
    g = parser.add_argument_group("snapshots (with or without a window)")
    g.add_argument("--snapshot-interval", type=argtypes.nonneg_float, default=0.0, metavar="S",
                   help="write the image as displayed (levels, colormap, orientation, processed) "
                        "as a timestamped PNG every S seconds (0 = never, default)")
    g.add_argument("--snapshot-dir", default="snapshots", metavar="DIR",
                   help="where the snapshots go (default: ./snapshots)")
    g.add_argument("--snapshot-raw", action="store_true",
                   help="with each snapshot, also the frame as received, as TIFF")
    g = parser.add_argument_group("display")
    g.add_argument("--max-fps", type=argtypes.nonneg_float, default=0.0, metavar="FPS",
                   help="cap on frames painted per second; 0 = as fast as the screen takes them "
                        "(default: 0)")
    g.add_argument("--display-bin", type=argtypes.nonneg_int, default=0, metavar="N",
                   help="show every Nth pixel in each direction; 0 = auto, reduce to screen "
                        "resolution (default: 0). Tools still use full resolution.")
    g.add_argument("--colormap", default=None, metavar="NAME", type=argtypes.colormap,
                   help="initial colormap: gray, viridis, turbo, inferno, magma, plasma, cividis, "
                        "CET-L3, CET-R4, CET-D1 (default: the last one used, else gray)")
    g.add_argument("--auto-every", type=argtypes.positive_int, default=1, metavar="N",
                   help="with Auto levels on, recompute the levels every N frames (default: 1)")
    g.add_argument("--offscreen", action="store_true",
                   help="run with no window on screen (automatic when DISPLAY is unset)")
    g = parser.add_argument_group("processing")
    g.add_argument("--proc-config", metavar="PATH", default=None,
                   help="processor pipeline JSON (default: pipelines/processors.json, looked up in "
                        "the current directory, ~/.pystream, then the package)")
    g.add_argument("--no-plugins", action="store_true",
                   help="load no processor plugins; frames are shown unprocessed")
    g = parser.add_argument_group("recording")
    g.add_argument("--record-dir", metavar="DIR", help="recording directory (default: current)")
    g.add_argument("--record-format", default="tiff", choices=("tiff", "tiff-stack", "hdf5"),
                   help="tiff = prefix_000001.tiff sequence, tiff-stack = one BigTIFF, "
                        "hdf5 = /entry/data/data (default: tiff)")
    g.add_argument("--record-buffer", default="1GiB", metavar="SIZE", type=argtypes.byte_size,
                   help="memory between receiving and writing, e.g. 2GiB; beyond it frames are "
                        "dropped and counted (default: 1GiB)")
    g.add_argument("--record", action="store_true",
                   help="start recording at launch (with --record-dir etc.)")
    g = parser.add_argument_group("scripts and logs")
    g.add_argument("--stats-json", metavar="FILE",
                   help="write the counters (received, displayed, skipped, rejected, fps, latency, "
                        "...) to FILE every second and at exit")
    g.add_argument("--frame-stats", action="store_true",
                   help="also write per-frame statistics (mean, std, min, max, sum of the frame or "
                        "the ROI: the latest and rolling over the Statistics panel's window) to "
                        "--stats-json, under frame_stats")
    g.add_argument("--exit-after", type=argtypes.seconds, metavar="SECONDS",
                   help="quit after SECONDS (for scripts and benchmarks)")
    g.add_argument("--log-level", default="INFO", type=str.upper,
                   choices=("DEBUG", "INFO", "WARNING", "ERROR"), help="log level (default: INFO)")
    g.add_argument("--log-file", metavar="PATH", help="also write the log to PATH")
    from .scale import add_scale_viewer_options
    add_scale_viewer_options(parser)  # --publish, --scale-status
    from .web.options import add_web_options
    add_web_options(parser.add_argument_group("web view"))
    g = parser.add_argument_group("StreamReceiver's flags (scripts written for it run unchanged)")
    g.add_argument("--gc-interval", type=argtypes.positive_int, metavar="N",
                   help="accepted and not needed: pystream makes no per-frame garbage to collect")


def apply_receiver_flags(args: argparse.Namespace) -> None:
    """StreamReceiver's --gc-interval, said what it does here (its --start-webshow is
    --web's alias, in the web view's options)."""
    if args.gc_interval is not None:
        log.info("--gc-interval is not needed: pystream makes no per-frame garbage to collect")


def check_proc_config(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """A --proc-config that names no file is a usage error (exit 2); the default may be absent."""
    if args.proc_config is None or args.no_plugins:
        return
    from .pipeline.config import ConfigError, resolve_config_path
    try:
        resolve_config_path(args.proc_config)
    except ConfigError as exc:
        parser.error(f"--proc-config: {exc}")


def build_viewer_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pystream",
        description="Live viewer for EPICS PVAccess NTNDArray image streams and ZMQ spectrum "
                    "streams.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"pystream {__version__}")
    add_viewer_options(parser)
    return parser


def build_demo_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pystream demo",
        description="Open the viewer on an embedded simulated NTNDArray detector "
                    "(a moving test pattern with a frame counter). No EPICS IOC needed.")
    add_viewer_options(parser, pv_help="name under which the simulated detector is served and "
                                       "watched (default: pystream:demo:<process id>:Image)")
    g = parser.add_argument_group("simulated detector")
    g.add_argument("--size", type=argtypes.size, default=(1024, 1024), metavar="WxH",
                   help="image size (default: 1024x1024)")
    g.add_argument("--rate", type=argtypes.nonneg_float, default=30.0, metavar="HZ",
                   help="frames per second; 0 = as fast as possible (default: 30)")
    g.add_argument("--dtype", default="uint16", help="pixel type (default: uint16)")
    g.add_argument("--codec", default="",
                   help="none, lz4, bslz4, blosc, zlib, lz4hdf5, jpeg (jpeg needs uint8) (default: none)")
    g.add_argument("--color-mode", default="mono",
                   help="mono, rgb1, rgb2, rgb3, bayer, yuv422 (default: mono)")
    return parser


def build_sim_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pystream sim",
        description="Run a simulated source on its own.")
    kinds = parser.add_subparsers(dest="kind", metavar="KIND", required=True)
    p = kinds.add_parser("pva", help="an NTNDArray detector served over PVAccess",
                         description="Serve a moving test pattern as an NTNDArray PV.")
    p.add_argument("--pv", default="pystream:sim:Image", help="PV name (default: pystream:sim:Image)")
    p.add_argument("--size", type=argtypes.size, default=(1024, 1024), metavar="WxH",
                   help="image size (default: 1024x1024)")
    p.add_argument("--rate", type=argtypes.nonneg_float, default=30.0, metavar="HZ",
                   help="frames per second; 0 = as fast as possible (default: 30)")
    p.add_argument("--dtype", default="uint16",
                   help="int8 uint8 int16 uint16 int32 uint32 int64 uint64 float32 float64 bool "
                        "(default: uint16)")
    p.add_argument("--codec", default="",
                   help="none, lz4, bslz4, blosc, zlib, lz4hdf5, jpeg (jpeg needs uint8) "
                        "(default: none)")
    p.add_argument("--color-mode", default="mono",
                   help="mono, rgb1, rgb2, rgb3, bayer, yuv422 (default: mono)")
    p.add_argument("--frames", type=argtypes.positive_int, default=None, metavar="N",
                   help="stop after N frames (default: run until Ctrl-C)")
    p.add_argument("--no-counter", action="store_true",
                   help="do not draw the frame counter (publishes precomputed frames faster)")
    p.add_argument("--log-level", default="INFO", type=str.upper,
                   choices=("DEBUG", "INFO", "WARNING", "ERROR"), help="log level (default: INFO)")
    z = kinds.add_parser("zmq", help="an OVRO-LWA spectrum stream over ZMQ (AvgStreamingOp format)",
                         description="Publish synthetic spectra (bandpass, noise, drifting bursts) "
                                     "exactly as AvgStreamingOp does: PUB binds, 3-part messages.")
    z.add_argument("--addr", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    z.add_argument("--port", type=argtypes.port, default=9798, help="port to bind (default: 9798)")
    z.add_argument("--rate", type=argtypes.nonneg_float, default=4.0, metavar="HZ",
                   help="messages per second; 0 = as fast as possible (default: 4)")
    z.add_argument("--count", type=argtypes.positive_int, default=None, metavar="N",
                   help="stop after N messages (default: run until Ctrl-C)")
    z.add_argument("--log-level", default="INFO", type=str.upper,
                   choices=("DEBUG", "INFO", "WARNING", "ERROR"), help="log level (default: INFO)")
    return parser


def build_record_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pystream record",
        description="Record every received frame, losslessly, with no window: TIFF sequence "
                    "(prefix_000001.tiff ...), one BigTIFF stack, or HDF5. Shows progress and "
                    "a summary (frames, drops, MB/s). Ctrl-C, SIGTERM or SIGHUP stops, writes what "
                    "is queued, closes the files and exits with status 0; a second one drops "
                    "what is queued (the files are still closed).")
    g = parser.add_argument_group("source (one of)")
    g.add_argument("--pv", metavar="NAME", help="NTNDArray PV")
    add_pva_queue_option(g)
    add_zmq_options(g)
    g = parser.add_argument_group("recording")
    g.add_argument("--out", required=True, metavar="DIR", help="output directory (created if missing)")
    g.add_argument("--format", default="tiff", choices=("tiff", "tiff-stack", "hdf5"),
                   help="default: tiff (a sequence of files)")
    g.add_argument("--prefix", default="frame", help="file name prefix (default: frame)")
    stop = g.add_mutually_exclusive_group()
    stop.add_argument("--frames", type=argtypes.positive_int, metavar="N", help="stop after N frames")
    stop.add_argument("--seconds", type=argtypes.seconds, metavar="S", help="stop after S seconds")
    g.add_argument("--record-buffer", default="1GiB", metavar="SIZE", type=argtypes.byte_size,
                   help="memory between receiving and writing (default: 1GiB); beyond it frames "
                        "are dropped and counted")
    g.add_argument("--compression", default=None, help="TIFF/HDF5 compression, e.g. zlib (default: none)")
    g.add_argument("--connect-timeout", type=argtypes.nonneg_float, default=30.0, metavar="S",
                   help="give up (exit status 1) when the source has not connected after S "
                        "seconds; 0 = wait forever (default: 30)")
    g.add_argument("--no-progress", action="store_true", help="no progress line")
    g.add_argument("--log-level", default="INFO", type=str.upper,
                   choices=("DEBUG", "INFO", "WARNING", "ERROR"), help="log level (default: INFO)")
    from .web.options import add_web_options
    add_web_options(parser.add_argument_group("web view (frames are decoded for it only while "
                                              "a browser watches)"))
    return parser


def setup_logging(level: str = "INFO", log_file: Optional[str] = None) -> None:
    handlers: List[logging.Handler] = [logging.StreamHandler()]
    if log_file:
        try:
            handlers.append(logging.FileHandler(log_file))
        except OSError as exc:  # a usage error, like a bad option value
            print(f"pystream: cannot open the log file {log_file}: {exc.strerror or exc}",
                  file=sys.stderr)
            sys.exit(2)
    logging.basicConfig(level=getattr(logging, level, logging.INFO), handlers=handlers, force=True,
                        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")


NEVER_CONNECTED_HINT = ("is the IOC (or publisher) running, and reachable from here? "
                        "For PVAccess see EPICS_PVA_ADDR_LIST and EPICS_PVA_AUTO_ADDR_LIST")


def use_loopback_if_unset() -> None:
    """The embedded simulator talks to ourselves: keep pvAccess on loopback."""
    os.environ.setdefault("EPICS_PVA_ADDR_LIST", "127.0.0.1")
    os.environ.setdefault("EPICS_PVA_AUTO_ADDR_LIST", "NO")
    os.environ.setdefault("EPICS_PVAS_INTF_ADDR_LIST", "127.0.0.1")


# ---------------------------------------------------------------- commands

def run_viewer(args: argparse.Namespace, *, demo_pv: Optional[str] = None,
               source=None) -> int:
    """The viewer window (on screen or offscreen) until it is closed, Ctrl-C or
    ``--exit-after``. ``source``: a Source to watch instead of a PV (``pystream.show``);
    ``--replay PATH`` makes one."""
    if source is None:
        from .sources.replay import ReplayError, replay_source_from_args
        try:
            source = replay_source_from_args(args)  # a bad file is said before any window opens
        except ReplayError as exc:
            log.error("%s", exc)
            return 2
    from . import settings as settings_mod
    from .gui.app import make_app
    from .gui.assemble import attach_spectra, build_window

    app, platform_note = make_app(force_offscreen=args.offscreen)
    from pyqtgraph.Qt import QtCore

    from .sources.pva import PvaSource
    from .statsfile import StatsFileWriter

    settings = settings_mod.load_settings()

    def remember(pv: str) -> None:
        if demo_pv is None:  # the demo's PV is not worth remembering
            settings["last_pv"] = pv
            settings_mod.save_settings(settings)

    window = build_window(args, colormap=args.colormap or settings.get("colormap", "gray"),
                          on_connect=remember)
    window.platform_note = platform_note
    window.add_stats_provider(lambda: {"qt_platform": app.platformName()})
    record_panel = window.record_panel
    endpoint = zmq_endpoint(args)
    stop_spectra = attach_spectra(window, args, endpoint) if endpoint else None
    from .scale import attach_scale_out
    stop_scale_out = attach_scale_out(window, args)  # --publish, --scale-status
    window.restore_layout(settings)  # geometry, docks, image/spectra split of the last run
    offscreen = app.platformName() in ("offscreen", "minimal")
    # a stop asked for from a web page is carried out here, on the GUI thread
    web_stop = threading.Event()
    try:
        web = attach_web(window, args, on_stop=web_stop.set,
                         stop_action=WEB_STOP_OFFSCREEN if offscreen else WEB_STOP_WINDOW)
    except OSError as exc:
        log.error("%s", exc)
        if stop_spectra is not None:
            stop_spectra()
        window.shutdown()
        return 2
    window.show()

    # recording starts before the stream, so it has every frame from the first;
    # asked for at launch (often offscreen, by a script), failing to start is fatal
    if args.record and not record_panel.start_recording():
        log.error("%s", record_panel.error_label.text())  # "Cannot record: <why>"
        if stop_spectra is not None:
            stop_spectra()
        if web is not None:
            web.stop()
        return 1
    # with only a spectrum stream asked for, don't also open the last image PV
    pv = demo_pv or args.pv or ("" if endpoint or source else settings.get("last_pv")) or ""
    if source is not None:
        window.connect_source(source)
    elif pv:
        window.connect_source(PvaSource(pv, queue_size=args.pva_queue, paced=not args.pva_lossless))
        if args.pv and not demo_pv:
            remember(args.pv)
    elif not endpoint:
        window.status_label.setText("no PV: type one in the toolbar and press Connect")

    def stats():
        snap = window.stats()
        if web is not None:
            snap["web"] = web.stats()
        return snap

    stats_writer = None
    if args.stats_json:
        stats_writer = StatsFileWriter(args.stats_json, stats)
        stats_writer.start()

    def web_stop_requested() -> None:
        if not web_stop.is_set():
            return
        web_stop.clear()
        if offscreen:
            app.quit()
        else:
            window.disconnect_source()
            if stop_spectra is not None:
                stop_spectra()

    # Ctrl-C / SIGTERM / SIGHUP quit cleanly; the timer lets Python run signal handlers
    StopSignals(lambda _name: app.quit()).install()

    def on_tick() -> None:
        # with no window on screen, a stream that has ended (a replay, a
        # user's iterator) leaves nothing to watch: stop, as a headless run does
        if offscreen and window.session.stats().get("state") == "finished":
            log.info("the stream finished: stopping (no window on screen)")
            app.quit()

    tick = QtCore.QTimer()
    tick.timeout.connect(on_tick)
    tick.timeout.connect(web_stop_requested)
    tick.start(200)
    if args.exit_after is not None:
        QtCore.QTimer.singleShot(int(args.exit_after * 1000), app.quit)
    status_line = start_status_line(stats, web) if offscreen else None
    announce(offscreen, web)

    code = app.exec_()
    if status_line is not None:
        status_line.end()
    if web is not None:
        web.stop("pystream has stopped")
    watched = window.session.source
    if watched is not None:
        if window.session.stats().get("state") == "connecting":
            log.warning("%s never connected: %s", watched.describe(), NEVER_CONNECTED_HINT)
        watched.stop()  # nothing more arrives: the counts below are final
    if stop_spectra is not None:
        stop_spectra()  # like the image source: the final numbers say "stopped"
    record_panel.shutdown()  # write what is queued, close the files
    stop_scale_out()
    if window.snapshots is not None:
        window.snapshots.stop()
    if stats_writer is not None:
        stats_writer.stop()  # final numbers, before the windows are torn down
    # also after Ctrl-C / SIGTERM (they quit the loop); the demo keeps the last PV as it was
    settings["colormap"] = window.colormap_combo.currentText()
    settings.update(window.save_layout())
    settings_mod.save_settings(settings)
    window.shutdown()
    return code


WEB_STOP_OFFSCREEN = ("ends this pystream run, as Ctrl-C would: the stream stops, a recording "
                      "is closed, and this page loses its connection")
WEB_STOP_WINDOW = ("disconnects the stream in the pystream window (the window stays open; "
                   "its Connect button starts it again)")
WEB_STOP_RECORD = ("ends this recording, as Ctrl-C would: what is queued is written, the files "
                   "are closed, and this page loses its connection")


def make_web_view(args: argparse.Namespace, *, colormap: str = "gray", on_stop=None,
                  stop_action: str = "", stats_provider=None):
    """The WebView that ``--web`` asks for (not started), or None without --web."""
    address = web_address(args)
    if address is None:
        return None
    from .web import WebView
    return WebView(*address, token=args.web_token, fps=args.web_fps, colormap=colormap,
                   stop_action=stop_action, on_stop=on_stop, stats_provider=stats_provider)


def attach_web(window, args: argparse.Namespace, *, on_stop=None, stop_action: str = ""):
    """The live web view (``--web``) of the window's frames and spectra; None without --web.

    Raises OSError when it cannot serve (e.g. the port is taken)."""
    view = make_web_view(args, colormap=window.colormap_combo.currentText(), on_stop=on_stop,
                         stop_action=stop_action, stats_provider=window.stats)
    if view is None:
        return None
    view.watch(window.session)
    if window.spectra is not None:
        view.attach_spectra(window.spectra)
    view.start()
    return view


def start_status_line(stats, web):
    """Offscreen: one status line (state, rates, drops, latency, web clients), twice a second."""
    from pyqtgraph.Qt import QtCore

    from .statusline import StatusLine
    line = StatusLine()
    for handler in logging.getLogger().handlers:  # a log record ends the line first
        if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
            handler.addFilter(line.log_filter())
    timer = QtCore.QTimer()
    timer.timeout.connect(lambda: line.update(stats(), web.clients_connected if web else None))
    timer.start(500)
    line.timer = timer  # kept alive with the line
    return line


def announce(offscreen: bool, web) -> None:
    """Say where the stream can be seen and how to stop."""
    lines = []
    if offscreen:
        lines.append("pystream: running with no window; Ctrl-C stops")
    if web is not None:
        lines.append(f"pystream: web view at {web.url}")
        if web.loopback:
            lines.append(f"pystream: from another machine: ssh -L {web.port}:localhost:{web.port} "
                         f"{socket.gethostname()}, then open http://localhost:{web.port}/")
    for line in lines:
        print(line, file=sys.stderr, flush=True)


def run_demo(args: argparse.Namespace) -> int:
    use_loopback_if_unset()
    from .publish.pva_sim import run_pva_sim

    pv = args.pv or f"pystream:demo:{os.getpid()}:Image"
    stop = threading.Event()
    ready = threading.Event()
    errors: List[BaseException] = []

    def publish():
        try:
            run_pva_sim(pv, size=args.size, rate=args.rate, dtype=args.dtype, codec=args.codec,
                        color_mode=args.color_mode, stop_event=stop, ready=ready)
        except Exception as exc:
            errors.append(exc)
            ready.set()

    thread = threading.Thread(target=publish, name="pystream-demo-sim", daemon=True)
    thread.start()
    ready.wait(10)
    if errors:
        log.error("the simulated detector could not start: %s", errors[0])
        return 2
    log.info("demo: simulated detector on PV %s", pv)
    try:
        return run_viewer(args, demo_pv=pv)
    finally:
        stop.set()
        thread.join(timeout=5)


def run_sim(args: argparse.Namespace) -> int:
    if args.kind == "pva":
        from .publish.pva_sim import run_pva_sim
        try:
            count = run_pva_sim(args.pv, size=args.size, rate=args.rate, dtype=args.dtype,
                                codec=args.codec, color_mode=args.color_mode, frames=args.frames,
                                counter=not args.no_counter)
        except (ValueError, TypeError) as exc:
            log.error("%s", exc)
            return 2
        log.info("published %d frames", count)
        return 0
    if args.kind == "zmq":
        from .publish.zmq_spectra import run_sim as run_zmq_sim
        stop = StopRequest()
        StopSignals(stop.request).install()
        try:
            count = run_zmq_sim(port=args.port, rate=args.rate, addr=args.addr, count=args.count,
                                stop_event=stop)
        except Exception as exc:  # e.g. address already in use
            log.error("cannot publish on tcp://%s:%s: %s", args.addr, args.port, exc)
            return 2
        log.info("published %d spectra", count)
        return 0
    return 2


def run_record(args: argparse.Namespace) -> int:
    from .record import RecordError, run_recording

    endpoint = zmq_endpoint(args)
    if bool(args.pv) == bool(endpoint):
        log.error("pystream record needs exactly one source: --pv NAME or --zmq ENDPOINT")
        return 2
    if args.pv:
        from .sources.pva import PvaSource
        source = PvaSource(args.pv, queue_size=args.pva_queue)
    else:
        from .sources.zmq_spectra import ZmqSpectrumSource
        source = ZmqSpectrumSource(endpoint)
    out_existed = os.path.exists(args.out)
    stop = StopRequest()
    session, web = None, None
    if web_address(args) is not None and endpoint:
        log.error("pystream record --web shows images only; for a spectrum stream run "
                  "`pystream --zmq ENDPOINT --offscreen --web` beside the recording")
        return 2
    if web_address(args) is not None:
        from .session import Session
        # the display worker prepares frames for the browsers only, at most at their rate
        session = Session(max_fps=args.web_fps)
        web = make_web_view(args, on_stop=lambda: stop.request("stop from the web view"),
                            stop_action=WEB_STOP_RECORD, stats_provider=session.stats)
        web.watch(session, only_while_watched=True)
        try:
            web.start()
        except OSError as exc:
            log.error("%s", exc)
            session.close()
            return 2
        announce(False, web)

    def stop_at_once(_name: str) -> None:
        raise KeyboardInterrupt  # run_recording's path: drop what is queued, close the files

    try:
        with StopSignals(stop.request, on_force=stop_at_once):
            summary = run_recording(source, args.out, fmt=args.format, frames=args.frames,
                                    seconds=args.seconds, prefix=args.prefix,
                                    buffer_bytes=args.record_buffer, compression=args.compression,
                                    progress=not args.no_progress, stop_event=stop,
                                    connect_timeout=args.connect_timeout or None,
                                    session=session)
    except RecordError as exc:
        log.error("cannot record: %s", exc)
        return 1
    finally:
        if web is not None:
            web.stop("the recording has ended")
            session.close()
    if not out_existed and os.path.isdir(args.out) and not os.listdir(args.out):
        os.rmdir(args.out)  # no frame written (the writers remove their empty files)
    if not summary.ok:
        return 1
    if summary.never_connected:
        log.error("%s never connected: %s", source.describe(), NEVER_CONNECTED_HINT)
        return 1
    if summary.received == 0 and summary.stop_reason != "could not start":
        # a script must not take an empty recording for a good one
        log.error("no frame arrived from %s: %s", source.describe(), NEVER_CONNECTED_HINT)
        return 1
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv and argv[0] in SUBCOMMANDS else None
    if command == "demo":
        parser = build_demo_parser()
        args = parser.parse_args(argv[1:])
        check_proc_config(parser, args)
        setup_logging(args.log_level, args.log_file)
        apply_receiver_flags(args)
        return run_demo(args)
    if command == "sim":
        args = build_sim_parser().parse_args(argv[1:])
        setup_logging(args.log_level)
        return run_sim(args)
    if command == "scale":
        from .scale import main as scale_main
        return scale_main(argv[1:])
    if command == "record":
        args = build_record_parser().parse_args(argv[1:])
        setup_logging(args.log_level)
        return run_record(args)
    parser = build_viewer_parser()
    args = parser.parse_args(argv)
    check_proc_config(parser, args)
    setup_logging(args.log_level, args.log_file)
    apply_receiver_flags(args)
    return run_viewer(args)


if __name__ == "__main__":
    sys.exit(main())
