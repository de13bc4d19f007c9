"""The viewer's window as users see it: the main window with every panel attached.

``build_window(options)`` is what ``pystream`` and ``pystream.show`` open;
``options`` is the viewer's command-line namespace (``viewer_options()``
gives the defaults, with keyword overrides).
"""
from __future__ import annotations

from argparse import Namespace


def viewer_options(**overrides) -> Namespace:
    """The viewer's options as the command line would give them, with overrides
    (``max_fps=30``, ``colormap="viridis"``, ``proc_config="p.json"`` ...)."""
    from ..cli import build_viewer_parser

    options = build_viewer_parser().parse_args([])
    unknown = sorted(set(overrides) - set(vars(options)))
    if unknown:
        raise TypeError(f"unknown viewer option(s): {', '.join(unknown)}; "
                        f"see `pystream --help` (dashes become underscores)")
    for name, value in overrides.items():
        setattr(options, name, value)
    return options


def build_window(args: Namespace, *, colormap: str = "gray", on_connect=None):
    """The main window with every panel attached, as the viewer shows it."""
    from .main_window import MainWindow
    from ..sources.pva import PvaSource

    def pva_source(name: str) -> PvaSource:  # a PV typed in the toolbar
        return PvaSource(name, queue_size=args.pva_queue, paced=not args.pva_lossless)

    window = MainWindow(max_fps=args.max_fps, display_bin=args.display_bin, colormap=colormap,
                        source_factory=pva_source, on_connect=on_connect)
    attach_image_tools(window, args)
    attach_pipeline(window, args)
    attach_recorder(window, args)
    from .stats_panel import attach_statistics
    attach_statistics(window, args)
    if args.snapshot_interval:
        attach_snapshots(window, args)
    return window


def attach_image_tools(window, args: Namespace):
    """Crosshair, flat/dark, orientation, contrast, ROI/line, save frame."""
    from .image_tools import ImageTools
    window.image_tools = ImageTools(window, auto_every=args.auto_every)
    return window.image_tools


def attach_pipeline(window, args: Namespace):
    """The processor pipeline runs in the display worker; its panel is a dock."""
    from .pipeline_panel import PipelinePanel
    from ..pipeline import open_pipeline

    pipeline = open_pipeline(args.proc_config, no_plugins=args.no_plugins)
    window.processors.append(pipeline)  # callable; its `active` lets corrections be deferred
    window.add_stats_provider(pipeline.stats)
    dock = window.add_dock(PipelinePanel(pipeline), "Pipeline")
    if args.no_plugins:
        dock.hide()
    window.pipeline = pipeline
    return pipeline


def attach_recorder(window, args: Namespace):
    """The record panel taps every received frame (not only the displayed ones)."""
    from .record_panel import RecordPanel

    formats = {"tiff": 0, "tiff-stack": 1, "hdf5": 2}
    process = window.pipeline.clone().apply if window.pipeline is not None else None
    panel = RecordPanel(window.session, process=process, buffer_bytes=args.record_buffer,
                        out_dir=args.record_dir or "")
    panel.format_combo.setCurrentIndex(formats[args.record_format])
    window.add_stats_provider(panel.stats)
    window.add_dock(panel, "Recording")
    window.record_panel = panel
    return panel


def attach_snapshots(window, args: Namespace):
    """--snapshot-interval: shown frames, as shown, to a SnapshotWriter (its own thread)."""
    from ..snapshots import SnapshotWriter

    writer = SnapshotWriter(args.snapshot_dir, args.snapshot_interval, raw=args.snapshot_raw)

    def shown(display) -> None:
        if writer.due():
            writer.offer(display, *window.image_tools.displayed_look(display))

    window.frameShown.connect(shown)
    window.add_stats_provider(writer.stats)
    window.snapshots = writer.start()
    return window.snapshots


def attach_spectra(window, args: Namespace, endpoint: str):
    """A ZMQ spectrum stream shown below (or instead of) the image; returns its stop()."""
    from .spectrum_panel import SpectrumPanel
    from ..spectra import SpectrumReceiver

    receiver = SpectrumReceiver(endpoint=endpoint, buffer_length=args.buffer_length,
                                plot_interval=args.plot_interval, plot_dir=args.plot_dir,
                                pol=args.pol, freq_avg=args.freq_avg, freq_range=args.freq_range)
    # the waterfall scrolls at display rate: a little above a 60 Hz screen's,
    # so every refresh has a new one, or --max-fps when that is set
    panel = SpectrumPanel(receiver, fps=args.max_fps or 75.0)
    window.add_view(panel, "spectra", stats=receiver.counters.snapshot)
    window.spectra = receiver
    receiver.start()

    def stop() -> None:
        panel.stop()
        receiver.stop()

    return stop
