"""The domain kind through the command line and the daemon: `check --domain`, the schedule,
the metrics (the MX certificate's expiry among them)."""

from __future__ import annotations

import json
from pathlib import Path

from mailcanary.config import config_from_dict
from mailcanary.daemon.app import Daemon
from mailcanary.daemon.exposition import render_chunks
from tests.helpers.domains import GOOD_IP, World
from tests.helpers.support import check_json


def write(world: World, tmp_path: Path) -> Path:
    doms = "".join(
        f'[[domains]]\nname = "{name}"\ndomain = "{domain}.dom.test"\n'
        f'ca_file = "{world.ca_pem}"\ndnsbl = ["bl.dom.test"]\nsending_ips = ["{GOOD_IP}"]\n'
        f"checks = {json.dumps(checks)}\n\n"
        for name, domain, checks in (("good", "good", ["mx", "mx_tls", "spf", "dmarc"]),
                                     ("broken", "nospf", ["spf", "dmarc"])))
    path = tmp_path / "c.toml"
    path.write_text(f'[daemon]\nstate_dir = "{tmp_path}"\nnameservers = ["{world.nameserver}"]'
                    f"\n\n{doms}")
    return path


async def test_check_selects_a_domain(world: World, tmp_path: Path) -> None:
    config = write(world, tmp_path)
    code, rows, output = await check_json(config, "--domain", "good")
    assert code == 0, output
    [row] = rows
    assert (row["probe"], row["target"], row["ok"]) == ("domain", "good", True)
    assert list(row["checks"]) == ["mx", "mx_tls", "spf", "dmarc"]
    code, rows, output = await check_json(config)  # no selection runs every domain too
    assert code == 1, output
    assert sorted((r["target"], r["ok"], r["reason"]) for r in rows) == [  # as each ends
        ("broken", False, "spf_missing"), ("good", True, "ok")]
    code, rows, output = await check_json(config, "--domain", "nope")
    assert code == 2 and "no domain named 'nope'" in output, output


async def test_the_daemon_schedules_and_exports_it(world: World, tmp_path: Path) -> None:
    config = config_from_dict({
        "daemon": {"state_dir": str(tmp_path), "nameservers": [world.nameserver]},
        "domains": [{"name": "good", "domain": "good.dom.test", "ca_file": str(world.ca_pem),
                     "checks": ["mx", "mx_tls"]},
                    {"name": "broken", "domain": "nospf.dom.test", "checks": ["spf"],
                     "interval": "10m"}]})
    daemon = Daemon(tmp_path / "unused.toml", config)
    specs = daemon.scheduler.start()
    try:
        assert {s.job_id: s.interval for s in specs} == {"domain:good": 3600.0,
                                                         "domain:broken": 600.0}
        daemon._add_series(specs)
        results = [await daemon.scheduler.run_now("domain", name) for name in ("good", "broken")]
    finally:
        await daemon.scheduler.stop(1.0)
    for result in results:
        daemon.metrics.record(result)
    text = "".join(render_chunks(daemon.metrics))
    name = 'mailcanary_tls_cert_expiry_timestamp_seconds{probe="domain",target="good"} '
    [expiry] = [line[len(name):] for line in text.splitlines() if line.startswith(name)]
    assert float(expiry) == world.good_expiry  # the MX certificate's notAfter
    assert 'mailcanary_probe_success{probe="domain",target="good"} 1' in text
    assert 'mailcanary_probe_success{probe="domain",target="broken"} 0' in text
    assert ('mailcanary_probe_failures_total{probe="domain",target="broken",'
            'class="dns_policy",reason="spf_missing"} 1') in text
