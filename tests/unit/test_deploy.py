"""The deployment files (docker-compose.yml, deploy/): consistent with how the stack runs locally.

No Docker needed: the compose file, the Kubernetes manifests and the nginx config are parsed and
checked against scripts/stack.py (the environment every process gets) and the imports of the
handoff service (what its image must contain).
"""

from __future__ import annotations

import ast
import fnmatch
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Set, Tuple
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = ROOT / "docker-compose.yml"
NGINX = DEPLOY / "nginx" / "helder.conf"
K8S = DEPLOY / "k8s"

# Customers reach only these (plus the widget's public transcript on the handoff service).
CUSTOMER_PATHS = ("/webhooks/whatsapp/webhook", "/socket.io/")
# Rasa's REST channel lets the caller pick any sender id: never on the customer side.
NOT_FOR_CUSTOMERS = ("/webhooks/rest/webhook",)
# Rasa's HTTP API: never on the customer-facing side.
RASA_API_PREFIXES = ("/conversations", "/model", "/status", "/version", "/domain")
SECRETS = ("RASA_JWT_SECRET", "HANDOFF_API_TOKEN", "HANDOFF_SESSION_SECRET", "SHOP_TOKEN_SECRET", "REDIS_PASSWORD",
           "WHATSAPP_VERIFY_TOKEN", "WHATSAPP_APP_SECRET", "WHATSAPP_ACCESS_TOKEN", "HANDOFF_METRICS_TOKEN")
PROMETHEUS = DEPLOY / "prometheus"

# Which process reads which variable of scripts/stack.py's Stack.env() (Rasa and actions get the
# same environment locally; here each only what it reads). A variable stack.py adds must be
# placed in one of these (test_every_stack_variable_has_a_home), then it is checked per service.
RASA_VARS = {"REDIS_HOST", "REDIS_PORT", "REDIS_DB", "REDIS_PASSWORD", "ACTION_ENDPOINT_URL", "RASA_JWT_SECRET",
             "WHATSAPP_VERIFY_TOKEN", "WHATSAPP_APP_SECRET", "WHATSAPP_ACCESS_TOKEN", "WHATSAPP_PHONE_NUMBER_ID",
             "WHATSAPP_GRAPH_API_URL", "PYTHONPATH", "TF_CPP_MIN_LOG_LEVEL", "RASA_TELEMETRY_ENABLED",
             "SQLALCHEMY_SILENCE_UBER_WARNING", "TICKET_LOCK_LIFETIME"}
ACTIONS_VARS = {"HANDOFF_URL", "HANDOFF_API_TOKEN", "SHOP_TOKEN_SECRET", "PYTHONPATH", "TF_CPP_MIN_LOG_LEVEL",
                "SQLALCHEMY_SILENCE_UBER_WARNING", "REDIS_HOST", "REDIS_PORT", "REDIS_DB", "REDIS_PASSWORD"}
# Paths on the machine that runs the stack, meaningless in a container (logs go to stdout there).
HOST_SPECIFIC = {"HANDOFF_LOG_DIR"}


# -- helpers ----------------------------------------------------------------------------------

def _stack_keys(function: str) -> Set[str]:
    """Keys scripts/stack.py puts into the environment in ``Stack.<function>()``: dict literals
    passed to ``env.update`` (and ``parse_redis_url``'s), and ``env.setdefault`` names."""
    tree = ast.parse((ROOT / "scripts" / "stack.py").read_text())
    functions = {node.name: node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
    keys: Set[str] = set()
    for node in ast.walk(functions[function]):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args):
            continue
        arg = node.args[0]
        if node.func.attr == "update" and isinstance(arg, ast.Dict):
            keys |= {k.value for k in arg.keys if isinstance(k, ast.Constant)}
        elif node.func.attr == "update" and isinstance(arg, ast.Call) and getattr(arg.func, "id", "") == "parse_redis_url":
            for ret in ast.walk(functions["parse_redis_url"]):
                if isinstance(ret, ast.Return) and isinstance(ret.value, ast.Dict):
                    keys |= {k.value for k in ret.value.keys if isinstance(k, ast.Constant)}
        elif node.func.attr == "setdefault" and isinstance(arg, ast.Constant):
            keys.add(arg.value)
    return keys


def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def _services() -> Dict[str, dict]:
    return _compose()["services"]


def _command(service: dict) -> List[str]:
    command = service.get("command") or []
    return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]


def _dockerfile(service: dict) -> Optional[Path]:
    build = service.get("build")
    if not build:
        return None
    return ROOT / (build.get("context", ".") if isinstance(build, dict) else build) / (
        build.get("dockerfile", "Dockerfile") if isinstance(build, dict) else "Dockerfile")


