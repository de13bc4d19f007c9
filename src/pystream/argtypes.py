"""Value types of the command-line options (argparse ``type=``): a bad value is a
usage error (exit 2) that says what is expected, never a traceback."""
from __future__ import annotations

import argparse


def nonneg_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value


def seconds(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return value


def nonneg_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return value


def port(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError("must be a TCP port, 1-65535")
    return value


def colormap(text: str) -> str:
    from .gui.image_view import COLORMAPS  # only when the option is given: it loads pyqtgraph
    for name in COLORMAPS:
        if name.lower() == text.lower():
            return name
    raise argparse.ArgumentTypeError(f"unknown colormap {text!r}; choose from {', '.join(COLORMAPS)}")


def size(text: str):
    try:
        w, h = (int(v) for v in text.lower().split("x"))
        if w <= 0 or h <= 0:
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, e.g. 1024x1024, not {text!r}") from None
    return h, w


def byte_size(text: str) -> int:
    from .record import parse_size
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def freq_range(text: str):
    from .spectra import parse_freq_range
    try:
        return parse_freq_range(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
