"""The fleet view's metrics from the `mailcanary run` subprocess: target_info with server,
provider and the account's labels, failure_info while a target fails, the configured
interval, and still at most 15 series per target at start-up at 1,000 labelled accounts."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.helpers.daemon_support import daemon_config, free_port, running_daemon, value
from tests.helpers.faults import Script, fake_server
from tests.helpers.support import endpoint

MAX_SERIES_PER_TARGET = 15  # at start-up, histogram buckets aside (contract)
LABELS = {f"l{i}": f"value {i} \"quoted\"" for i in range(7)}  # 7 + team: the maximum 8


def big_fleet(count: int) -> str:
    """`count` accounts with IMAP and POP3 over STARTTLS and OAuth2 (the most phases a
    login target has), SMTP, 8 labels each; a route between each pair."""
    labels = ", ".join(f'{k} = "{v.replace(chr(34), chr(92) + chr(34))}"'
                       for k, v in LABELS.items())
    parts = []
    for i in range(count):
        parts.append(
            f'[[accounts]]\nname = "u{i:04d}"\naddress = "u{i:04d}@example.test"\n'
            'oauth2 = { token_url = "http://127.0.0.1:9/token", client_id = "c", '
            'refresh_token_env = "FLEET_TOKEN" }\n'
            f'labels = {{ team = "t{i % 10}", {labels} }}\n'
            'imap = { host = "127.0.0.1", port = 9, security = "starttls" }\n'
            'pop3 = { host = "127.0.0.1", port = 9, security = "starttls" }\n'
            'smtp = { host = "127.0.0.1", port = 9, security = "starttls" }\n'
        )
    parts += [f'[[routes]]\nfrom = "u{i:04d}"\nto = "u{i + 1:04d}"\ninterval = "1h"\n'
              for i in range(0, count, 2)]
    return "".join(parts)


async def test_a_thousand_labelled_accounts_keep_to_15_series(tmp_path: Path) -> None:
    port = free_port()
    config = daemon_config(tmp_path, port, big_fleet(1000), interval="1h")
    async with running_daemon(config, port, env={"FLEET_TOKEN": "t"}) as daemon:
        metrics = await daemon.metrics()
        text = await daemon.metrics_text()
        code, _ = await daemon.stop()
        assert code == 0
    per_target: Counter[tuple[str, str]] = Counter()
    for name, samples in metrics.items():
        if name.endswith("_bucket"):
            continue
        for labels, _ in samples:
            if "target" in labels:
                per_target[labels["probe"], labels["target"]] += 1
    assert len(per_target) == 3000 + 500
    # Targets untouched yet: not run, and not backing off because another probe of the
    # same account failed (mailcanary_probe_backoff_factor appears only then). The scrape
    # is written in slices, so a run may end between two families: failure_info counts.
    touched = {(lb["probe"], lb["target"]) for lb, v in metrics["mailcanary_probes_total"] if v}
    for name in ("mailcanary_probe_backoff_factor", "mailcanary_probe_failure_info"):
        touched |= {(lb["probe"], lb["target"]) for lb, _ in metrics.get(name, [])}
    fresh = {key: n for key, n in per_target.items() if key not in touched}
    assert len(fresh) > 3000, len(fresh)  # start-up spreads the first runs over a minute
    assert max(fresh.values()) <= MAX_SERIES_PER_TARGET, Counter(fresh.values())
    imap = value(metrics, "mailcanary_target_info", probe="imap", target="u0007")
    assert imap == 1.0
    [family] = [f for f in text_string_to_metric_families(text)
                if f.name == "mailcanary_target_info"]  # the real parser: escaped values
    info = {(x.labels["probe"], x.labels["target"]): x.labels for x in family.samples}
    assert info["imap", "u0007"] == {"probe": "imap", "target": "u0007",
                                     "server": "127.0.0.1:9", "provider": "", "team": "t7",
                                     **LABELS}
    # A route takes its receiving account's labels and its IMAP server.
    assert info["roundtrip", "u0006-to-u0007"]["team"] == "t7"
    assert info["roundtrip", "u0006-to-u0007"]["server"] == "127.0.0.1:9"
    assert value(metrics, "mailcanary_probe_interval_seconds", probe="smtp",
                 target="u0001") == 3600
    assert value(metrics, "mailcanary_delivery_duration_seconds_count", probe="roundtrip",
                 target="u0000-to-u0001") == 0


async def test_failure_info_follows_the_last_result(tmp_path: Path) -> None:
    script = Script("imap", login_reply="NO [AUTHENTICATIONFAILED] Invalid credentials")
    port = free_port()
    async with fake_server(script) as imap_port:
        account = (
            '[[accounts]]\nname = "flaky"\naddress = "flaky@example.test"\n'
            'password = "Info-Secret-1"\ntimeout = "3s"\nprovider = "gmail"\n'
            f"imap = {endpoint('127.0.0.1', imap_port)}\n"
            'labels = { team = "sales", site = "osaka" }\n'
        )
        config = daemon_config(tmp_path, port, account, interval="1s")
        async with running_daemon(config, port) as daemon:
            before = await daemon.metrics()
            assert "mailcanary_probe_failure_info" not in before  # not run yet: not failing

            async def failing() -> bool:
                m = await daemon.metrics()
                return value(m, "mailcanary_probe_failure_info", probe="imap",
                             target="flaky", **{"class": "auth"}) == 1.0
            await daemon.wait_for(failing, 15, "failure_info")
            failed = await daemon.metrics()
            script.login_reply = "OK"

            async def recovered() -> bool:
                m = await daemon.metrics()
                return value(m, "mailcanary_probe_success", probe="imap", target="flaky") == 1
            await daemon.wait_for(recovered, 15, "a success")
            after = await daemon.metrics()
            code, _ = await daemon.stop()
            assert code == 0
    [(labels, _)] = failed["mailcanary_probe_failure_info"]
    assert labels == {"probe": "imap", "target": "flaky", "class": "auth",
                      "reason": "invalid_credentials", "phase": "auth"}
    assert after.get("mailcanary_probe_failure_info", []) == []
    [(info, _)] = after["mailcanary_target_info"]
    assert info == {"probe": "imap", "target": "flaky", "server": f"127.0.0.1:{imap_port}",
                    "provider": "gmail", "team": "sales", "site": "osaka"}
    assert value(after, "mailcanary_probe_interval_seconds", probe="imap", target="flaky") == 1
