"""Static checks of docker-compose.yml, Dockerfile and .env.example.

CI has no Docker engine, so the compose stack is never started here. Instead:
the file is validated against the Compose Specification schema, and its structure
is checked for what penstat relies on (services, CeleryExecutor, the shared
PENSTAT_HOME mount, the penstat_warehouse pool, no secret with a default).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from penstat.core.locations import REPO_ROOT

ROOT = REPO_ROOT
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"
LOCK = ROOT / "requirements.lock"

COMMON = "x-airflow-common"
AIRFLOW_SERVICES = (
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
    "airflow-init",
)
EXPECTED_SERVICES = ("postgres", "redis", *AIRFLOW_SERVICES)
# Long-running services that must wait for airflow-init to finish.
RUNTIME_SERVICES = tuple(s for s in AIRFLOW_SERVICES if s != "airflow-init")

PENSTAT_HOME = "/opt/penstat/home"
POOL = "penstat_warehouse"

# A required variable: ${NAME:?message}. Compose refuses to run while NAME is unset
# or empty, and there is no default to fall back on.
REQUIRED_REF = r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*):\?[^}]*\}"
REQUIRED_REF_RE = re.compile(REQUIRED_REF)
# Environment variable names that hold a secret.
SECRET_NAME_RE = re.compile(r"PASSWORD|SECRET|FERNET|PSEUDONYM_KEY|JWT|TOKEN", re.IGNORECASE)
# Environment variables that hold a URL with credentials in it.
URL_NAME_RE = re.compile(r"SQL_ALCHEMY_CONN|RESULT_BACKEND|BROKER_URL|_URI$|_URL$")
USERINFO_RE = re.compile(r"^[a-z0-9+.-]+://(?P<user>[^:@/]*):(?P<password>.*)@[^@]*$", re.I)


# --- helpers ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose_text() -> str:
    return COMPOSE.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def compose(compose_text: str) -> dict[str, Any]:
    data = yaml.safe_load(compose_text)
    assert isinstance(data, dict), "docker-compose.yml is not a mapping"
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as a dict (compose allows a mapping or a NAME=value list)."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def node_value(mapping: yaml.MappingNode, key: str) -> yaml.Node | None:
    for k, v in mapping.value:
        if isinstance(k, yaml.ScalarNode) and k.value == key:
            return v
    return None


def merged_nodes(mapping: yaml.MappingNode) -> list[yaml.Node]:
    """The nodes merged into a mapping with `<<:` (a single node or a sequence of them)."""
    out: list[yaml.Node] = []
    for k, v in mapping.value:
        if k.tag == "tag:yaml.org,2002:merge" or (
            isinstance(k, yaml.ScalarNode) and k.value == "<<"
        ):
            out.extend(v.value if isinstance(v, yaml.SequenceNode) else [v])
    return out


def service_command(service: dict[str, Any]) -> str:
    cmd = service.get("command", "")
    return " ".join(cmd) if isinstance(cmd, list) else str(cmd)


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {d: "service_started" for d in deps}
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


# --- (a) the Compose Specification schema -------------------------------------------


def test_compose_file_matches_the_compose_spec_schema() -> None:
    exe = Path(sys.executable).parent / "check-jsonschema"
    assert exe.exists(), f"check-jsonschema not installed next to {sys.executable} (dev extra)"
    proc = subprocess.run(
        [str(exe), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


# --- (b) structure ------------------------------------------------------------------


def test_expected_services_exist(services: dict[str, Any]) -> None:
    missing = [s for s in EXPECTED_SERVICES if s not in services]
    assert not missing, f"services missing from docker-compose.yml: {missing}"


def test_every_airflow_service_merges_the_common_anchor(compose_text: str) -> None:
    root = yaml.compose(compose_text)
    assert isinstance(root, yaml.MappingNode)
    common = node_value(root, COMMON)
    assert isinstance(common, yaml.MappingNode), f"no {COMMON} mapping"
    services_node = node_value(root, "services")
    assert isinstance(services_node, yaml.MappingNode)
    airflow_like = [
        k.value
        for k, _ in services_node.value
        if k.value.startswith("airflow-") or k.value == "flower"
    ]
    assert set(AIRFLOW_SERVICES) <= set(airflow_like)
    for name in airflow_like:
        node = node_value(services_node, name)
        assert isinstance(node, yaml.MappingNode)
        # An alias resolves to the very node the anchor names.
        assert any(m is common for m in merged_nodes(node)), (
            f"{name} does not merge <<: *airflow-common"
        )


def test_airflow_services_build_the_project_image(services: dict[str, Any]) -> None:
    for name in AIRFLOW_SERVICES:
        build = services[name].get("build")
        context = build.get("context") if isinstance(build, dict) else build
        assert context in (".", "./"), f"{name} does not build ./Dockerfile (build: {build!r})"


def test_executor_is_celery_everywhere(services: dict[str, Any]) -> None:
    for name in AIRFLOW_SERVICES:
        env = environment(services[name])
        assert env.get("AIRFLOW__CORE__EXECUTOR") == "CeleryExecutor", name
        assert env.get("AIRFLOW__CELERY__BROKER_URL", "").startswith("redis://"), name
        assert env.get("AIRFLOW__CELERY__RESULT_BACKEND", "").startswith(
            "db+postgresql+psycopg2://"), name
        assert env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "").startswith(
            "postgresql+psycopg2://"
        ), name


def test_airflow_settings_for_penstat(services: dict[str, Any]) -> None:
    for name in AIRFLOW_SERVICES:
        env = environment(services[name])
        assert env.get("AIRFLOW__CORE__DAGS_FOLDER") == "/opt/penstat/dags", name
        assert env.get("AIRFLOW__CORE__LOAD_EXAMPLES", "").lower() == "false", name
        assert env.get("AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION", "").lower() == "false", name
        assert env.get("AIRFLOW__CORE__EXECUTION_API_SERVER_URL") == (
            "http://airflow-apiserver:8080/execution/"
        ), name
        assert env.get("AIRFLOW__CORE__AUTH_MANAGER"), f"{name}: no auth manager configured"
        assert env.get("PENSTAT_HOME") == PENSTAT_HOME, name
        assert REQUIRED_REF_RE.fullmatch(env.get("PENSTAT_PSEUDONYM_KEY", "")), (
            f"{name}: PENSTAT_PSEUDONYM_KEY must be a required ${{VAR:?...}} reference"
        )


def test_worker_is_scalable(services: dict[str, Any]) -> None:
    worker = services["airflow-worker"]
    assert "container_name" not in worker, "a container_name prevents --scale airflow-worker=N"
    assert service_command(worker).split()[:2] == ["celery", "worker"]
    # Fixed host ports would also clash between replicas.
    assert not worker.get("ports"), "the worker publishes host ports: replicas would clash"


def test_no_service_pins_a_container_name(services: dict[str, Any]) -> None:
    named = [name for name, svc in services.items() if "container_name" in svc]
    assert not named, f"container_name set on {named}"


def test_airflow_commands(services: dict[str, Any]) -> None:
    expected = {
        "airflow-apiserver": "api-server",
        "airflow-scheduler": "scheduler",
        "airflow-dag-processor": "dag-processor",
        "airflow-triggerer": "triggerer",
    }
    for name, command in expected.items():
        assert service_command(services[name]) == command, name


def test_penstat_home_is_mounted_in_every_airflow_service(services: dict[str, Any]) -> None:
    for name in AIRFLOW_SERVICES:
        targets = []
        for vol in services[name].get("volumes") or []:
            if isinstance(vol, dict):
                targets.append(vol.get("target"))
            else:
                # short syntax: [SOURCE:]TARGET[:MODE]; SOURCE may hold ${...:-...}
                parts = re.sub(r"\$\{[^}]*\}", "X", vol).split(":")
                targets.append(parts[1] if len(parts) > 1 else parts[0])
        assert PENSTAT_HOME in targets, f"{name} does not mount {PENSTAT_HOME}"


def test_init_creates_the_warehouse_pool_and_home_folders(services: dict[str, Any]) -> None:
    script = service_command(services["airflow-init"])
    assert re.search(rf"airflow pools set {POOL} 1\b", script), (
        f"airflow-init does not create the {POOL} pool with one slot"
    )
    for sub in ("inbox", "quarantine", "archive", "warehouse", "published"):
        assert f"{PENSTAT_HOME}/{sub}" in script, f"airflow-init does not create {sub}/"
    env = environment(services["airflow-init"])
    assert env.get("_AIRFLOW_DB_MIGRATE") == "true"


def test_depends_on_follows_the_official_pattern(services: dict[str, Any]) -> None:
    for name in AIRFLOW_SERVICES:
        deps = depends_on(services[name])
        assert deps.get("postgres") == "service_healthy", name
        assert deps.get("redis") == "service_healthy", name
    for name in RUNTIME_SERVICES:
        deps = depends_on(services[name])
        assert deps.get("airflow-init") == "service_completed_successfully", name
    assert depends_on(services["airflow-worker"]).get("airflow-apiserver") == "service_healthy"


@pytest.mark.parametrize(
    ("service", "probe"),
    [
        ("postgres", "pg_isready"),
        ("redis", "redis-cli"),
        ("airflow-apiserver", "/api/v2/version"),
    ],
)
def test_healthchecks(services: dict[str, Any], service: str, probe: str) -> None:
    check = services[service].get("healthcheck") or {}
    test = check.get("test")
    text = " ".join(test) if isinstance(test, list) else str(test or "")
    assert probe in text, f"{service} healthcheck does not use {probe}: {text!r}"
    assert not check.get("disable"), f"{service} healthcheck is disabled"


def test_optional_services_are_behind_profiles(services: dict[str, Any]) -> None:
    for name, svc in services.items():
        if name in EXPECTED_SERVICES:
            assert not svc.get("profiles"), f"{name} must start by default"
        else:
            assert svc.get("profiles"), f"extra service {name} should sit behind a profile"


# --- secrets ------------------------------------------------------------------------


def all_environments(compose: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows = [(COMMON, k, v) for k, v in environment(compose[COMMON]).items()]
    for name, svc in compose["services"].items():
        rows += [(name, k, v) for k, v in environment(svc).items()]
    return rows


def test_secret_variables_are_required_references(compose: dict[str, Any]) -> None:
    secrets = [(s, k, v) for s, k, v in all_environments(compose) if SECRET_NAME_RE.search(k)]
    names = {k for _, k, _ in secrets}
    # The check must actually see the secrets it is about.
    for expected in (
        "POSTGRES_PASSWORD",
        "AIRFLOW__CORE__FERNET_KEY",
        "AIRFLOW__API__SECRET_KEY",
        "AIRFLOW__API_AUTH__JWT_SECRET",
        "_AIRFLOW_WWW_USER_PASSWORD",
        "PENSTAT_PSEUDONYM_KEY",
    ):
        assert expected in names, f"{expected} is not set anywhere in docker-compose.yml"
    bad = [(s, k, v) for s, k, v in secrets if not REQUIRED_REF_RE.fullmatch(v)]
    assert not bad, f"secrets that are not a required ${{VAR:?...}} reference: {bad}"


def test_urls_carry_no_literal_password(compose: dict[str, Any]) -> None:
    checked = 0
    for service, key, value in all_environments(compose):
        if not URL_NAME_RE.search(key):
            continue
        m = USERINFO_RE.match(value)
        if not m:
            continue
        checked += 1
        password = m.group("password")
        assert password == "" or REQUIRED_REF_RE.fullmatch(password), (
            f"{service}: {key} has a literal password"
        )
    assert checked, "no credentialled URL found: the check saw nothing"


def test_no_default_credentials_in_text(compose_text: str) -> None:
    code = "\n".join(line.split("#", 1)[0] for line in compose_text.splitlines())
    assert not re.search(r"\b(\w+):\1@", code), "a user:user@ default login (airflow:airflow)"
    defaulted = re.findall(r"\$\{(\w+):?[-=][^}]*\}", code)
    secret_defaults = [name for name in defaulted if SECRET_NAME_RE.search(name)]
    assert not secret_defaults, f"secret variables with a default value: {secret_defaults}"


def strings(node: Any) -> list[str]:
    """Every string value (and key) in parsed YAML, comments excluded."""
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in (*strings(k), *strings(v))]
    if isinstance(node, list):
        return [s for item in node for s in strings(item)]
    return [node] if isinstance(node, str) else []


def test_env_example_lists_every_required_variable(compose: dict[str, Any]) -> None:
    required = {name for s in strings(compose) for name in REQUIRED_REF_RE.findall(s)}
    assert "PENSTAT_PSEUDONYM_KEY" in required
    example: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            example[key.strip()] = value.strip()
    missing = sorted(required - example.keys())
    assert not missing, f".env.example lacks {missing}"
    # Placeholders only: a real secret must never land in the repository.
    not_placeholder = sorted(k for k in required if example[k] != "change-me")
    assert not not_placeholder, f".env.example holds non-placeholder secrets: {not_placeholder}"


# --- (c) Dockerfile -----------------------------------------------------------------


def test_dockerfile_builds_on_the_pinned_official_airflow_image() -> None:
    froms = re.findall(r"^\s*FROM\s+(\S+)", DOCKERFILE.read_text(encoding="utf-8"), re.M | re.I)
    assert froms, "Dockerfile has no FROM"
    assert re.fullmatch(r"apache/airflow:3\.3\.2(-python3\.11)?", froms[0]), froms[0]
    lock_pin = re.search(r"^apache-airflow==(\S+)$", LOCK.read_text(encoding="utf-8"), re.M)
    assert lock_pin, "requirements.lock does not pin apache-airflow"
    assert froms[0].split(":", 1)[1].startswith(lock_pin.group(1)), (
        f"image {froms[0]} and lock apache-airflow=={lock_pin.group(1)} disagree"
    )


def test_dockerfile_installs_the_lock_and_the_project() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")  # joined lines
    assert re.search(r"pip install[^\n]*-r\s+\S*requirements\.lock", text)
    assert re.search(r"pip install[^\n]*-r\s+\S*requirements-celery\.lock", text)
    assert re.search(r"pip install[^\n]*--no-deps[^\n]*/opt/penstat", text)
    assert "AIRFLOW__CORE__DAGS_FOLDER=/opt/penstat/dags" in text


def test_dockerignore_keeps_secrets_and_local_data_out() -> None:
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*", ".dockerignore should start by excluding everything"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert not allowed & {".env", ".penstat", ".venv", ".git"}
    for package in ("penstat", "dags", "dbt_project", "config", "requirements.lock"):
        assert package in allowed, f"{package} does not reach the image"


# --- (d) safe defaults (SECURITY.md) -------------------------------------------------

# A published port in short syntax: [HOST_IP:]HOST_PORT:CONTAINER_PORT, where HOST_IP
# may be a ${VAR:-default} reference.
PORT_RE = re.compile(r"^(?:(?P<ip>\$\{[^}]*\}|[0-9.]+|\[[0-9a-f:]+\]):)?"
                     r"(?P<host>\$\{[^}]*\}|\d+):(?P<container>\d+)$")
LOOPBACK = "127.0.0.1"


def host_ip(port: Any) -> str | None:
    """The host address a published port binds to, with a ${VAR:-default} resolved to
    its default; None if it binds to every interface."""
    if isinstance(port, dict):
        return port.get("host_ip")
    m = PORT_RE.fullmatch(str(port))
    assert m, f"unrecognised port syntax {port!r}"
    ip = m.group("ip")
    if ip and ip.startswith("${"):
        default = re.fullmatch(r"\$\{\w+:-(?P<default>[^}]*)\}", ip)
        assert default, f"{port!r}: a host address variable needs a default"
        return default.group("default")
    return ip


def test_only_the_api_server_publishes_a_port_by_default(services: dict[str, Any]) -> None:
    published = sorted(name for name, svc in services.items()
                       if svc.get("ports") and not svc.get("profiles"))
    assert published == ["airflow-apiserver"]
    for svc in services.values():
        assert not svc.get("network_mode"), "host networking publishes every port"


def test_every_published_port_binds_to_loopback_by_default(services: dict[str, Any]) -> None:
    seen = 0
    for name, svc in services.items():
        for port in svc.get("ports") or []:
            seen += 1
            assert host_ip(port) == LOOPBACK, f"{name} publishes {port!r} beyond this machine"
    assert seen >= 2, "the check saw no port"
    [api_port] = services["airflow-apiserver"]["ports"]
    assert str(api_port).startswith("${AIRFLOW_API_BIND:-127.0.0.1}:")


def test_the_api_server_asks_for_a_login(compose: dict[str, Any],
                                         compose_text: str) -> None:
    env = environment(compose[COMMON])
    assert env["AIRFLOW__CORE__AUTH_MANAGER"].endswith("FabAuthManager")
    assert "ALL_ADMINS" not in compose_text, "every user an admin: no login at all"
    init = environment(compose["services"]["airflow-init"])
    assert REQUIRED_REF_RE.fullmatch(init["_AIRFLOW_WWW_USER_PASSWORD"])


def test_redis_requires_a_password_kept_off_the_command_line(services: dict[str, Any],
                                                             compose: dict[str, Any]) -> None:
    redis = services["redis"]
    env = environment(redis)
    assert REQUIRED_REF_RE.fullmatch(env["REDIS_PASSWORD"])
    assert REQUIRED_REF_RE.fullmatch(env["REDISCLI_AUTH"])  # for the health check
    script = service_command(redis)
    assert "requirepass" in script and "--requirepass" not in script, (
        "the password would be on redis-server's command line, visible to ps")
    assert "exec docker-entrypoint.sh redis-server" in script, "redis would run as root"
    assert not redis.get("ports"), "Redis must not be published"
    check = " ".join(redis["healthcheck"]["test"])
    assert "PONG" in check, "redis-cli ping exits 0 on NOAUTH: the check must look for PONG"
    broker = environment(compose[COMMON])["AIRFLOW__CELERY__BROKER_URL"]
    m = USERINFO_RE.match(broker)
    assert m and REQUIRED_REF_RE.fullmatch(m.group("password")), broker
    assert REQUIRED_REF_RE.fullmatch(m.group("password")).group("name") == "REDIS_PASSWORD"


def test_flower_is_off_by_default_and_asks_for_a_login(services: dict[str, Any],
                                                       compose: dict[str, Any]) -> None:
    flower = services["flower"]
    assert flower.get("profiles") == ["flower"]
    auth = environment(compose[COMMON])["AIRFLOW__CELERY__FLOWER_BASIC_AUTH"]
    user, _, password = auth.partition(":${")
    assert user and REQUIRED_REF_RE.fullmatch("${" + password), auth
    assert "FLOWER_PASSWORD" in password
    assert all(host_ip(p) == LOOPBACK for p in flower["ports"])
    assert "--user" in " ".join(flower["healthcheck"]["test"])


def test_init_creates_an_inbox_for_every_feed(services: dict[str, Any]) -> None:
    from penstat.contract.feeds import FEEDS

    script = service_command(services["airflow-init"])
    inboxes = set(re.findall(rf"{PENSTAT_HOME}/inbox/(\w+)", script))
    assert inboxes == set(FEEDS)
    assert re.search(rf"chmod 0?700 {PENSTAT_HOME}/warehouse\b", script)


def test_airflow_services_write_only_penstat_home_and_the_logs(
        services: dict[str, Any]) -> None:
    for name, svc in services.items():
        if not (name.startswith("airflow-") or name == "flower"):
            continue
        targets = set()
        for vol in svc.get("volumes") or []:
            parts = re.sub(r"\$\{[^}]*\}", "X", vol).split(":")
            targets.add(parts[1])
        assert targets <= {PENSTAT_HOME, "/opt/airflow/logs"}, (name, targets)
        assert not svc.get("privileged"), name


def dockerfile_instructions() -> list[str]:
    """Dockerfile instructions with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    return [line.strip() for line in text.splitlines()
            if line.strip() and not line.strip().startswith("#")]