def _dockerfile_lines(path: Path) -> List[str]:
    """Instructions with continuation lines joined, comments dropped."""
    lines, current = [], ""
    for raw in path.read_text().splitlines():
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        lines.append(current + stripped)
        current = ""
    return lines


def _dockerfile_env(path: Path) -> Set[str]:
    names: Set[str] = set()
    for line in _dockerfile_lines(path):
        if line.upper().startswith("ENV "):
            names |= {token.split("=", 1)[0] for token in shlex.split(line[4:]) if "=" in token}
    return names


def _dockerfile_copies(path: Path) -> List[str]:
    """Sources of COPY instructions from the build context (not --from=stage)."""
    sources: List[str] = []
    for line in _dockerfile_lines(path):
        if not line.upper().startswith("COPY "):
            continue
        tokens = shlex.split(line[5:])
        if any(token.startswith("--from") for token in tokens):
            continue
        tokens = [token for token in tokens if not token.startswith("--")]
        sources += tokens[:-1]
    return sources


def _service_env(service: dict) -> Dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    names = {str(k): str(v) for k, v in env.items()}
    dockerfile = _dockerfile(service)
    if dockerfile is not None:
        for name in _dockerfile_env(dockerfile):
            names.setdefault(name, "<image>")
    return names


def _rasa_services() -> Dict[str, dict]:
    return {name: s for name, s in _services().items() if _command(s)[:1] == ["rasa"]}


def _handoff_services() -> Dict[str, dict]:
    return {name: s for name, s in _services().items()
            if (_dockerfile(s) or Path()).name == "handoff.Dockerfile"}


def _hostnames(services: Dict[str, dict]) -> Set[str]:
    """Service names and network aliases (what other containers can resolve)."""
    names = set(services)
    for service in services.values():
        networks = service.get("networks") or {}
        if isinstance(networks, dict):
            for network in networks.values():
                names |= set((network or {}).get("aliases") or [])
    return names


# A small nginx config parser: (directive, args, children) trees.
Directive = Tuple[str, List[str], list]


def _nginx_tokens(text: str) -> Iterable[str]:
    text = re.sub(r"(?m)#.*$", "", text)
    for match in re.finditer(r"'[^']*'|\"[^\"]*\"|[{};]|[^\s{};]+", text):
        yield match.group(0)


def _nginx_parse(text: str) -> List[Directive]:
    stack: List[List[Directive]] = [[]]
    words: List[str] = []
    for token in _nginx_tokens(text):
        if token == ";":
            stack[-1].append((words[0], words[1:], []))
            words = []
        elif token == "{":
            block: Directive = (words[0], words[1:], [])
            stack[-1].append(block)
            stack.append(block[2])
            words = []
        elif token == "}":
            stack.pop()
        else:
            words.append(token.strip("'\""))
    assert len(stack) == 1 and not words, "unbalanced nginx config"
    return stack[0]


def _nginx() -> List[Directive]:
    return _nginx_parse(NGINX.read_text())


def _servers() -> List[Directive]:
    return [d for d in _nginx() if d[0] == "server"]


def _listens(server: Directive) -> List[str]:
    return [d[1][0] for d in server[2] if d[0] == "listen"]


def _customer_server() -> Directive:
    [server] = [s for s in _servers() if any(p.split(":")[-1] == "80" for p in _listens(s))]
    return server


def _locations(server: Directive) -> Dict[str, Directive]:
    return {d[1][-1]: d for d in server[2] if d[0] == "location"}


def _upstreams() -> Dict[str, Directive]:
    return {d[1][0]: d for d in _nginx() if d[0] == "upstream"}


def _k8s_documents() -> List[dict]:
    documents = []
    for path in sorted(K8S.glob("*.yaml")):
        documents += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return documents


def _k8s(kind: str, name: str) -> dict:
    [doc] = [d for d in _k8s_documents() if d.get("kind") == kind and d["metadata"]["name"] == name]
    return doc


def _k8s_container_env(deployment: dict) -> Set[str]:
    """Names a Deployment's first container gets: env, envFrom ConfigMaps, its image's ENV."""
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    names = {item["name"] for item in container.get("env", [])}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            names |= set(_k8s("ConfigMap", source["configMapRef"]["name"])["data"])
    dockerfile = {"helder-bot": "bot.Dockerfile", "helder-handoff": "handoff.Dockerfile"}[container["image"]]
    return names | _dockerfile_env(DEPLOY / "docker" / dockerfile)


# -- compose ----------------------------------------------------------------------------------

