"""Inbound watches in `mailcanary run`: series from start-up, the delivery histogram and
placement counter under the watch's name, each outcome in the metrics, triggers no more
often than the interval (also while failing) and no bearer token in logs or scrape."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from mailcanary.daemon.metrics import PLACEMENTS
from mailcanary.testbed import MailTestBed
from tests.helpers.daemon_support import (
    bed_account,
    daemon_config,
    free_port,
    promtool_check,
    running_daemon,
    value,
)
from tests.helpers.mailapp import mail_app

pytestmark = pytest.mark.testbed

BEARER = "Daemon-Bearer-5e8a1f07"
INTERVAL = 3.0


def of_watch(name: str) -> dict[str, str]:
    """A watch's series labels (v3: probe and target, no route label)."""
    return {"probe": "inbound", "target": name}


def watch(name: str, url: str) -> str:
    deadline = "1s" if name == "signup-never" else "5s"
    slo = "1s" if name == "signup-delay" else "3s"
    keep = 'cleanup = "keep"\n' if name == "signup-delay" else ""  # for the passive watch
    return (
        f'[[inbound]]\nname = "{name}"\naccount = "dave"\ninterval = "{INTERVAL:g}s"\n'
        f'deadline = "{deadline}"\nslo = "{slo}"\n{keep}'
        'match = { subject = "verify", body = "token\\\\s+{token}" }\n'
        f'trigger = {{ url = "{url}", body = \'{{"email": "{{address}}", "token": "{{token}}"}}\','
        ' bearer_token_env = "APP_TOKEN" }\n'
    )


async def test_inbound_watches_in_the_daemon(testbed: MailTestBed, tmp_path: Path) -> None:
    port = free_port()
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    names = {"signup-ok": "normal", "signup-spam": "spam", "signup-fail": "fail",
             "signup-never": "never", "signup-delay": "delay"}
    passive = ('[[inbound]]\nname = "any-signup-mail"\naccount = "dave"\ndeadline = "1h"\n'
               'match = { subject = "verify" }\ncleanup = "keep"\ninterval = "1s"\n')
    async with mail_app(testbed, bearer=BEARER, delay=1.5) as app:
        config = daemon_config(
            tmp_path, port, bed_account(testbed, "dave", "dave", secrets, smtp=False),
            *(watch(name, app.url(mode)) for name, mode in names.items()), passive,
        )
        async with running_daemon(config, port, env={"APP_TOKEN": BEARER}) as daemon:
            started = time.monotonic()
            first = await daemon.metrics()
            for name in [*names, "any-signup-mail"]:
                assert value(first, "mailcanary_probe_success", probe="inbound",
                             target=name) is not None
                # At most 15 series at start-up: phases come with the first run, failure
                # counters with the first failure (contract).
                series = [n for n, samples in first.items() for labels, _ in samples
                          if labels.get("target") == name]
                assert len([n for n in series if "_bucket" not in n]) <= 15, sorted(series)
                for placement in PLACEMENTS:
                    assert value(first, "mailcanary_canaries_total", **of_watch(name),
                                 placement=placement) is not None
                assert value(first, "mailcanary_delivery_duration_seconds_count",
                             **of_watch(name)) is not None

            async def all_seen() -> bool:
                m = await daemon.metrics()
                return bool(
                    value(m, "mailcanary_probe_success", **of_watch("signup-ok"))
                    == 1
                    and (value(m, "mailcanary_canaries_total", **of_watch("signup-ok"),
                               placement="inbox") or 0) >= 2
                    and (value(m, "mailcanary_canaries_total", **of_watch("signup-spam"),
                               placement="spam") or 0) >= 1
                    and (value(m, "mailcanary_probe_failures_total", probe="inbound",
                               target="signup-fail", reason="trigger_failed") or 0) >= 2
                    and (value(m, "mailcanary_canaries_total", **of_watch("signup-never"),
                               placement="missing") or 0) >= 1
                    and (value(m, "mailcanary_probe_failures_total", probe="inbound",
                               target="signup-delay", reason="delayed") or 0) >= 1
                    and value(m, "mailcanary_probe_success", probe="inbound",
                              target="any-signup-mail") == 1
                )
            await daemon.wait_for(all_seen, 40, "every inbound outcome in the metrics")
            metrics = await daemon.metrics()
            elapsed = time.monotonic() - started
            hits = dict(app.hits)
            scrape = await daemon.metrics_text()
            code, said = await promtool_check(scrape)
            assert code == 0 and said.strip() == "", said
            assert (value(metrics, "mailcanary_delivery_duration_seconds_count",
                          **of_watch("signup-ok")) or 0) >= 2
            assert (value(metrics, "mailcanary_probe_failures_total", probe="inbound",
                          target="signup-spam", reason="spam_folder") or 0) >= 1
            for placement in PLACEMENTS:  # a failed trigger sent nothing that could be lost
                assert value(metrics, "mailcanary_canaries_total", **of_watch("signup-fail"),
                             placement=placement) == 0
            assert value(metrics, "mailcanary_delivery_duration_seconds_count",
                         **of_watch("any-signup-mail")) == 0  # passive: an age, no delivery time
            failed = daemon.probe_lines("inbound", "signup-fail")
            assert failed and failed[-1]["phase"] == "trigger" and "HTTP 500" in failed[-1][
                "detail"]
            exit_code, _ = await daemon.stop()
            assert exit_code == 0
            logs = daemon.log_path.read_text()
    # Started within the first interval, then at most one trigger per interval each.
    for mode in names.values():
        assert 1 <= hits.get(mode, 0) <= elapsed / INTERVAL + 2, (hits, elapsed)
    assert BEARER not in logs and BEARER not in scrape
    assert all(r["headers"]["authorization"] == f"Bearer {BEARER}" for r in app.requests)
