"""deploy/kubernetes.yaml: probes hit real routes, ports line up with the image, the resources
follow the sizing rule from the worker settings, and the security context matches the image."""

from __future__ import annotations

from typing import Any

import pytest

from app.settings import Settings
from tests.deploy import files

PROBES = ("startupProbe", "readinessProbe", "livenessProbe")


def probe_gets() -> list[dict]:
    c = files.container()
    return [c[name]["httpGet"] for name in PROBES if name in c]


def named_ports() -> dict[str, int]:
    return {p["name"]: p["containerPort"] for p in files.container()["ports"]}


def resolve(port: int | str) -> int:
    return named_ports()[port] if isinstance(port, str) else port


def test_one_deployment_and_one_service():
    assert set(files.manifests()) == {"Deployment", "Service"}


def test_readiness_and_liveness_probes_exist():
    c = files.container()
    assert "readinessProbe" in c and "livenessProbe" in c


@pytest.mark.integration
def test_every_probe_path_is_a_real_route_answering_200(served):
    for get in probe_gets():
        response = served.get(get["path"])
        assert response.status_code == 200, (get["path"], response.status_code)


def test_probe_ports_are_the_served_port():
    served_port = int(files.container_env()["TP_PORT"])
    assert {resolve(g["port"]) for g in probe_gets()} == {served_port}


def test_container_port_matches_the_image():
    assert set(named_ports().values()) == {int(files.env()["TP_PORT"])}
    assert files.args_of("EXPOSE") == [str(p) for p in named_ports().values()]


def test_service_targets_the_pods_and_their_port():
    deployment, service = files.manifests()["Deployment"], files.manifests()["Service"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    for port in service["spec"]["ports"]:
        assert resolve(port["targetPort"]) in named_ports().values()


def test_env_names_are_real_settings_with_valid_values(monkeypatch):
    fields = {f"TP_{name.upper()}" for name in Settings.model_fields}
    env = files.container_env()
    assert set(env) - fields <= {"TP_HOST", "TP_PORT"}, sorted(set(env) - fields)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    Settings()  # raises on a value the app would refuse at start-up


def settings_in_pod() -> Settings:
    env = files.container_env()
    image = {k: v for k, v in files.env().items() if k.startswith("TP_")}
    merged = {**image, **env}
    values: dict[str, Any] = {
        k[3:].lower(): v for k, v in merged.items() if k[3:].lower() in Settings.model_fields
    }
    return Settings(**values)  # strings, as the environment gives them: Settings parses them


def test_memory_limit_covers_every_concurrent_run_at_its_budget():
    # The sizing rule written out at the top of the manifest.
    s = settings_in_pod()
    res = files.container()["resources"]
    request = files.quantity_mib(res["requests"]["memory"])
    limit = files.quantity_mib(res["limits"]["memory"])
    assert limit >= request + s.max_concurrent_runs * s.memory_budget_mb


def test_cpu_limit_gives_each_concurrent_run_a_core():
    s = settings_in_pod()
    res = files.container()["resources"]
    assert files.quantity_cpu(res["limits"]["cpu"]) >= s.max_concurrent_runs
    assert files.quantity_cpu(res["requests"]["cpu"]) <= files.quantity_cpu(res["limits"]["cpu"])


def test_quantities_parse_binary_units():
    assert files.quantity_mib("2560Mi") == 2560 and files.quantity_mib("2Gi") == 2048
    assert files.quantity_cpu("500m") == 0.5 and files.quantity_cpu("4") == 4
    with pytest.raises(ValueError):
        files.quantity_mib("512M")


def test_security_context_matches_the_image_user():
    pod = files.manifests()["Deployment"]["spec"]["template"]["spec"]["securityContext"]
    uid, _, gid = files.args_of("USER")[0].partition(":")
    assert pod["runAsNonRoot"] is True
    assert pod["runAsUser"] == int(uid) and pod["runAsGroup"] == int(gid or uid)
    assert pod["seccompProfile"]["type"] == "RuntimeDefault"
    ctx = files.container()["securityContext"]
    assert ctx["allowPrivilegeEscalation"] is False and ctx["capabilities"]["drop"] == ["ALL"]


def test_read_only_root_has_a_writable_tmp():
    ctx = files.container()["securityContext"]
    mounts = {m["mountPath"] for m in files.container().get("volumeMounts", [])}
    assert not ctx.get("readOnlyRootFilesystem") or "/tmp" in mounts