def others_may_write(mode: str) -> bool:
    """Whether a chmod mode (octal or symbolic) lets the group or others write."""
    if mode.isdigit():
        return any(int(digit) & 2 for digit in mode[-2:])
    for clause in mode.split(","):
        m = re.fullmatch(r"(?P<who>[ugoa]*)(?P<op>[-+=])(?P<perms>[rwxXst]*)", clause)
        assert m, f"unrecognised chmod mode {mode!r}"
        who = m.group("who") or "a"
        if m.group("op") != "-" and "w" in m.group("perms") and set(who) & set("goa"):
            return True
    return False


def test_the_image_code_is_read_only_for_the_containers() -> None:
    lines = dockerfile_instructions()
    text = "\n".join(lines)
    for mode, target in re.findall(r"chmod\s+(?:-R\s+)?(\S+)\s+(\S+)", text):
        # the mount point of the PENSTAT_HOME volume is the one writable folder
        assert not others_may_write(mode) or target == PENSTAT_HOME, f"chmod {mode} {target}"
    assert re.search(r"chown -R root:root /opt/penstat\b", text)
    assert re.search(r"chmod -R u=rwX,go=rX /opt/penstat\b", text)
    # the ownership change comes after the last COPY and pip install of the project
    last_code_step = max(i for i, line in enumerate(lines)
                         if line.startswith("COPY") or "pip install" in line)
    lockdown = next(i for i, line in enumerate(lines) if "chown -R root:root" in line)
    assert lockdown > last_code_step
    assert "compileall" in text, "read-only code without .pyc files recompiles every start"
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users[-1] == "airflow", "the containers must not run as root"


def test_env_example_keeps_the_api_on_this_machine() -> None:
    example = dict(line.split("=", 1) for line in ENV_EXAMPLE.read_text().splitlines()
                   if line and not line.startswith("#") and "=" in line)
    assert example["AIRFLOW_API_BIND"] == LOOPBACK
    for secret in ("REDIS_PASSWORD", "FLOWER_PASSWORD"):
        assert example[secret] == "change-me"


def test_the_local_stack_listens_on_loopback_only(tmp_path, monkeypatch) -> None:
    from penstat.contract.layout import Paths
    from penstat.orchestration.local_airflow import API_HOST, Stack

    monkeypatch.setenv("AIRFLOW__API__HOST", "0.0.0.0")  # an operator's environment
    env = Stack(Paths(tmp_path)).environment(8793)
    assert API_HOST == LOOPBACK
    assert env["AIRFLOW__API__HOST"] == LOOPBACK
    assert env["AIRFLOW__API__BASE_URL"] == f"http://{LOOPBACK}:8793"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"].startswith(f"http://{LOOPBACK}:")
