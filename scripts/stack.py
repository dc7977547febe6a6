"""Starts and stops the local stack: Redis (if none is reachable), action server, Rasa server.

Used by ``make run`` (foreground, Ctrl-C stops what it started), ``make shell`` and the
end-to-end tests (as a library: :class:`Stack`). Runs with the bot environment's Python.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Mapping, Optional

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"
sys.path.insert(0, str(ROOT))

from scripts.model import ensure_model  # noqa: E402

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
# make run's Rasa processes (RASA_WORKERS overrides); docs/benchmarks.md has the figures.
DEFAULT_RASA_WORKERS = 2


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def parse_redis_url(url: str) -> Dict[str, str]:
    """``redis://[:password@]host:port/db`` → the REDIS_* variables endpoints.yml reads."""
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme not in ("redis", ""):
        raise ValueError(f"REDIS_URL must start with redis://, got {url!r}")
    return {
        "REDIS_HOST": parsed.hostname or "127.0.0.1",
        "REDIS_PORT": str(parsed.port or 6379),
        "REDIS_DB": (parsed.path or "/0").lstrip("/") or "0",
        "REDIS_PASSWORD": urllib.parse.unquote(parsed.password or ""),
    }


def redis_ping(url: str, timeout: float = 1.0) -> bool:
    """True if a Redis server answers PING at ``url``."""
    env = parse_redis_url(url)
    try:
        with socket.create_connection((env["REDIS_HOST"], int(env["REDIS_PORT"])), timeout=timeout) as sock:
            if env["REDIS_PASSWORD"]:
                password = env["REDIS_PASSWORD"].encode()
                sock.sendall(b"*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n" % (len(password), password))
                sock.recv(64)
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


REDIS_NOT_INSTALLED = ("`redis-server` is not installed. Install it (Debian/Ubuntu: sudo apt install redis-server; "
                       "macOS: brew install redis)")


def redis_command(port: int, directory: Path) -> List[str]:
    """The redis-server command line ``make run`` uses: loopback only, AOF every second, no RDB."""
    server = shutil.which("redis-server")
    if server is None:
        raise SystemExit(REDIS_NOT_INSTALLED)
    return [server, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory),
            "--appendonly", "yes", "--appendfsync", "everysec", "--save", ""]


class RedisServer:
    """A redis-server of our own (AOF as ``make run`` has it) for tests and benchmarks.

    Started by the constructor on ``port`` (default: a free one) with its data in ``directory``;
    ``start`` again after ``stop`` or ``kill`` reuses port and data, so the AOF is read back.
    """

    def __init__(self, directory: Path, port: Optional[int] = None, log: Optional[Path] = None) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log = log
        self.proc: Optional[subprocess.Popen] = None
        self.start()

    def start(self, timeout: float = 10) -> None:
        output = open(self.log, "ab") if self.log else subprocess.DEVNULL
        self.proc = subprocess.Popen(redis_command(self.port, self.directory), stdout=output,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while not redis_ping(self.url):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stops the server (SIGTERM: it finishes writing the AOF)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)

    def kill(self) -> None:
        """Crashes the server (SIGKILL): what the AOF has is what survives."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


LOCK_LIFETIME_SECONDS = 25


def admin_token(secret: str) -> str:
    """A JWT for Rasa's HTTP API with the admin role (HS256)."""
    import jwt  # PyJWT comes with Rasa

    return jwt.encode({"user": {"username": "klantcontact", "role": "admin"}}, secret, algorithm="HS256")


def _secret_from_file(name: str) -> str:
    """A per-installation secret kept in var/ (created once, never committed)."""
    path = VAR / "secrets" / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


WHATSAPP_SECRETS = ("WHATSAPP_VERIFY_TOKEN", "WHATSAPP_APP_SECRET", "WHATSAPP_ACCESS_TOKEN")
WHATSAPP_PHONE_NUMBER_ID_DEFAULT = "0"


