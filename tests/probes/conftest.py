"""The round-trip tests' shared fixture (defined with them), for every module here."""

from tests.probes.test_roundtrip import make_config  # noqa: F401
