"""The daemon runs pop3 probes like the others (series from start-up, phases incl. select),
and asks the settings doctor at most once per endpoint while its config stays the same."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailcanary.config import load_config
from mailcanary.probes import PROBES
from mailcanary.testbed import MailTestBed
from mailcanary.testbed.pop3 import PRIVATE_HOST
from tests.helpers.daemon_support import daemon_config, free_port, running_daemon, value

pytestmark = pytest.mark.testbed


def pop3_account(bed: MailTestBed, tmp: Path, name: str, host: str, port: int,
                 security: str) -> str:
    pw = tmp / f"{name}.pw"
    pw.write_text(bed.user("dave").password + "\n")
    pw.chmod(0o600)
    insecure = ", allow_insecure_auth = true" if security == "none" else ""
    return (f'[[accounts]]\nname = "{name}"\naddress = "dave@example.test"\nusername = "dave"\n'
            f'password_file = "{pw}"\nca_file = "{bed.ca_pem}"\ntimeout = "3s"\n'
            f'pop3 = {{ host = "{host}", port = {port}, security = "{security}"{insecure} }}\n')


async def test_daemon_pop3_series_and_doctor_once(testbed: MailTestBed, tmp_path: Path) -> None:
    port = free_port()
    config = daemon_config(
        tmp_path, port,
        pop3_account(testbed, tmp_path, "good", testbed.host, testbed.pop3s_port, "tls"),
        pop3_account(testbed, tmp_path, "plain", PRIVATE_HOST, testbed.pop3_private_port,
                     "none"),
        interval="1s",
    )
    async with running_daemon(config, port) as daemon:
        metrics = await daemon.metrics()
        for target in ("good", "plain"):
            assert value(metrics, "mailcanary_probe_success", probe="pop3",
                         target=target) is not None
            for phase in PROBES["pop3"].preset_phases(load_config(config), target):
                assert value(metrics, "mailcanary_probe_phase_duration_seconds", probe="pop3",
                             target=target, phase=phase) is not None

        async def three_runs() -> bool:
            m = await daemon.metrics()
            return (value(m, "mailcanary_probes_total", probe="pop3", target="plain") or 0) >= 3 \
                and value(m, "mailcanary_probe_success", probe="pop3", target="good") == 1
        await daemon.wait_for(three_runs, 30, "three runs of the plain-text pop3 probe")
        m = await daemon.metrics()
        assert (value(m, "mailcanary_probe_phase_duration_seconds", probe="pop3",
                      target="good", phase="select") or 0) > 0
        assert (value(m, "mailcanary_probe_failures_total", probe="pop3", target="plain",
                      reason="tls_required", **{"class": "tls"}) or 0) >= 3
        await daemon.stop()
    doctor = [e for e in daemon.logs() if e.get("event") == "doctor"]
    assert len(doctor) == 1, doctor  # cached for the rest of this config's life
    assert doctor[0]["suggestion"] == {"port": testbed.pop3_private_port, "security": "starttls"}
    plain = daemon.probe_lines("pop3", "plain")
    assert len(plain) >= 3 and all(e["reason"] == "tls_required" for e in plain)
