"""The installed version (one place: pyproject.toml)."""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("pystream")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
