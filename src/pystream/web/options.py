"""The web view's command-line options, shared by every command that has one."""
from __future__ import annotations

import argparse
import ipaddress
from typing import Optional, Tuple

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9527  # seed 000's web interface port
DEFAULT_ADDRESS = f"{DEFAULT_HOST}:{DEFAULT_PORT}"


def parse_address(text: str) -> Tuple[str, int]:
    """``[HOST:]PORT``, ``HOST`` or ``[IPv6]:PORT`` → (host, port); defaults 127.0.0.1 and 9527."""
    text = text.strip()
    host, port = DEFAULT_HOST, str(DEFAULT_PORT)
    if text.startswith("["):  # [::1]:9527
        inner, _, rest = text[1:].partition("]")
        host, port = inner, rest.lstrip(":") or port
    elif text.isdigit():
        port = text
    elif text.count(":") == 1:
        host, port = text.split(":")
        host = host or DEFAULT_HOST
    elif ":" in text:  # a bare IPv6 address
        try:
            host = str(ipaddress.ip_address(text))
        except ValueError:
            port = ""
    elif text:
        host = text  # a host name
    try:
        number = int(port)
    except ValueError:
        number = -1
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"expected [HOST:]PORT, e.g. 9527 or 0.0.0.0:9527, not {text!r}")
    return host, number


def _address(text: str) -> Tuple[str, int]:
    return parse_address(text)


def _fps(text: str) -> float:
    value = float(text)
    if not 0 < value <= 120:
        raise argparse.ArgumentTypeError("must be > 0 and <= 120")
    return value


def add_web_options(group) -> None:
    """``--web [HOST:]PORT``, ``--start-webshow`` (seed 000's name), ``--web-token``, ``--web-fps``."""
    group.add_argument("--web", nargs="?", const=parse_address(DEFAULT_ADDRESS), default=None,
                       type=_address, metavar="[HOST:]PORT",
                       help="serve a live web view of the stream (open the URL printed at start); "
                            "default 127.0.0.1:9527. Any other address than loopback needs a token "
                            "(generated and printed with the URL, or --web-token); from another "
                            "machine prefer an SSH tunnel: ssh -L 9527:localhost:9527 HOST")
    group.add_argument("--start-webshow", dest="web", action="store_const",
                       const=parse_address(DEFAULT_ADDRESS),
                       help="the same as --web 127.0.0.1:9527 (StreamReceiver's option)")
    group.add_argument("--web-token", metavar="TOKEN", default=None,
                       help="token the web view asks for (default: a random one off loopback, "
                            "none on loopback); a page sends it once as ?token=, then as a cookie")
    group.add_argument("--web-fps", type=_fps, default=30.0, metavar="FPS",
                       help="most frames per second sent to each browser; a page can ask for "
                            "fewer (default: 30)")


def web_address(args: argparse.Namespace) -> Optional[Tuple[str, int]]:
    return getattr(args, "web", None)
