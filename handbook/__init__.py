"""Handbook: a self-hosted knowledge assistant for technical manuals."""

__version__ = "0.1.0"
