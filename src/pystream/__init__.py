"""pystream: a live viewer and engine for scientific data streams.

The public API (everything else is private and may change)::

    import pystream
    source = pystream.PvaSource("13SIM1:Pva1:Image")      # or ZmqSpectrumSource, PushSource,
                                                          # IterSource, ReplaySource
    pystream.show(source)                                 # the window, until it is closed
    stats = pystream.run(source, record={"dir": "out", "format": "hdf5"}, seconds=60)

    with pystream.Session() as session:                   # the engine itself
        session.connect(source)
        for display in session.frames(): ...              # display-ready, latest wins

See the README's "Python API" section.
"""
from importlib import import_module

from ._version import __version__

# public name -> private module; imported on first use, so `import pystream`
# (and the `pystream` command) loads no library a run does not need (pyzmq, h5py, Qt)
_EXPORTS = {
    "Session": ".session",
    "show": "._api",
    "run": "._api",
    "Source": ".sources._base",
    "PvaSource": ".sources.pva",
    "ZmqSpectrumSource": ".sources.zmq_spectra",
    "PushSource": ".sources.push",
    "IterSource": ".sources.iterable",
    "ReplaySource": ".sources.replay",
    "ReplayError": ".sources.replay",
    "Frame": ".frame",
    "FrameRejected": ".frame",
    "ImageToolsModel": ".imaging.tools",
    "Recorder": ".record",
    "RecordError": ".record",
    "RingBuffer": ".stats",
    "RollingStats": ".stats",
    "TimeSeries": ".stats",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pystream' has no attribute {name!r}")
    value = getattr(import_module(module, __name__), name)
    globals()[name] = value  # once
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
