"""Kindred Map: community social action in the Liverpool City Region, joined to its geography."""

__version__ = "0.1.0"
