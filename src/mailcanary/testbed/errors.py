"""Exceptions of the mail test bed."""

from __future__ import annotations


class TestBedError(RuntimeError):
    """The test bed could not be installed, started or used."""

    __test__ = False  # not a pytest test class, despite the name
