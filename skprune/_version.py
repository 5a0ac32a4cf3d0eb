"""The installed version of skprune."""

__version__ = "0.1.0"
