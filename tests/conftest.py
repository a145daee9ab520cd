"""Shared fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mailcanary.testbed import MailTestBed, ensure_installed
from mailcanary.testbed.standard_ports import StandardPortsBed


@pytest.fixture(scope="session")
def testbed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailTestBed]:
    """A started Dovecot + Postfix test bed, shared by the whole session."""
    ensure_installed()
    bed = MailTestBed(tmp_path_factory.mktemp("testbed"))
    bed.start()
    try:
        yield bed
    finally:
        bed.stop()


@pytest.fixture(scope="session")
def standard_bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandardPortsBed]:
    """Dovecot and Postfix on the standard ports of 127.0.0.3, for the settings doctor.

    Fixed ports: every test using it is marked ``xdist_group("standard-ports")``.
    """
    ensure_installed()
    bed = StandardPortsBed(tmp_path_factory.mktemp("standard"))
    bed.start()
    try:
        yield bed
    finally:
        bed.stop()
