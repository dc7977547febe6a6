"""``python -m handoff``: serves the handoff service with uvicorn on HANDOFF_HOST:HANDOFF_PORT."""

from __future__ import annotations

import logging
import sys

from pydantic import ValidationError


def main() -> int:
    """Checks the settings (a clear message instead of a traceback), then runs uvicorn."""
    import uvicorn

    from handoff.settings import get_settings

    try:
        settings = get_settings()
    except ValidationError as error:
        for problem in error.errors():
            print(f"handoff: {problem['msg']}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from contract.log_masking import install as mask_personal_data

    mask_personal_data()  # e-mail, phone, postcode, IBAN never reach the log (again at start-up, for uvicorn's)
    # X-Forwarded-Proto is trusted from FORWARDED_ALLOW_IPS (uvicorn's default: 127.0.0.1), so a
    # TLS proxy on this host makes the session cookie Secure.
    uvicorn.run("handoff.app:app", host=settings.host, port=settings.port, proxy_headers=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
