"""The Rasa server's entry point: ``python -m bot.server run [the arguments of rasa run]``.

Installs every change bot/ makes to Rasa (bot/rasa_patches.py) and then hands over to Rasa's own
command line with the same arguments: ``python -m bot.server run --model m.tar.gz --port 5005``
is ``rasa run --model m.tar.gz --port 5005`` with the assistant's patches. On a Rasa release the
patches are not written for, or one that lacks what they replace, the server does not start: it
exits with status 1 and a message naming the release found and the ones supported.

Everything that starts the assistant's Rasa server goes through here: scripts/stack.py (``make
run``, the end-to-end, chaos and benchmark runs) and deploy/docker/bot-entrypoint.sh (the image,
docker-compose.yml, deploy/k8s/rasa.yaml). Training and ``rasa test`` need no patches and call
Rasa directly.
"""

from __future__ import annotations

import sys
from typing import Optional, Sequence

import rasa.__main__ as rasa_cli

from bot import rasa_patches
from bot.rasa_guard import UnsupportedRasa


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Installs the patches, then runs Rasa's command line with ``argv`` (default: ours)."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        rasa_patches.install()
    except UnsupportedRasa as error:
        raise SystemExit(f"bot.server: the Rasa server does not start: {error}") from None
    sys.argv = ["rasa", *arguments]
    rasa_cli.main()


if __name__ == "__main__":
    main()