def whatsapp_settings_warning(environ: Mapping[str, str]) -> Optional[str]:
    """What ``make run`` says when the WhatsApp channel still runs on the local defaults.

    Args:
        environ: the operator's environment (before :meth:`Stack.env` fills in the defaults).

    Returns:
        None when the four WHATSAPP_* settings are set, else a warning naming those that are not.
    """
    unset = [name for name in WHATSAPP_SECRETS if not (environ.get(name) or "").strip()]
    phone_number_id = (environ.get("WHATSAPP_PHONE_NUMBER_ID") or "").strip()
    if phone_number_id in ("", WHATSAPP_PHONE_NUMBER_ID_DEFAULT):
        unset.append("WHATSAPP_PHONE_NUMBER_ID")
    if not unset:
        return None
    if len(unset) == len(WHATSAPP_SECRETS) + 1:
        return ("WhatsApp: local defaults (no WHATSAPP_* set): Meta's deliveries fail the signature check "
                "(random secrets in var/secrets) and the phone number id is 0. To go live, set "
                + ", ".join(unset) + " to your Meta app's values.")
    consequences = []
    if "WHATSAPP_PHONE_NUMBER_ID" in unset:
        consequences.append(f"with the phone number id at its default {WHATSAPP_PHONE_NUMBER_ID_DEFAULT!r} every "
                            "customer message Meta delivers is answered 200 and ignored")
    if any(name in unset for name in WHATSAPP_SECRETS):
        consequences.append("the unset secrets are random local ones, so Meta's verification, signatures or "
                            "sends fail")
    return (f"WhatsApp: {', '.join(unset)} still at the local default: " + "; ".join(consequences)
            + ". Set them to your Meta app's values.")


def _wait_http(url: str, timeout: float, headers: Optional[Dict[str, str]] = None,
               proc: Optional[subprocess.Popen] = None) -> dict:
    deadline = time.monotonic() + timeout
    last_error: Optional[BaseException] = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process for {url} exited with code {proc.returncode}")
        try:
            request = urllib.request.Request(url, headers=headers or {})
            with urllib.request.urlopen(request, timeout=2) as response:
                body = response.read().decode() or "{}"
                try:
                    return json.loads(body)
                except json.JSONDecodeError:
                    return {"body": body}
        except (TimeoutError, urllib.error.URLError, ConnectionError) as error:
            last_error = error
            time.sleep(0.3)
    raise TimeoutError(f"{url} not ready after {timeout:.0f}s: {last_error}")