def test_compose_parses_with_the_services():
    services = _services()
    assert "redis" in services and "nginx" in services
    assert len(_rasa_services()) >= 2, "two Rasa replicas"
    assert len({s["image"] for s in _rasa_services().values()}) == 1, "the replicas run the same image"
    assert [name for name, s in services.items() if _command(s)[:1] == ["actions"]] == ["actions"]
    assert len(_handoff_services()) >= 1
    for name, service in services.items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"


def test_redis_writes_an_append_only_file_to_a_volume():
    redis = _services()["redis"]
    command = _command(redis)
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--appendfsync") + 1] == "everysec"
    assert any(str(v).split(":")[0] in _compose().get("volumes", {}) and str(v).split(":")[1] == "/data"
               for v in redis.get("volumes", [])), "AOF on a named volume"


def test_rasa_replicas_share_redis_and_the_action_server():
    services = _services()
    for name, service in _rasa_services().items():
        env = _service_env(service)
        assert env["REDIS_HOST"] == "redis", name
        assert urlsplit(env["ACTION_ENDPOINT_URL"]).hostname in _hostnames({"actions": services["actions"]})
        assert "ports" not in service, f"{name}: Rasa's HTTP API must only be reachable through the proxy"
        # The web chat's per-IP rate limit sees the customer, not nginx: the header nginx sets.
        assert env.get("SANIC_REAL_IP_HEADER", "").lower() == "x-real-ip", name
    server_headers = {d[1][0].lower(): d[1][1] for d in _customer_server()[2] if d[0] == "proxy_set_header"}
    assert server_headers["x-real-ip"] == "$remote_addr"


def test_every_stack_variable_has_a_home():
    """A variable scripts/stack.py adds must be placed: Rasa, actions, or host-specific."""
    bot_env = _stack_keys("env")
    assert {"REDIS_HOST", "ACTION_ENDPOINT_URL", "HANDOFF_URL", "WHATSAPP_APP_SECRET"} <= bot_env  # the parser works
    assert bot_env - HOST_SPECIFIC <= RASA_VARS | ACTIONS_VARS, "new in Stack.env(): decide who reads it"
    assert "HANDOFF_REDIS_URL" in _stack_keys("handoff_env")


@pytest.mark.parametrize("kind", ["rasa", "actions", "handoff"])
def test_every_variable_the_stack_sets_is_set_for_the_service(kind):
    services = _services()
    if kind == "rasa":
        targets, needed = _rasa_services(), RASA_VARS
    elif kind == "actions":
        targets, needed = {"actions": services["actions"]}, ACTIONS_VARS
    else:
        targets, needed = _handoff_services(), _stack_keys("handoff_env") - HOST_SPECIFIC
    for name, service in targets.items():
        env = _service_env(service)
        missing = needed - set(env)
        assert not missing, f"{name} lacks {sorted(missing)}"
        for key in set(env) & set(SECRETS) | ({"HANDOFF_RASA_JWT_SECRET", "HANDOFF_REDIS_URL"} & set(env)):
            assert "${" in env[key], f"{name}: {key} must come from .env, not the compose file"


def test_service_addresses_resolve_inside_compose():
    services = _services()
    names = _hostnames(services)
    for name, service in services.items():
        env = _service_env(service)
        for key in ("ACTION_ENDPOINT_URL", "HANDOFF_URL", "HANDOFF_RASA_URL", "HANDOFF_REDIS_URL"):
            if key in env:
                assert urlsplit(env[key].replace("${REDIS_PASSWORD}", "x")).hostname in names, f"{name}: {key}"
    assert urlsplit(_service_env(next(iter(_handoff_services().values())))["HANDOFF_RASA_URL"]).hostname in \
        _hostnames(_rasa_services())


def test_env_example_lists_every_secret_without_a_value():
    example = DEPLOY / "env.example"
    values = dict(line.split("=", 1) for line in example.read_text().splitlines()
                  if line.strip() and not line.lstrip().startswith("#"))
    for name in SECRETS:
        assert name in values, name
        assert values[name] == "", f"{name} must be empty in the example"
    referenced = set(re.findall(r"\$\{([A-Z0-9_]+)", COMPOSE.read_text()))
    assert referenced <= set(values), f"not in deploy/env.example: {sorted(referenced - set(values))}"


def test_compose_builds_from_files_that_exist_and_are_not_docker_ignored():
    ignored = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    dockerfiles = {_dockerfile(s) for s in _services().values() if _dockerfile(s)}
    assert {p.name for p in dockerfiles} >= {"bot.Dockerfile", "handoff.Dockerfile"}
    for dockerfile in dockerfiles:
        assert dockerfile.is_file(), dockerfile
        for source in _dockerfile_copies(dockerfile):
            assert (ROOT / source).exists(), f"{dockerfile.name}: COPY {source}"
            clean = source.rstrip("/")
            assert not any(fnmatch.fnmatch(clean, pattern) or clean.startswith(pattern.rstrip("/") + "/")
                           for pattern in ignored), f"{dockerfile.name}: {source} is in .dockerignore"


