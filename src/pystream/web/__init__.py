"""Live web view: any browser watches the stream over WebSocket (no Qt here).

    from pystream.web import WebView
    view = WebView("127.0.0.1", 9527, stop_action="ends this run", on_stop=...)
    view.start(); print(view.url)
    session.add_display_listener(view.offer_display)

The server (aiohttp) is imported only when a web view is made: the options
cost a command nothing.
"""
from .options import add_web_options, parse_address, web_address

__all__ = ["WebView", "add_web_options", "parse_address", "web_address"]


def __getattr__(name):
    if name == "WebView":
        from .server import WebView
        return WebView
    raise AttributeError(name)
