"""Test bed users."""

from __future__ import annotations

from dataclasses import dataclass

DOMAIN = "example.test"


@dataclass(frozen=True)
class TestBedUser:
    """A mailbox on the test bed: login ``name``, address ``name@example.test``."""

    __test__ = False  # not a pytest test class, despite the name

    name: str
    password: str

    @property
    def address(self) -> str:
        return f"{self.name}@{DOMAIN}"


# Fixed (so a test or a demo can be re-run by hand) but random-looking and distinct.
DEFAULT_USERS: tuple[TestBedUser, ...] = (
    TestBedUser("alice", "Xq7-vTr2-aL1ce-9kPz"),
    TestBedUser("bob", "mB4.wQ8n-b0b-Lr3x"),
    TestBedUser("carol", "c4R0l_Zt6-Yp2-hVd"),
    TestBedUser("dave", "Dv9~sK3m-d4ve-Jq5w"),
)

# Accepted at RCPT (listed in the virtual mailbox map) and silently discarded by Postfix.
BLACKHOLE_ADDRESS = f"blackhole@{DOMAIN}"
