"""The deployment assets bound what the daemon may take: the systemd unit's resource
limits (descriptors, memory, tasks), each explained, and the Kubernetes manifest's
restricted security context and NetworkPolicy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "systemd" / "mailcanary.service"
MANIFEST = ROOT / "deploy" / "kubernetes" / "statefulset.yaml"


def _size(value: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(value[:-1]) * units[value[-1]] if value[-1] in units else int(value)


def test_unit_limits_descriptors_memory_and_tasks() -> None:
    lines = UNIT.read_text(encoding="utf-8").splitlines()
    settings = {line.split("=", 1)[0]: line.split("=", 1)[1] for line in lines
                if "=" in line and not line.startswith(("#", ";"))}
    # Above 1,024 (the default that ran out) and far above 64 web + probe sockets.
    assert int(settings["LimitNOFILE"].split(":")[0]) >= 4096
    assert 256 << 20 < _size(settings["MemoryMax"]) <= 4 << 30
    assert _size(settings["MemoryHigh"]) < _size(settings["MemoryMax"])
    assert 32 < int(settings["TasksMax"]) <= 1024
    for key in ("LimitNOFILE", "MemoryMax", "TasksMax"):
        at = next(i for i, line in enumerate(lines) if line.startswith(f"{key}="))
        assert lines[at - 1].startswith("#") or lines[at - 2].startswith("#"), key


def _docs() -> dict[str, dict[str, Any]]:
    return {doc["kind"]: doc for doc in yaml.safe_load_all(MANIFEST.read_text())}


def test_statefulset_is_restricted() -> None:
    pod = _docs()["StatefulSet"]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    for container in pod["containers"]:
        ctx = container["securityContext"]
        assert ctx["allowPrivilegeEscalation"] is False
        assert ctx["readOnlyRootFilesystem"] is True
        assert ctx["capabilities"] == {"drop": ["ALL"]}
        assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert {"/var/lib/mailcanary", "/tmp"} <= mounts  # writable places it needs
        state_dir = {e["name"]: e.get("value") for e in container["env"]}
        assert state_dir["MAILCANARY_DAEMON__STATE_DIR"] == "/var/lib/mailcanary"


def test_network_policy_lets_in_only_the_scraper() -> None:
    docs = _docs()
    policy = docs["NetworkPolicy"]["spec"]
    labels = docs["StatefulSet"]["spec"]["template"]["metadata"]["labels"]
    assert policy["podSelector"]["matchLabels"].items() <= labels.items()
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
    [rule] = policy["ingress"]
    assert rule["from"], "ingress from anywhere"
    assert [p["port"] for p in rule["ports"]] == [9782]
    egress = {(p["protocol"], p["port"]) for r in policy["egress"] for p in r["ports"]}
    assert {("UDP", 53), ("TCP", 53), ("TCP", 993), ("TCP", 587), ("TCP", 443)} <= egress