@dataclass
class Stack:
    """The local stack; every process it starts, it stops."""

    # The URL and secrets left empty come from the environment, else the defaults (__post_init__).
    redis_url: str = ""
    rasa_port: int = 5005
    actions_port: int = 5055
    handoff_port: int = 8000
    web_port: int = 8080
    shop_token_secret: str = ""
    handoff_token: str = ""
    session_secret: str = ""
    model: Optional[Path] = None
    jwt_secret: str = ""
    log_dir: Path = VAR / "log"
    redis_dir: Path = VAR / "redis"
    extra_env: Dict[str, str] = field(default_factory=dict)
    # Processes serving Rasa's port (Sanic workers; make run: RASA_WORKERS, see main()).
    rasa_workers: int = 1
    verbose: bool = False
    processes: Dict[str, subprocess.Popen] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.redis_url = self.redis_url or os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
        self.jwt_secret = self.jwt_secret or os.environ.get("RASA_JWT_SECRET") or _secret_from_file("rasa_jwt")
        self.handoff_token = self.handoff_token or os.environ.get("HANDOFF_API_TOKEN") or _secret_from_file("handoff_token")
        self.session_secret = (self.session_secret or os.environ.get("HANDOFF_SESSION_SECRET")
                               or _secret_from_file("handoff_session"))
        self.shop_token_secret = self.shop_token_secret or os.environ.get("SHOP_TOKEN_SECRET") or _secret_from_file("shop_token")
        self.log_dir.mkdir(parents=True, exist_ok=True)

    # -- environment ---------------------------------------------------------------------
    @property
    def rasa_url(self) -> str:
        return f"http://127.0.0.1:{self.rasa_port}"

    @property
    def actions_url(self) -> str:
        return f"http://127.0.0.1:{self.actions_port}"

    @property
    def handoff_url(self) -> str:
        return f"http://127.0.0.1:{self.handoff_port}"

    def env(self) -> Dict[str, str]:
        env = dict(os.environ)
        env.update(parse_redis_url(self.redis_url))
        env.update(
            {
                "ACTION_ENDPOINT_URL": f"{self.actions_url}/webhook",
                "HANDOFF_URL": self.handoff_url,
                "HANDOFF_API_TOKEN": self.handoff_token,
                "SHOP_TOKEN_SECRET": self.shop_token_secret,
                "PYTHONPATH": str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
                "TF_CPP_MIN_LOG_LEVEL": "2",
                "RASA_TELEMETRY_ENABLED": "false",
                "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
            }
        )
        # A conversation's lock outlives a killed Rasa server by this much (Rasa: 60 s, so the
        # customer's next message would wait a minute); longer than any turn, which the action
        # server's time limit bounds (bot/action_server_down.py).
        env.setdefault("TICKET_LOCK_LIFETIME", str(LOCK_LIFETIME_SECONDS))
        # The WhatsApp channel in credentials.yml reads these. Until a Meta app is configured it
        # runs with random per-installation secrets, so no delivery passes its signature check.
        env.setdefault("WHATSAPP_VERIFY_TOKEN", _secret_from_file("whatsapp_verify_token"))
        env.setdefault("WHATSAPP_APP_SECRET", _secret_from_file("whatsapp_app_secret"))
        env.setdefault("WHATSAPP_ACCESS_TOKEN", _secret_from_file("whatsapp_access_token"))
        env.setdefault("WHATSAPP_PHONE_NUMBER_ID", "0")
        env.setdefault("WHATSAPP_GRAPH_API_URL", "https://graph.facebook.com/v19.0")
        env.update(self.extra_env)
        return env

    def auth_headers(self) -> Dict[str, str]:
        return {"Authorization": f"Bearer {admin_token(self.jwt_secret)}"}

    # -- processes -----------------------------------------------------------------------
    def _spawn(self, name: str, args: List[str], env: Optional[Dict[str, str]] = None) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "ab")
        proc = subprocess.Popen(
            args, cwd=ROOT, env=dict(self.env(), **(env or {})), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.processes[name] = proc
        return proc

    def ensure_redis(self) -> None:
        """Uses the Redis at redis_url, or starts a local one with AOF under var/redis."""
        if redis_ping(self.redis_url):
            return
        if shutil.which("redis-server") is None:
            raise SystemExit(f"No Redis at {self.redis_url} and {REDIS_NOT_INSTALLED},\n"
                             "or set REDIS_URL=redis://host:port/db to a Redis you run.")
        env = parse_redis_url(self.redis_url)
        if env["REDIS_HOST"] not in ("127.0.0.1", "localhost"):
            raise SystemExit(f"No Redis reachable at {self.redis_url}.")
        self.redis_dir.mkdir(parents=True, exist_ok=True)
        self._spawn("redis", redis_command(int(env["REDIS_PORT"]), self.redis_dir))
        deadline = time.monotonic() + 10
        while not redis_ping(self.redis_url):
            if time.monotonic() > deadline or self.processes["redis"].poll() is not None:
                raise RuntimeError(f"redis-server did not start; see {self.log_dir / 'redis.log'}")
            time.sleep(0.1)

    def ensure_seeded(self) -> None:
        """Seeds the demo backend database on first start (make seed refreshes it)."""
        result = subprocess.run(
            [sys.executable, "-m", "actions.backend.seed", "--if-empty"],
            cwd=ROOT, env=self.env(), capture_output=True, text=True,
        )
        if result.returncode != 0:
            raise RuntimeError(f"seeding the backend database failed:\n{result.stderr[-2000:]}")
        if self.verbose:
            print(result.stdout.strip(), flush=True)

    def handoff_env(self) -> Dict[str, str]:
        """Environment of the handoff service (its own Python 3.11 environment)."""
        env = dict(os.environ)
        env.update(
            {
                "HANDOFF_REDIS_URL": self.redis_url,
                "HANDOFF_RASA_URL": self.rasa_url,
                "HANDOFF_RASA_JWT_SECRET": self.jwt_secret,
                "HANDOFF_API_TOKEN": self.handoff_token,
                "HANDOFF_SESSION_SECRET": self.session_secret,
                "HANDOFF_HOST": "127.0.0.1",
                "HANDOFF_PORT": str(self.handoff_port),
            }
        )
        env.setdefault("HANDOFF_WIDGET_ORIGINS", f"http://localhost:{self.web_port},http://127.0.0.1:{self.web_port}")
        env.setdefault("HANDOFF_LOG_DIR", str(self.log_dir))  # an erasure also cleans these logs
        env.update({k: v for k, v in self.extra_env.items() if k.startswith("HANDOFF_")})
        return env

    def start_handoff(self) -> None:
        """Starts the handoff service and agent console (FastAPI, .venv-handoff)."""
        python = ROOT / ".venv-handoff" / "bin" / "python"
        if not python.exists():
            raise SystemExit("The handoff service environment is missing: run `make install`.")
        log = open(self.log_dir / "handoff.log", "ab")
        proc = subprocess.Popen([str(python), "-m", "handoff"], cwd=ROOT, env=self.handoff_env(),
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.processes["handoff"] = proc
        _wait_http(f"{self.handoff_url}/health", timeout=60, proc=proc)

    def add_agent(self, username: str, name: str, password: str) -> None:
        """Creates (or updates) an agent account in the handoff service's Redis."""
        python = ROOT / ".venv-handoff" / "bin" / "python"
        env = dict(self.handoff_env(), AGENT_PASSWORD=password)
        subprocess.run([str(python), "-m", "handoff.agents", "add", username, "--name", name,
                        "--password-env", "AGENT_PASSWORD"], cwd=ROOT, env=env, check=True, capture_output=True)

    def start_actions(self) -> None:
        proc = self._spawn(
            "actions",
            [sys.executable, "-m", "rasa_sdk", "--actions", "actions", "--port", str(self.actions_port)],
        )
        _wait_http(f"{self.actions_url}/health", timeout=120, proc=proc)

    def start_rasa(self, port: Optional[int] = None, name: str = "rasa", workers: Optional[int] = None) -> None:
        """Starts a Rasa server (another replica on the same Redis with its own port and name).

        Through the server's entry point (bot/server.py): Rasa's `rasa run` with the assistant's
        changes to Rasa installed, or no start at all on a Rasa release they are not written for.
        With ``workers`` (default :attr:`rasa_workers`) > 1, that many processes serve the one
        port (Sanic workers, Rasa's ``SANIC_WORKERS``; allowed because the lock store is Redis),
        each with its own copy of the model.
        """
        model = self.model or ensure_model()
        port = port or self.rasa_port
        workers = workers or self.rasa_workers
        proc = self._spawn(
            name,
            [sys.executable, "-m", "bot.server", "run", "--model", str(model), "--port", str(port),
             "--enable-api", "--jwt-secret", self.jwt_secret, "--jwt-method", "HS256",
             "--credentials", "credentials.yml", "--endpoints", "endpoints.yml", "--cors", "*"],
            env={"SANIC_WORKERS": str(workers)} if workers > 1 else None,
        )
        status = _wait_http(f"http://127.0.0.1:{port}/status", timeout=300, headers=self.auth_headers(), proc=proc)
        if not status.get("model_file"):
            raise RuntimeError(f"Rasa started without a model: {status}")

    def start_web(self) -> None:
        """Starts the demo shop with the chat widget (web/server.py; a free port if web_port is taken).

        Before start_handoff: the handoff service lets the shop's origin read transcripts (CORS).
        """
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", self.web_port))
            except OSError:
                self.web_port = free_port()
        env = self.env()
        env.setdefault("RASA_PUBLIC_URL", f"http://localhost:{self.rasa_port}")
        env.setdefault("HANDOFF_PUBLIC_URL", f"http://localhost:{self.handoff_port}")
        log = open(self.log_dir / "web.log", "ab")
        proc = subprocess.Popen([sys.executable, "web/server.py", "--port", str(self.web_port)], cwd=ROOT, env=env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.processes["web"] = proc
        _wait_http(f"http://127.0.0.1:{self.web_port}/health", timeout=30, proc=proc)

    def stop_process(self, name: str, timeout: float = 20) -> None:
        proc = self.processes.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def restart_rasa(self) -> None:
        """Kills and starts the Rasa server (the conversation state must survive in Redis)."""
        self.stop_process("rasa")
        self.start_rasa()

    def start(self) -> Stack:
        self.model = self.model or ensure_model()
        self.ensure_redis()
        self.ensure_seeded()
        self.start_web()
        self.start_handoff()
        self.start_actions()
        self.start_rasa()
        return self

    def stop(self) -> None:
        order = ("web", "rasa", "actions", "handoff", "redis")
        for name in [n for n in self.processes if n not in order] + list(order):
            self.stop_process(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rasa-port", type=int, default=int(os.environ.get("RASA_PORT", 5005)))
    parser.add_argument("--actions-port", type=int, default=int(os.environ.get("ACTIONS_PORT", 5055)))
    parser.add_argument("--handoff-port", type=int, default=int(os.environ.get("HANDOFF_PORT", 8000)))
    parser.add_argument("--web-port", type=int, default=int(os.environ.get("WEB_PORT", 8080)))
    parser.add_argument("--rasa-workers", type=int, default=int(os.environ.get("RASA_WORKERS", DEFAULT_RASA_WORKERS)),
                        help="processes serving Rasa's port (Sanic workers, each with its own model)")
    args = parser.parse_args()

    stack = Stack(rasa_port=args.rasa_port, actions_port=args.actions_port, handoff_port=args.handoff_port,
                  web_port=args.web_port, rasa_workers=max(1, args.rasa_workers), verbose=True)
    stopping = False

    def _stop(*_: object) -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            print("\nstopping...", flush=True)
            stack.stop()
            sys.exit(0)

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        print("checking the model (trains only when data or config changed)...", flush=True)
        stack.model = ensure_model()
        stack.ensure_redis()
        print(f"redis:   {stack.redis_url}" + ("  (started here, AOF in var/redis)" if "redis" in stack.processes else ""))
        stack.ensure_seeded()
        stack.start_web()
        stack.start_handoff()
        agent_password = _secret_from_file("agent_password")
        stack.add_agent("agent", "Demo Agent", agent_password)
        print(f"console: {stack.handoff_url}  (sign in as 'agent', password in var/secrets/agent_password)")
        stack.start_actions()
        print(f"actions: {stack.actions_url}")
        print(f"shop:    http://localhost:{stack.web_port}  (demo shop with the chat widget)")
        stack.start_rasa()
    except BaseException:
        stack.stop()
        raise
    print(
        f"rasa:    {stack.rasa_url}  (model {stack.model.name}"
        f"{f', {stack.rasa_workers} worker processes' if stack.rasa_workers > 1 else ''})\n\n"
        f"Ready. Chat in this terminal with `make shell`, or over REST:\n"
        f"  curl -s {stack.rasa_url}/webhooks/rest/webhook -d '{{\"sender\": \"me\", \"message\": \"hallo\"}}'\n"
        f"socket.io for a web widget: {stack.rasa_url}/socket.io\n"
        f"HTTP API (JWT, HS256, secret in var/secrets/rasa_jwt): {stack.rasa_url}/status\n"
        f"Logs in {stack.log_dir}. Ctrl-C stops everything started here.",
        flush=True,
    )
    whatsapp_warning = whatsapp_settings_warning({**os.environ, **stack.extra_env})
    if whatsapp_warning:
        print(f"\nwarning: {whatsapp_warning}", flush=True)
    while True:
        for name, proc in list(stack.processes.items()):
            if proc.poll() is not None:
                print(f"{name} exited with code {proc.returncode}; see {stack.log_dir / (name + '.log')}", flush=True)
                _stop()
        time.sleep(1)


if __name__ == "__main__":
    main()
