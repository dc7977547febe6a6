"""Container health check without curl: ``python healthcheck.py URL [--jwt-env VAR] [--expect KEY]``.

Exit 0 when URL answers 2xx within the timeout (and, with --expect, its JSON body has a non-empty
KEY). ``--jwt-env RASA_JWT_SECRET`` sends the admin JWT Rasa's /status requires (HS256, PyJWT
comes with Rasa), so the Rasa check means "the model is loaded", not just "the port is open".
Standard library only apart from that option, so every image can use it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.request


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--jwt-env", help="environment variable with the HS256 secret for a Bearer token")
    parser.add_argument("--expect", help="key that must be non-empty in the JSON answer")
    parser.add_argument("--timeout", type=float, default=5.0)
    args = parser.parse_args()
    headers = {}
    if args.jwt_env:
        import jwt

        token = jwt.encode({"user": {"username": "healthcheck", "role": "admin"}},
                           os.environ[args.jwt_env], algorithm="HS256")
        headers["Authorization"] = f"Bearer {token}"
    try:
        with urllib.request.urlopen(urllib.request.Request(args.url, headers=headers), timeout=args.timeout) as response:
            body = response.read()
    except Exception as error:  # noqa: BLE001 - any failure is "unhealthy"
        print(f"unhealthy: {args.url}: {error}", file=sys.stderr)
        return 1
    if args.expect:
        try:
            value = json.loads(body or b"{}").get(args.expect)
        except (ValueError, AttributeError):
            value = None
        if not value:
            print(f"unhealthy: {args.url} has no {args.expect!r}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