def test_bot_image_has_what_rasa_and_the_action_server_load():
    copies = {source.rstrip("/") for source in _dockerfile_copies(DEPLOY / "docker" / "bot.Dockerfile")}
    assert {"bot", "actions", "contract", "domain", "data", "config.yml", "endpoints.yml", "credentials.yml"} <= copies
    text = (DEPLOY / "docker" / "bot.Dockerfile").read_text()
    assert "-c /tmp/requirements/bot-lock.txt" in text and "python:3.10" in text
    entrypoint = (DEPLOY / "docker" / "bot-entrypoint.sh").read_text()
    for flag in ("--enable-api", "--jwt-secret", "--credentials credentials.yml", "--endpoints endpoints.yml"):
        assert flag in entrypoint
    assert "python -m rasa_sdk --actions actions" in entrypoint


def test_handoff_image_has_the_service_and_the_contract_only():
    """The handoff service imports nothing of bot/ or actions/ (tests/unit/test_contract.py), so
    its image copies handoff/ and contract/ and no Rasa-side code."""
    copies = {source.rstrip("/") for source in _dockerfile_copies(DEPLOY / "docker" / "handoff.Dockerfile")}
    assert {"handoff", "contract"} <= copies
    assert not any(c.split("/")[0] in ("bot", "actions") for c in copies), sorted(copies)
    assert "python:3.11" in (DEPLOY / "docker" / "handoff.Dockerfile").read_text()


def test_docker_compose_config_validates_when_a_client_is_installed(tmp_path):
    """Only where `docker compose` or `docker-compose` exists; it needs no Docker engine."""
    env = tmp_path / "env"
    env.write_text("".join(f"{line}0123456789abcdef0123456789abcdef\n" if line.split("=", 1)[0] in SECRETS else line + "\n"
                           for line in (DEPLOY / "env.example").read_text().splitlines()))
    for command in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(command[0]) is None:
            continue
        if subprocess.run([*command, "version"], capture_output=True, timeout=30).returncode != 0:
            continue  # e.g. the docker client without the compose plugin
        result = subprocess.run([*command, "--env-file", str(env), "-f", str(COMPOSE), "config", "-q"],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        return
    pytest.skip("no docker compose client on this machine")


# -- nginx ------------------------------------------------------------------------------------

def test_customer_server_routes_only_the_customer_paths():
    locations = _locations(_customer_server())
    for path in CUSTOMER_PATHS:
        assert path in locations, f"no location for {path}"
    for path in locations:
        assert not path.startswith(RASA_API_PREFIXES), f"Rasa's HTTP API exposed at {path}"
        assert not path.startswith(("/api", "/auth", "/ws", "/login", "/static")), f"console exposed at {path}"
    for path in NOT_FOR_CUSTOMERS:
        assert path not in locations, f"{path} exposed to customers"
    allowed = set(CUSTOMER_PATHS) | {"/public/conversations/", "/"}
    assert set(locations) <= allowed, f"unexpected customer locations {sorted(set(locations) - allowed)}"
    catch_all = locations["/"][2]
    assert [d[0] for d in catch_all] == ["return"] and catch_all[0][1][0] == "404", "everything else is a 404"


def test_socketio_is_sticky_with_websocket_upgrade():
    location = _locations(_customer_server())["/socket.io/"][2]
    [proxy_pass] = [d[1][0] for d in location if d[0] == "proxy_pass"]
    upstream = _upstreams()[urlsplit(proxy_pass).hostname][2]
    balancing = [d for d in upstream if d[0] in ("ip_hash", "hash")]
    assert balancing and (balancing[0][0] == "ip_hash" or balancing[0][1][:2] == ["$remote_addr", "consistent"])
    headers = {d[1][0].lower(): d[1][1] for d in location if d[0] == "proxy_set_header"}
    assert headers["upgrade"] == "$http_upgrade" and headers["connection"] == "$connection_upgrade"
    assert "host" in headers, "a location that sets headers inherits none from the server"


def test_proxy_upstreams_are_the_compose_services():
    names = _hostnames(_services())
    rasa = set(_rasa_services())
    for name, upstream in _upstreams().items():
        servers = {d[1][0].rsplit(":", 1)[0] for d in upstream[2] if d[0] == "server"}
        assert servers <= names, f"upstream {name}: {servers - names}"
        if name.startswith("rasa"):
            assert servers == rasa, f"upstream {name} must balance over every Rasa replica"


def test_console_is_on_its_own_port():
    customer_ports = {p.split(":")[-1] for p in _listens(_customer_server())}
    console = [s for s in _servers() if any(d[0] == "location" and d[1][-1] == "/ws" for d in s[2])]
    assert console, "no server proxies the console's websocket"
    assert not customer_ports & {p.split(":")[-1] for p in _listens(console[0])}
    published = [str(p) for p in _services()["nginx"]["ports"]]
    assert any(p.endswith(":8081") for p in published) and any(p.endswith(":80") for p in published)


# -- Kubernetes -------------------------------------------------------------------------------

def test_k8s_manifests_parse_and_kustomization_lists_existing_files():
    assert len(_k8s_documents()) >= 10
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    for resource in kustomization["resources"]:
        assert (K8S / resource).is_file(), resource
    assert "secret.example.yaml" not in kustomization["resources"]


def test_k8s_rasa_has_two_replicas_probes_without_jwt_and_memory():
    rasa = _k8s("Deployment", "rasa")
    assert rasa["spec"]["replicas"] >= 2
    container = rasa["spec"]["template"]["spec"]["containers"][0]
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        path = container[probe].get("httpGet", {}).get("path")
        assert path in (None, "/"), f"{probe} on {path}: /status needs a JWT"
    memory = container["resources"]["requests"]["memory"]
    assert memory.endswith("Mi") and int(memory[:-2]) >= 1536
    assert _k8s("Deployment", "handoff")["spec"]["replicas"] >= 2


def test_k8s_redis_has_aof_on_a_volume_claim():
    redis = _k8s("StatefulSet", "redis")
    args = redis["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--appendonly") + 1] == "yes" and args[args.index("--appendfsync") + 1] == "everysec"
    assert redis["spec"]["volumeClaimTemplates"]


