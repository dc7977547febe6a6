"""Identity the channel already vouches for: WhatsApp's phone number, the shop's signed token.

Service rule 1: a customer the channel identifies is never asked who they are. Only what the
client cannot forge counts: the phone number only on the WhatsApp channel (Rasa's input channel,
set by the connector, not by the client), and a shop token only with a valid HS256 signature
and expiry.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any, Dict, Optional, Tuple

import jwt

from actions.backend import BackendUnavailable, Customer, get_async_backend

logger = logging.getLogger(__name__)

# A shop token may live at most this long, whatever its own expiry says.
MAX_TOKEN_AGE_SECONDS = 3600


async def customer_from_shop_token(token: str, secret: Optional[str] = None) -> Optional[Customer]:
    """The customer named by a valid token signed by the shop; None for forged or expired ones."""
    secret = secret if secret is not None else os.environ.get("SHOP_TOKEN_SECRET", "")
    if not secret or not isinstance(token, str):
        return None
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"], options={"require": ["sub", "exp", "iat"]})
    except jwt.PyJWTError as error:
        logger.info("shop token refused: %s", type(error).__name__)
        return None
    if claims["exp"] - claims["iat"] > MAX_TOKEN_AGE_SECONDS or claims["iat"] > time.time() + 60:
        logger.info("shop token refused: lifetime too long or issued in the future")
        return None
    return await get_async_backend().get_customer(str(claims["sub"]))


async def identify_from_channel(
    metadata: Dict[str, Any], input_channel: Optional[str]
) -> Optional[Tuple[Customer, str]]:
    """The customer and how they were verified, if the channel vouches for them."""
    try:
        token = metadata.get("shop_token")
        if token:
            customer = await customer_from_shop_token(token)
            if customer:
                return customer, "shop_token"
        phone = metadata.get("phone")
        if phone and input_channel == "whatsapp":
            customer = await get_async_backend().find_by_phone(str(phone))
            if customer:
                return customer, "whatsapp_phone"
    except BackendUnavailable as error:
        logger.warning("backend unavailable while identifying from the channel: %s", error)
    return None
