"""The ``pystream`` command.

    pystream [--pv PV] [viewer options]      the viewer (default)
    pystream demo [viewer options]           viewer + embedded simulated detector
    pystream sim pva --pv NAME [...]         the simulated detector alone
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from typing import List, Optional

log = logging.getLogger("pystream")

SUBCOMMANDS = ("demo", "sim")

EPILOG = """\
subcommands:
  pystream demo [options]     open the viewer on an embedded simulated detector
                              (no EPICS IOC needed); accepts every viewer option
  pystream sim pva [options]  run the simulated NTNDArray detector alone
                              (see: pystream sim pva --help)

examples:
  pystream --pv 13SIM1:Pva1:Image
  pystream --pv 2bmSP2:Pva1:Image --max-fps 0 --log-level DEBUG
  pystream demo --offscreen --exit-after 10 --stats-json stats.json

settings persist in ~/.pystream/viewer_config.json (last PV; --pv wins).
"""


def _positive_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value


def _nonneg_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value


def _size(text: str):
    try:
        w, h = (int(v) for v in text.lower().split("x"))
        if w <= 0 or h <= 0:
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, e.g. 1024x1024, not {text!r}") from None
    return h, w


def add_viewer_options(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("source")
    g.add_argument("--pv", metavar="NAME",
                   help="NTNDArray PV to watch (default: the last one used, from the settings file)")
    g = parser.add_argument_group("display")
    g.add_argument("--max-fps", type=_positive_float, default=0.0, metavar="FPS",
                   help="cap on frames painted per second; 0 = as fast as the screen takes them "
                        "(default: 0)")
    g.add_argument("--display-bin", type=_nonneg_int, default=0, metavar="N",
                   help="show every Nth pixel in each direction; 0 = auto, reduce to screen "
                        "resolution (default: 0). Tools still use full resolution.")
    g.add_argument("--colormap", default=None, metavar="NAME",
                   help="initial colormap: gray, viridis, turbo, inferno, magma, plasma, ...")
    g.add_argument("--offscreen", action="store_true",
                   help="run with no window on screen (automatic when DISPLAY is unset)")
    g = parser.add_argument_group("processing")
    g.add_argument("--proc-config", metavar="PATH", default=None,
                   help="processor pipeline JSON (default: pipelines/processors.json, looked up in "
                        "the current directory, ~/.pystream, then the package)")
    g.add_argument("--no-plugins", action="store_true",
                   help="load no processor plugins; frames are shown unprocessed")
    g = parser.add_argument_group("scripts and logs")
    g.add_argument("--stats-json", metavar="FILE",
                   help="write the counters (received, displayed, skipped, rejected, fps, latency, "
                        "...) to FILE every second and at exit")
    g.add_argument("--exit-after", type=_positive_float, metavar="SECONDS",
                   help="quit after SECONDS (for scripts and benchmarks)")
    g.add_argument("--log-level", default="INFO", type=str.upper,
                   choices=("DEBUG", "INFO", "WARNING", "ERROR"), help="log level (default: INFO)")
    g.add_argument("--log-file", metavar="PATH", help="also write the log to PATH")


def build_viewer_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pystream",
        description="Live viewer for EPICS PVAccess NTNDArray image streams.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_viewer_options(parser)
    return parser


def build_demo_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pystream demo",
        description="Open the viewer on an embedded simulated NTNDArray detector "
                    "(a moving test pattern with a frame counter). No EPICS IOC needed.")
    add_viewer_options(parser)
    g = parser.add_argument_group("simulated detector")
    g.add_argument("--size", type=_size, default=(1024, 1024), metavar="WxH",
                   help="image size (default: 1024x1024)")
    g.add_argument("--rate", type=_positive_float, default=30.0, metavar="HZ",
                   help="frames per second; 0 = as fast as possible (default: 30)")
    g.add_argument("--dtype", default="uint16", help="pixel type (default: uint16)")
    g.add_argument("--codec", default="", help="none, lz4, bslz4, blosc, zlib, jpeg (default: none)")
    g.add_argument("--color-mode", default="mono", help="mono, rgb1, rgb2, rgb3 (default: mono)")
    return parser


def build_sim_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pystream sim",
        description="Run a simulated source on its own.")
    kinds = parser.add_subparsers(dest="kind", metavar="KIND", required=True)
    p = kinds.add_parser("pva", help="an NTNDArray detector served over PVAccess",
                         description="Serve a moving test pattern as an NTNDArray PV.")
    p.add_argument("--pv", default="pystream:sim:Image", help="PV name (default: pystream:sim:Image)")
    p.add_argument("--size", type=_size, default=(1024, 1024), metavar="WxH",
                   help="image size (default: 1024x1024)")
    p.add_argument("--rate", type=_positive_float, default=30.0, metavar="HZ",
                   help="frames per second; 0 = as fast as possible (default: 30)")
    p.add_argument("--dtype", default="uint16",
                   help="int8 uint8 int16 uint16 int32 uint32 int64 uint64 float32 float64 bool "
                        "(default: uint16)")
    p.add_argument("--codec", default="",
                   help="none, lz4, bslz4, blosc, zlib, lz4hdf5, jpeg (jpeg needs uint8) "
                        "(default: none)")
    p.add_argument("--color-mode", default="mono",
                   help="mono, rgb1, rgb2, rgb3, bayer, yuv422 (default: mono)")
    p.add_argument("--frames", type=int, default=None, help="stop after N frames (default: run until Ctrl-C)")
    p.add_argument("--no-counter", action="store_true",
                   help="do not draw the frame counter (publishes precomputed frames faster)")
    p.add_argument("--log-level", default="INFO", type=str.upper,
                   choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    return parser


def setup_logging(level: str = "INFO", log_file: Optional[str] = None) -> None:
    handlers: List[logging.Handler] = [logging.StreamHandler()]
    if log_file:
        handlers.append(logging.FileHandler(log_file))
    logging.basicConfig(level=getattr(logging, level, logging.INFO), handlers=handlers, force=True,
                        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")


def use_loopback_if_unset() -> None:
    """The embedded simulator talks to ourselves: keep pvAccess on loopback."""
    os.environ.setdefault("EPICS_PVA_ADDR_LIST", "127.0.0.1")
    os.environ.setdefault("EPICS_PVA_AUTO_ADDR_LIST", "NO")
    os.environ.setdefault("EPICS_PVAS_INTF_ADDR_LIST", "127.0.0.1")


# ---------------------------------------------------------------- commands

def run_viewer(args: argparse.Namespace, *, demo_pv: Optional[str] = None) -> int:
    from . import settings as settings_mod
    from .gui.app import make_app

    app, platform_note = make_app(force_offscreen=args.offscreen)
    from pyqtgraph.Qt import QtCore

    from .gui.main_window import MainWindow
    from .sources.pva import PvaSource
    from .statsfile import StatsFileWriter

    settings = settings_mod.load_settings()

    def remember(pv: str) -> None:
        if demo_pv is None:  # the demo's PV is not worth remembering
            settings["last_pv"] = pv
            settings_mod.save_settings(settings)

    window = MainWindow(max_fps=args.max_fps, display_bin=args.display_bin,
                        colormap=args.colormap or settings.get("colormap", "gray"),
                        source_factory=PvaSource, on_connect=remember)
    window.platform_note = platform_note
    attach_pipeline(window, args)
    window.show()

    pv = demo_pv or args.pv or settings.get("last_pv") or ""
    if pv:
        window.connect_source(PvaSource(pv))
        if args.pv and not demo_pv:
            remember(args.pv)
    else:
        window.status_label.setText("no PV: type one in the toolbar and press Connect")

    stats_writer = None
    if args.stats_json:
        stats_writer = StatsFileWriter(args.stats_json, window.stats)
        stats_writer.start()

    # Ctrl-C / SIGTERM quit cleanly; the timer lets Python run signal handlers
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: app.quit())
    tick = QtCore.QTimer()
    tick.timeout.connect(lambda: None)
    tick.start(200)
    if args.exit_after:
        QtCore.QTimer.singleShot(int(args.exit_after * 1000), app.quit)

    code = app.exec_()
    if stats_writer is not None:
        stats_writer.stop()  # final numbers, before the session is torn down
    settings["colormap"] = window.colormap_combo.currentText()
    if demo_pv is None:
        settings_mod.save_settings(settings)
    window.disconnect_source()
    return code


def attach_pipeline(window, args: argparse.Namespace):
    """The processor pipeline runs in the display worker; its panel is a dock."""
    from .gui.pipeline_panel import PipelinePanel
    from .pipeline import open_pipeline

    pipeline = open_pipeline(args.proc_config, no_plugins=args.no_plugins)
    window.processors.append(pipeline.apply)
    window.add_stats_provider(pipeline.stats)
    dock = window.add_dock(PipelinePanel(pipeline), "Pipeline")
    if args.no_plugins:
        dock.hide()
    window.pipeline = pipeline
    return pipeline


def run_demo(args: argparse.Namespace) -> int:
    use_loopback_if_unset()
    from .publish.pva_sim import run_pva_sim

    pv = f"pystream:demo:{os.getpid()}:Image"
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
    return 2


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv and argv[0] in SUBCOMMANDS else None
    if command == "demo":
        args = build_demo_parser().parse_args(argv[1:])
        setup_logging(args.log_level, args.log_file)
        return run_demo(args)
    if command == "sim":
        args = build_sim_parser().parse_args(argv[1:])
        setup_logging(args.log_level)
        return run_sim(args)
    args = build_viewer_parser().parse_args(argv)
    setup_logging(args.log_level, args.log_file)
    return run_viewer(args)


if __name__ == "__main__":
    sys.exit(main())