@pytest.mark.parametrize("name, needed", [
    ("rasa", RASA_VARS),
    ("actions", ACTIONS_VARS),
    ("handoff", _stack_keys("handoff_env") - HOST_SPECIFIC),
])
def test_k8s_deployments_get_the_stack_variables(name, needed):
    missing = needed - _k8s_container_env(_k8s("Deployment", name))
    assert not missing, f"{name} lacks {sorted(missing)}"


def test_k8s_secret_template_has_no_values_and_covers_the_references():
    secret = _k8s("Secret", "helder-secrets")
    assert all(value in ("", "0") for value in secret["stringData"].values()), "a template, never real values"
    referenced = set()
    for doc in _k8s_documents():
        for match in re.finditer(r"'key': '([A-Z_]+)'", str(doc)):
            referenced.add(match.group(1))
    assert referenced and referenced <= set(secret["stringData"])


def test_k8s_customer_ingress_has_only_customer_paths_and_sticky_socketio():
    ingresses = [d for d in _k8s_documents() if d["kind"] == "Ingress"]
    customer_host = "chat.example.com"
    paths: Dict[str, dict] = {}
    for ingress in ingresses:
        for rule in ingress["spec"]["rules"]:
            if rule["host"] == customer_host:
                for path in rule["http"]["paths"]:
                    paths[path["path"]] = ingress
    assert set(paths) == {"/webhooks/whatsapp/webhook", "/socket.io", "/public/conversations"}
    annotations = paths["/socket.io"]["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/affinity"] == "cookie"
    console = [i for i in ingresses if all(r["host"] != customer_host for r in i["spec"]["rules"])]
    assert console, "the console has its own host"


# -- metrics and insights (README, "Insights and metrics") ------------------------------------

def _environ_names(path: Path) -> Set[str]:
    """Environment variables a module reads: ``os.environ.get("X")``, ``environ.get("X")``,
    ``os.environ["X"]``, ``os.getenv("X")``."""
    names: Set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args \
                and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            owner = node.func.value
            owner_name = getattr(owner, "attr", None) or getattr(owner, "id", None)
            if (node.func.attr == "get" and owner_name == "environ") or node.func.attr == "getenv":
                names.add(node.args[0].value)
        elif isinstance(node, ast.Subscript) and getattr(node.value, "attr", None) == "environ" \
                and isinstance(node.slice, ast.Constant):
            names.add(node.slice.value)
    return names


def _metrics_env(*modules: str) -> Set[str]:
    """The ``*METRICS*`` variables the modules read: what a deployment must set for metrics."""
    return {name for module in modules for name in _environ_names(ROOT / module) if "METRICS" in name}


HANDOFF_METRICS_ENV = _metrics_env("handoff/metrics.py", "handoff/app.py")
ACTIONS_METRICS_ENV = _metrics_env("actions/metrics.py", "actions/__init__.py")


def _actions_metrics_port_compose() -> int:
    env = _service_env(_services()["actions"])
    assert env.get("ACTIONS_METRICS_PORT", "").isdigit(), "actions: ACTIONS_METRICS_PORT (a port number) is not set"
    return int(env["ACTIONS_METRICS_PORT"])


