"""Agents: scrypt password hashing, sign-in checks, and the command line to manage them.

Usage::

    python -m handoff.agents add eva --name "Eva de Jong" --password-env EVA_PASSWORD
    python -m handoff.agents add eva --name "Eva de Jong" --password 'a long passphrase' --role supervisor
    python -m handoff.agents role eva admin
    python -m handoff.agents list
    python -m handoff.agents remove eva

Only ``HANDOFF_REDIS_URL`` (or ``--redis-url``) is needed; the service's secrets are not.
``--password-env`` keeps the password out of the shell history and the process list.
Roles (``agent``, ``supervisor``, ``admin``; see ``handoff/api/roles.py``): a new agent is an
``agent`` unless ``--role`` says otherwise; ``add`` for an existing agent (a new password) keeps
their role unless ``--role`` is given.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import getpass
import hashlib
import hmac
import os
import re
import sys
from functools import lru_cache
from typing import List, Optional

from redis.exceptions import RedisError

from handoff.models import DEFAULT_ROLE, ROLES
from handoff.store import Agent, Store

# scrypt cost: about 50 ms and 16 MiB per check on a laptop; slow for a guesser, fine for a login.
SCRYPT_N = 2 ** 14
SCRYPT_R = 8
SCRYPT_P = 1
SCRYPT_DKLEN = 32
MIN_PASSWORD_LENGTH = 8
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str) -> str:
    """``scrypt$N$r$p$salt$hash`` (base64) with a random 16-byte salt."""
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P,
                            dklen=SCRYPT_DKLEN)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches ``stored`` (constant-time comparison)."""
    try:
        scheme, n, r, p, salt, expected = stored.split("$")
        if scheme != "scrypt":
            return False
        digest = hashlib.scrypt(password.encode("utf-8"), salt=base64.b64decode(salt), n=int(n), r=int(r),
                                p=int(p), dklen=len(base64.b64decode(expected)))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(digest, base64.b64decode(expected))


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return hash_password("no such agent")


async def authenticate(store: Store, username: str, password: str) -> Optional[Agent]:
    """The agent if the password is right, else None (same work and answer for unknown users)."""
    agent = await store.get_agent(normalise_username(username))
    stored = agent.password_hash if agent else _dummy_hash()
    # scrypt is deliberately slow: keep it off the event loop.
    ok = await asyncio.to_thread(verify_password, password, stored)
    return agent if agent and ok else None


def normalise_username(username: str) -> str:
    """Usernames are case-insensitive."""
    return username.strip().lower()


async def add_agent(
    store: Store, username: str, name: str, password: str, role: Optional[str] = None,
) -> Agent:
    """Creates (or replaces) an agent.

    Args:
        role: ``agent``, ``supervisor`` or ``admin``; None keeps an existing agent's role (a new
            password must not demote an admin) and makes a new one an ``agent``.

    Raises:
        ValueError: bad username, empty name, too short password or unknown role.
    """
    username = normalise_username(username)
    if not USERNAME.match(username):
        raise ValueError("username: 1-64 characters a-z, 0-9, '.', '_' or '-'")
    if not name.strip():
        raise ValueError("name must not be empty")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"password must have at least {MIN_PASSWORD_LENGTH} characters")
    if role is not None and role not in ROLES:
        raise ValueError(f"role: one of {', '.join(ROLES)}")
    if role is None:
        existing = await store.get_agent(username)
        role = existing.role if existing else DEFAULT_ROLE
    agent = Agent(username, name.strip(), await asyncio.to_thread(hash_password, password), role)
    await store.save_agent(agent)
    return agent


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m handoff.agents", description="Manage console agents.")
    parser.add_argument("--redis-url", default=None, help="default: $HANDOFF_REDIS_URL or redis://127.0.0.1:6379/0")
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser("add", help="create or update an agent")
    add.add_argument("username")
    add.add_argument("--name", required=True, help='display name shown to customers, e.g. "Eva de Jong"')
    secret = add.add_mutually_exclusive_group()
    secret.add_argument("--password", help="the password (visible in the process list; prefer --password-env)")
    secret.add_argument("--password-env", metavar="VAR", help="read the password from this environment variable")
    add.add_argument("--role", choices=ROLES, default=None,
                     help="agent (default for a new agent), supervisor or admin; an existing agent keeps theirs")
    role = commands.add_parser("role", help="change an agent's role (effective on their next request)")
    role.add_argument("username")
    role.add_argument("role", choices=ROLES)
    commands.add_parser("list", help="list agents, their roles and who is online")
    remove = commands.add_parser("remove", help="delete an agent")
    remove.add_argument("username")
    return parser


def _password(args: argparse.Namespace) -> str:
    if args.password is not None:
        return args.password
    if args.password_env:
        value = os.environ.get(args.password_env)
        if value is None:
            raise ValueError(f"environment variable {args.password_env} is not set")
        return value
    if sys.stdin.isatty():
        first = getpass.getpass("password: ")
        if first != getpass.getpass("again: "):
            raise ValueError("the passwords differ")
        return first
    raise ValueError("give --password or --password-env")


async def _run(args: argparse.Namespace) -> int:
    from redis.asyncio import Redis

    from handoff.settings import Settings

    # env=local: managing agents needs Redis only, not the service's secrets.
    settings = Settings(env="local")
    if args.redis_url:
        settings = Settings(env="local", redis_url=args.redis_url)
    redis = Redis.from_url(settings.redis_url, decode_responses=True)
    try:
        store = Store(redis, settings)
        if args.command == "add":
            agent = await add_agent(store, args.username, args.name, _password(args), args.role)
            print(f"agent {agent.username} ({agent.name}, {agent.role}) saved")
        elif args.command == "role":
            if not await store.set_agent_role(normalise_username(args.username), args.role):
                print(f"no agent {args.username}", file=sys.stderr)
                return 1
            print(f"agent {args.username} is now {args.role}")
        elif args.command == "list":
            online = set(await store.available_agents())
            for agent in await store.list_agents():
                presence = "online" if agent.username in online else "offline"
                print(f"{agent.username}\t{agent.name}\t{presence}\t{agent.role}")
        elif args.command == "remove":
            if not await store.remove_agent(normalise_username(args.username)):
                print(f"no agent {args.username}", file=sys.stderr)
                return 1
            print(f"agent {args.username} removed")
        return 0
    finally:
        await redis.aclose()


def main(argv: Optional[List[str]] = None) -> int:
    """Command-line entry point."""
    args = _parser().parse_args(argv)
    try:
        return asyncio.run(_run(args))
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (OSError, RedisError) as error:
        print(f"error: Redis is not reachable ({type(error).__name__})", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
