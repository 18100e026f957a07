"""Hawkeye: video-based Parkinson's finger-tapping severity models as HPC batch jobs."""

from importlib import metadata

try:  # the one version source is pyproject.toml; the installed metadata carries it
    __version__ = metadata.version("hawkeye")
except metadata.PackageNotFoundError:  # a source tree on sys.path without installing it
    __version__ = "unknown"