def _container(deployment: str) -> dict:
    return _k8s("Deployment", deployment)["spec"]["template"]["spec"]["containers"][0]


def _container_env_values(deployment: str) -> Dict[str, dict]:
    return {item["name"]: item for item in _container(deployment).get("env", [])}


def _container_ports(deployment: str) -> Dict[str, int]:
    return {port["name"]: int(port["containerPort"]) for port in _container(deployment).get("ports", [])}


def _prometheus(name: str) -> Dict[str, dict]:
    config = yaml.safe_load((PROMETHEUS / name).read_text())
    for rule_file in config.get("rule_files", []):
        assert (PROMETHEUS / rule_file).is_file(), f"{name}: rule file {rule_file}"
    return {job["job_name"]: job for job in config["scrape_configs"]}


def _bearer_from_a_file(job: dict) -> None:
    authorization = job.get("authorization") or {}
    assert authorization.get("type", "Bearer") == "Bearer" and authorization.get("credentials_file"), \
        f"{job['job_name']}: GET /metrics wants Authorization: Bearer $HANDOFF_METRICS_TOKEN (from a file)"
    assert "credentials" not in authorization, "never the token itself in the scrape config"


def test_the_services_metrics_variables_are_found():
    """The parser sees what the services read (a renamed variable must reach the deploy files too)."""
    assert HANDOFF_METRICS_ENV == {"HANDOFF_METRICS_TOKEN"}
    assert {"ACTIONS_METRICS_PORT", "ACTIONS_METRICS_HOST"} <= ACTIONS_METRICS_ENV


def test_compose_sets_the_metrics_variables():
    services = _services()
    for name, service in _handoff_services().items():
        env = _service_env(service)
        missing = HANDOFF_METRICS_ENV - set(env)
        assert not missing, f"{name} lacks {sorted(missing)} (docker-compose.yml, x-handoff environment)"
        assert env["HANDOFF_METRICS_TOKEN"].startswith("${HANDOFF_METRICS_TOKEN"), \
            f"{name}: HANDOFF_METRICS_TOKEN must come from .env"
    env = _service_env(services["actions"])
    missing = ACTIONS_METRICS_ENV - set(env)
    assert not missing, f"actions lacks {sorted(missing)} (docker-compose.yml)"
    port = _actions_metrics_port_compose()
    # The default 127.0.0.1 is unreachable from another container.
    assert env["ACTIONS_METRICS_HOST"] == "0.0.0.0"
    for name, service in services.items():
        for published in service.get("ports") or []:
            assert not str(published).endswith(f":{port}"), f"{name} publishes the metrics port {port}"
    assert "ports" not in services["actions"], "the action server (and its metrics) stay inside the network"


def test_k8s_sets_the_metrics_variables():
    handoff_env = _container_env_values("handoff")
    for name in HANDOFF_METRICS_ENV:
        assert name in _k8s_container_env(_k8s("Deployment", "handoff")), f"handoff lacks {name}"
        # A secret: from the Secret, never a literal value or the ConfigMap.
        assert "secretKeyRef" in handoff_env[name].get("valueFrom", {}), f"handoff: {name} must come from the Secret"
        assert name not in _k8s("ConfigMap", "helder-config")["data"]
        assert name in _k8s("Secret", "helder-secrets")["stringData"]
    actions_env = _container_env_values("actions")
    missing = ACTIONS_METRICS_ENV - _k8s_container_env(_k8s("Deployment", "actions"))
    assert not missing, f"actions lacks {sorted(missing)}"
    assert actions_env["ACTIONS_METRICS_HOST"]["value"] == "0.0.0.0"
    assert _container_ports("actions").get("metrics") == int(actions_env["ACTIONS_METRICS_PORT"]["value"]), \
        "the containerPort \"metrics\" is the port ACTIONS_METRICS_PORT opens"
    for deployment in ("rasa", "handoff"):  # only the action server opens a metrics port
        assert not ACTIONS_METRICS_ENV & _k8s_container_env(_k8s("Deployment", deployment)), deployment


def test_k8s_network_policies_let_only_the_scraper_reach_the_metrics_ports():
    scraper_ports: Dict[str, Set[int]] = {}
    for policy in (_k8s("NetworkPolicy", "handoff"), _k8s("NetworkPolicy", "actions")):
        name = policy["metadata"]["name"]
        for rule in policy["spec"]["ingress"]:
            if any(source.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name")
                   == "monitoring" for source in rule.get("from", [])):
                scraper_ports.setdefault(name, set()).update(int(port["port"]) for port in rule["ports"])
    handoff_port = int(_k8s("ConfigMap", "helder-config")["data"]["HANDOFF_PORT"])
    assert scraper_ports.get("handoff") == {handoff_port} == {_container_ports("handoff")["http"]}
    assert scraper_ports.get("actions") == {_container_ports("actions")["metrics"]}, \
        "the scraper reaches the action server's metrics port and nothing else"


