"""Hawkeye: video-based Parkinson's finger-tapping severity models as HPC batch jobs."""

__version__ = "0.1.0"
