"""deploy/compose.yaml cannot run here (no Docker engine): it is read instead, and must start what
deploy/replicas.sh starts: as many replicas, on the port their health checker polls, the same
nginx template with the same two names filled in, and the same health checker and route."""

from __future__ import annotations

import re
import shutil
import string
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.deploy import files
from tests.deploy.stack import load_healthcheck

DEPLOY = files.ROOT / "deploy"
COMPOSE: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
TEMPLATE = (DEPLOY / "nginx.conf.template").read_text()


HC = load_healthcheck()


def script_default(name: str) -> str:
    match = re.search(rf"\b{name}=(\S+)", (DEPLOY / "replicas.sh").read_text())
    assert match, name
    return match.group(1)


def replica_services() -> dict[str, dict[str, Any]]:
    return {n: s for n, s in SERVICES.items() if n.startswith("replica")}


def checker_args() -> dict[str, list[str]]:
    command = SERVICES["healthcheck"]["command"]
    args: dict[str, list[str]] = {}
    for flag, value in zip(command[2::2], command[3::2], strict=True):
        args.setdefault(flag, []).append(value)
    return args


def test_as_many_replicas_as_the_script_starts_by_default():
    assert len(replica_services()) == int(script_default("replicas")) == 3


def test_the_checker_polls_every_replica_on_the_port_it_serves():
    expected = {f"{name}:{s['environment']['TP_PORT']}" for name, s in replica_services().items()}
    assert set(checker_args()["--replica"]) == expected
    assert SERVICES["healthcheck"]["command"][:2] == ["python", "/deploy/healthcheck.py"]
    assert "./healthcheck.py:/deploy/healthcheck.py:ro" in SERVICES["healthcheck"]["volumes"]


def test_replicas_are_healthy_by_the_checkers_route():
    for service in replica_services().values():
        probe = " ".join(service["healthcheck"]["test"])
        assert f"127.0.0.1:{service['environment']['TP_PORT']}{HC.HEALTH_PATH}" in probe


def test_nginx_gets_the_same_template_and_the_checkers_state_folder():
    balancer, checker = SERVICES["balancer"], SERVICES["healthcheck"]
    env = balancer["environment"]
    mounted = {v.split(":")[0]: v.split(":")[1] for v in balancer["volumes"]}
    template_dir = env["NGINX_ENVSUBST_TEMPLATE_DIR"]
    assert mounted["./nginx.conf.template"] == f"{template_dir}/nginx.conf.template"
    assert env["NGINX_ENVSUBST_OUTPUT_DIR"] == "/etc/nginx"  # it becomes nginx.conf
    assert checker_args()["--state"] == [env["TP_LB_STATE"]] == [mounted["lb"]]
    assert "lb:" + env["TP_LB_STATE"] in checker["volumes"]
    assert balancer["ports"] == [f"{env['TP_LB_PORT']}:{env['TP_LB_PORT']}"]
    assert balancer["pid"] == "service:healthcheck"  # so the checker's SIGHUP reaches nginx


def test_the_template_fills_only_the_two_names_both_sides_set():
    names = set(re.findall(r"\$\{(\w+)\}", TEMPLATE))
    assert names == {"TP_LB_PORT", "TP_LB_STATE"}
    assert {n for n in SERVICES["balancer"]["environment"] if n.startswith("TP_LB_")} == names
    assert all(n.startswith(SERVICES["balancer"]["environment"]["NGINX_ENVSUBST_FILTER"]) for n in names)
    assert f"upstream {HC.UPSTREAM_NAME}" not in TEMPLATE  # the checker writes that block
    assert f"proxy_pass http://{HC.UPSTREAM_NAME};" in TEMPLATE
    assert f"include ${{TP_LB_STATE}}/{HC.UPSTREAM_FILE};" in TEMPLATE


def test_the_rendered_template_is_a_valid_nginx_config(tmp_path: Path):
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"  # scripts/setup.sh installs it
    conf = string.Template(TEMPLATE).safe_substitute(TP_LB_PORT="18080", TP_LB_STATE=str(tmp_path))
    (tmp_path / "nginx.conf").write_text(conf)
    replicas = [HC.Replica("127.0.0.1:18001", up=True), HC.Replica("127.0.0.1:18002")]
    opts = HC.Options(tmp_path, tmp_path / "nginx.pid", 1.0, 1.0, 2, 2, 5)
    (tmp_path / HC.UPSTREAM_FILE).write_text(HC.upstream_text(replicas, opts))
    done = subprocess.run(
        [nginx, "-t", "-q", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"), "-e", "stderr"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