def test_prometheus_scrapes_every_compose_instance_on_its_port():
    jobs = _prometheus("prometheus.yml")
    assert set(jobs) == {"helder-handoff", "helder-actions"}
    handoff = jobs["helder-handoff"]
    _bearer_from_a_file(handoff)
    assert handoff.get("metrics_path", "/metrics") == "/metrics"
    wanted = {f"{name}:{_service_env(service)['HANDOFF_PORT']}" for name, service in _handoff_services().items()}
    targets = {t for config in handoff["static_configs"] for t in config["targets"]}
    assert targets == wanted, "every handoff instance, each by its own name (not the shared alias)"
    actions = jobs["helder-actions"]
    assert "authorization" not in actions, "the action server's port has no token: it must stay internal"
    targets = {t for config in actions["static_configs"] for t in config["targets"]}
    assert targets == {f"actions:{_actions_metrics_port_compose()}"}
    names = _hostnames(_services())
    for job in jobs.values():
        for config in job["static_configs"]:
            assert {t.rsplit(":", 1)[0] for t in config["targets"]} <= names


def _kept(job: dict, source_label: str) -> str:
    [regex] = [rule["regex"] for rule in job["relabel_configs"]
               if rule.get("action") == "keep" and rule["source_labels"] == [source_label]]
    return regex


def test_prometheus_k8s_scrapes_the_pods_on_their_metrics_ports():
    jobs = _prometheus("prometheus-k8s.yml")
    assert set(jobs) == {"helder-handoff", "helder-actions"}
    namespace = yaml.safe_load((K8S / "kustomization.yaml").read_text())["namespace"]
    _bearer_from_a_file(jobs["helder-handoff"])
    expected_ports = {"helder-handoff": int(_k8s("ConfigMap", "helder-config")["data"]["HANDOFF_PORT"]),
                      "helder-actions": int(_container_env_values("actions")["ACTIONS_METRICS_PORT"]["value"])}
    for job_name, job in jobs.items():
        [discovery] = job["kubernetes_sd_configs"]
        assert discovery["role"] == "pod", "each pod by itself, not one behind a Service"
        assert discovery["namespaces"]["names"] == [namespace]
        app = _kept(job, "__meta_kubernetes_pod_label_app_kubernetes_io_name")
        deployment = _k8s("Deployment", app)
        assert deployment["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"] == app
        port_name = _kept(job, "__meta_kubernetes_pod_container_port_name")
        assert _container_ports(app).get(port_name) == expected_ports[job_name], f"{job_name}: port {port_name}"


