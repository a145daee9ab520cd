"""Shared fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mailcanary.testbed import MailTestBed, ensure_installed


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