def test_alerts_use_metrics_the_services_export():
    defined: Set[str] = set()
    for module in ("handoff/metrics.py", "actions/metrics.py"):
        for node in ast.walk(ast.parse((ROOT / module).read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and re.fullmatch(r"helder_[a-z_]+", node.value):
                defined.add(node.value)
    assert "helder_handoff_queue_length" in defined and "helder_actions_backend_call_seconds" in defined
    rules = yaml.safe_load((PROMETHEUS / "helder-alerts.yml").read_text())
    used = {name for group in rules["groups"] for rule in group["rules"]
            for name in re.findall(r"\bhelder_[a-z_]+", rule["expr"])}
    assert used
    for name in used:
        base = re.sub(r"_(bucket|count|sum|total)$", "", name)
        assert name in defined or base in defined, f"helder-alerts.yml: no service exports {name}"


def test_images_install_prometheus_client():
    def pinned(text: str) -> bool:
        return re.search(r"(?im)^prometheus-client==", text) is not None

    bot = (DEPLOY / "docker" / "bot.Dockerfile").read_text()
    assert "pip install -r /tmp/requirements/bot.txt" in bot
    assert pinned((ROOT / "requirements" / "bot.txt").read_text())
    assert pinned((ROOT / "requirements" / "bot-lock.txt").read_text())
    handoff = (DEPLOY / "docker" / "handoff.Dockerfile").read_text()
    requirements = (ROOT / "requirements" / "handoff.txt").read_text()
    if "sed '/^# tests/,$d'" in handoff:  # the image installs only what comes before "# tests"
        requirements = requirements.split("\n# tests", 1)[0]
    assert pinned(requirements), "the handoff image lacks prometheus-client (handoff/metrics.py)"


def _stages(path: Path) -> Dict[str, List[str]]:
    """A multi-stage Dockerfile's instructions per stage (named by AS, else by index; "" = the last)."""
    stages: Dict[str, List[str]] = {}
    current: Optional[List[str]] = None
    for line in _dockerfile_lines(path):
        if line.upper().startswith("FROM "):
            words = line.split()
            name = words[3] if len(words) >= 4 and words[2].upper() == "AS" else str(len(stages))
            current = stages[name] = []
        elif current is not None:
            current.append(line)
    stages[""] = current or []
    return stages


def _chartjs_in_the_repo() -> str:
    """Where handoff/api/routes/insights.py looks for Chart.js, relative to the repository."""
    module = ROOT / "handoff" / "api" / "routes" / "insights.py"
    [assignment] = [node for node in ast.walk(ast.parse(module.read_text()))
                    if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "CHARTJS"]
    [parents] = [node for node in ast.walk(assignment) if isinstance(node, ast.Subscript)
                 and getattr(node.value, "attr", None) == "parents"]
    assert module.parents[parents.slice.value] == ROOT, "CHARTJS is relative to the repository's root"
    constants = [node for node in ast.walk(assignment) if isinstance(node, ast.Constant) and isinstance(node.value, str)]
    parts = [node.value for node in sorted(constants, key=lambda node: (node.lineno, node.col_offset))]
    relative = "/".join(parts)
    assert (ROOT / relative).relative_to(ROOT).as_posix() == relative and relative.endswith("chart.umd.min.js")
    return relative


def test_handoff_image_serves_chartjs_from_npm():
    """The insights page's charts: the image holds chart.js's dist file where the service looks
    (or HANDOFF_CHARTJS_PATH points at it), installed with `npm ci` from web/package-lock.json."""
    relative = _chartjs_in_the_repo()
    assert relative == "web/node_modules/chart.js/dist/chart.umd.min.js"
    dockerfile = DEPLOY / "docker" / "handoff.Dockerfile"
    stages = _stages(dockerfile)
    final = stages[""]
    [workdir] = [line.split()[1] for line in final if line.upper().startswith("WORKDIR ")]
    assert "COPY handoff/ handoff/" in final, "the service lives at WORKDIR/handoff, so its default path is WORKDIR/web/..."
    copied: Dict[str, Tuple[str, str]] = {}
    for line in final:
        tokens = shlex.split(line[5:]) if line.upper().startswith("COPY ") else []
        stage = [t.split("=", 1)[1] for t in tokens if t.startswith("--from=")]
        if stage:
            sources_and_dest = [t for t in tokens if not t.startswith("--")]
            dest = sources_and_dest[-1]
            copied[dest if dest.startswith("/") else f"{workdir.rstrip('/')}/{dest}"] = (stage[0], sources_and_dest[0])
    env = {}
    for line in final:
        if line.upper().startswith("ENV "):
            env.update(token.split("=", 1) for token in shlex.split(line[4:]) if "=" in token)
    served = env.get("HANDOFF_CHARTJS_PATH") or f"{workdir.rstrip('/')}/{relative}"
    assert served in copied, f"the handoff image has no {served} (the insights page would draw no charts)"
    stage, source = copied[served]
    assert source.endswith("/node_modules/chart.js/dist/chart.umd.min.js"), source
    vendor = stages[stage]
    vendor_copies = [source for line in vendor if line.upper().startswith("COPY ")
                     for source in shlex.split(line[5:])[:-1]]
    assert {"web/package.json", "web/package-lock.json"} <= set(vendor_copies)
    assert any(re.search(r"\bnpm ci\b", line) for line in vendor if line.upper().startswith("RUN ")), \
        "npm ci: exactly the lock file's versions"
    lock = __import__("json").loads((ROOT / "web" / "package-lock.json").read_text())
    chartjs = lock["packages"].get("node_modules/chart.js")
    assert chartjs and not chartjs.get("dev"), "chart.js is a runtime dependency in web/package-lock.json"
    # No CDN anywhere on the way: the page loads the file from the service itself.
    page = (ROOT / "handoff" / "static" / "insights.html").read_text()
    assert re.findall(r'<script[^>]*src="([^"]+)"', page).count("/vendor/chart.umd.min.js") == 1
    assert not re.search(r'src="(https?:)?//', page), "insights.html loads a script from another host"
    assert '"/vendor/chart.umd.min.js"' in (ROOT / "handoff" / "api" / "routes" / "insights.py").read_text()
    instructions = "\n".join(_dockerfile_lines(dockerfile))
    assert not re.search(r"cdn|jsdelivr|unpkg|\bcurl\b|\bwget\b|^ADD\s+https?:", instructions, re.I | re.M), \
        "Chart.js comes from npm ci, not from a download"
