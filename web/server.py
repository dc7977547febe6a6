"""The demo shop that embeds the chat widget: ``python web/server.py --port 8080`` (bot environment).

Serves the shop's pages (home, a product, the customer's orders; Dutch and English), the widget
(``/widget/helder-widget.js`` + ``.css``) and its socket.io client from ``web/node_modules``
(``/widget/vendor/socket.io.min.js``, installed by ``scripts/install_web.sh``; no CDN).

Sign-in is a demo: ``GET`` or ``POST /login?customer=48213377`` sets a signed cookie (as a real
shop's own sign-in would); every page then embeds a fresh shop token for the widget, a JWT (HS256,
``SHOP_TOKEN_SECRET``) with ``{"sub": "<customer number>", "iat", "exp"}``, valid for
``SHOP_TOKEN_MINUTES`` (default 30, at most 60). ``GET /token`` gives the widget a new one when the
page has been open long. ``GET /logout`` signs out.

Environment: ``SHOP_TOKEN_SECRET`` (required; ``scripts/stack.py`` passes the one the action server
verifies with), ``RASA_PUBLIC_URL`` (default ``http://localhost:5005``) and ``HANDOFF_PUBLIC_URL``
(``http://localhost:8000``): the addresses the *browser* uses for Rasa's socket.io and for the
transcript. Standard library plus PyJWT (which comes with Rasa).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import html
import json
import logging
import mimetypes
import os
import re
import sys
import time
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from string import Template
from typing import Dict, List, Optional, Tuple
from urllib.parse import parse_qs, urlsplit

import jwt

WEB = Path(__file__).resolve().parent
SHOP = WEB / "shop"
WIDGET = WEB / "widget"
VENDOR = WEB / "node_modules" / "socket.io-client" / "dist"
VENDOR_FILES = {"socket.io.min.js", "socket.io.min.js.map"}

LANG_COOKIE = "shop_lang"
CUSTOMER_COOKIE = "shop_customer"
SIGN_IN_HOURS = 8
CUSTOMER_NUMBER = re.compile(r"^\d{8}$")
LOCALES = {"nl": "nl-NL", "en": "en-GB"}
PAGES = {"/": "home", "/product": "product", "/orders": "orders"}

# The shop's own customer records, as far as the demo needs them (the same people as the seed).
DEMO_CUSTOMERS = {
    "48213377": "Sanne de Vries", "51937204": "Pieter Janssens", "60418825": "Emily Clarke",
    "72055139": "Ahmed El Amrani", "39481726": "Lotte Visser",
}
DEMO_ORDERS: Dict[str, List[Tuple[str, str, Dict[str, str]]]] = {
    "48213377": [("2024118832", "Philips föhn", {"nl": "onderweg met PostNL", "en": "on its way with PostNL"}),
                 ("2024097710", "HP printer", {"nl": "bezorgd", "en": "delivered"})],
    "51937204": [("2024120451", "Sony koptelefoon", {"nl": "vertraagd", "en": "delayed"})],
    "60418825": [("2024121190", "Dyson vacuum cleaner", {"nl": "in behandeling", "en": "being prepared"})],
    "72055139": [("2024110032", "Lenovo laptop", {"nl": "onderweg met PostNL", "en": "on its way with PostNL"})],
    "39481726": [("2024071234", "Sitecom router", {"nl": "bezorgd", "en": "delivered"})],
}

TEXT = {
    "nl": {
        "nav_home": "Home", "nav_product": "Föhn", "nav_orders": "Mijn bestellingen",
        "signed_in_as": "Aangemeld als", "sign_out": "Afmelden", "sign_in": "Aanmelden als demoklant",
        "sign_in_label": "Demoklant", "switch": "English", "switch_label": "Switch to English",
        "title_home": "Helder – elektronica", "title_product": "Philips föhn HP8230 – Helder",
        "title_orders": "Mijn bestellingen – Helder",
        "orders_none": "Meld u aan om uw bestellingen te zien.", "order": "Bestelling",
        "footer": "Demowinkel bij Helder klantcontact. Vragen? Gebruik de chat rechtsonder.",
        "skip": "Naar de inhoud", "nav_label": "Winkel",
    },
    "en": {
        "nav_home": "Home", "nav_product": "Hair dryer", "nav_orders": "My orders",
        "signed_in_as": "Signed in as", "sign_out": "Sign out", "sign_in": "Sign in as demo customer",
        "sign_in_label": "Demo customer", "switch": "Nederlands", "switch_label": "Naar het Nederlands",
        "title_home": "Helder – electronics", "title_product": "Philips hair dryer HP8230 – Helder",
        "title_orders": "My orders – Helder",
        "orders_none": "Sign in to see your orders.", "order": "Order",
        "footer": "Demo shop of Helder customer service. Questions? Use the chat at the bottom right.",
        "skip": "Skip to content", "nav_label": "Shop",
    },
}

logger = logging.getLogger("shop")


class Config:
    """What the server reads from the environment, checked once at start."""

    def __init__(self, environ: Dict[str, str]) -> None:
        self.secret = environ.get("SHOP_TOKEN_SECRET", "").strip()
        if len(self.secret) < 16:
            raise SystemExit("SHOP_TOKEN_SECRET is missing or shorter than 16 characters: set the secret the "
                             "action server verifies shop tokens with (scripts/stack.py does).")
        self.rasa_url = environ.get("RASA_PUBLIC_URL", "http://localhost:5005").rstrip("/")
        self.history_url = environ.get("HANDOFF_PUBLIC_URL", "http://localhost:8000").rstrip("/")
        self.token_minutes = max(1, min(60, int(environ.get("SHOP_TOKEN_MINUTES", "30"))))
        self.cookie_key = hmac.new(self.secret.encode(), b"helder-shop-sign-in-cookie", hashlib.sha256).digest()

    # -- the shop token (what the assistant verifies) -------------------------------------------
    def shop_token(self, customer: str, now: Optional[float] = None) -> str:
        issued = int(now if now is not None else time.time())
        claims = {"sub": customer, "iat": issued, "exp": issued + self.token_minutes * 60}
        return jwt.encode(claims, self.secret, algorithm="HS256")

    # -- the sign-in cookie (the shop's own session) --------------------------------------------
    def sign_in_cookie(self, customer: str, now: Optional[float] = None) -> str:
        expires = int(now if now is not None else time.time()) + SIGN_IN_HOURS * 3600
        body = f"{customer}.{expires}"
        return f"{body}.{self._mac(body)}"

    def customer_of(self, cookie: Optional[str], now: Optional[float] = None) -> Optional[str]:
        """The signed-in customer number, or None (no cookie, forged, expired)."""
        try:
            customer, expires, mac = (cookie or "").split(".")
        except ValueError:
            return None
        if not hmac.compare_digest(mac, self._mac(f"{customer}.{expires}")):
            return None
        if not CUSTOMER_NUMBER.match(customer) or not expires.isdigit():
            return None
        return customer if int(expires) > (now if now is not None else time.time()) else None

    def _mac(self, body: str) -> str:
        return hmac.new(self.cookie_key, body.encode(), hashlib.sha256).hexdigest()

    def csp(self) -> str:
        """Content-Security-Policy of the pages: the widget needs no inline code and no eval."""
        sockets = [re.sub(r"^http", "ws", self.rasa_url)]
        connect = " ".join(["'self'", self.rasa_url, *sockets, self.history_url])
        return ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                f"connect-src {connect}; frame-ancestors 'none'; base-uri 'self'; form-action 'self'")


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def safe_next(value: Optional[str]) -> str:
    """A local path to return to after sign-in/out (never another site)."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return urlsplit(value).path or "/"
    return "/"


class Shop:
    """Renders the pages: layout + the page's fragment in the page's language."""

    def __init__(self, config: Config) -> None:
        self.config = config

    def page(self, name: str, lang: str, customer: Optional[str], path: str) -> str:
        text = TEXT[lang]
        layout = Template((SHOP / "layout.html").read_text(encoding="utf-8"))
        fragment = Template((SHOP / "pages" / f"{name}.{lang}.html").read_text(encoding="utf-8"))
        content = fragment.safe_substitute(orders=self.orders(lang, customer), customer=esc(customer or ""))
        return layout.safe_substitute(
            lang=lang, title=esc(text[f"title_{name}"]), content=content, account=self.account(lang, customer, path),
            nav=self.nav(lang, name), switch_lang="en" if lang == "nl" else "nl", switch=esc(text["switch"]),
            switch_label=esc(text["switch_label"]), switch_hreflang="en" if lang == "nl" else "nl",
            path=esc(path), footer=esc(text["footer"]), widget=self.widget_tag(lang, customer),
            skip=esc(text["skip"]), nav_label=esc(text["nav_label"]),
        )

    def nav(self, lang: str, current: str) -> str:
        text = TEXT[lang]
        links = []
        for path, name in PAGES.items():
            here = ' aria-current="page"' if name == current else ""
            links.append(f'<li><a href="{path}"{here}>{esc(text["nav_" + name])}</a></li>')
        return "\n".join(links)

    def account(self, lang: str, customer: Optional[str], path: str) -> str:
        text = TEXT[lang]
        if customer:
            name = DEMO_CUSTOMERS.get(customer, customer)
            return (f'<span class="who" data-testid="signed-in">{esc(text["signed_in_as"])} {esc(name)} '
                    f'({esc(customer)})</span> <a href="/logout" data-testid="sign-out">{esc(text["sign_out"])}</a>')
        options = "".join(f'<option value="{esc(number)}">{esc(name)} ({esc(number)})</option>'
                          for number, name in DEMO_CUSTOMERS.items())
        return (f'<form class="sign-in" method="post" action="/login">'
                f'<input type="hidden" name="next" value="{esc(path)}">'
                f'<label for="demo-customer">{esc(text["sign_in_label"])}</label> '
                f'<select id="demo-customer" name="customer">{options}</select> '
                f'<button type="submit" data-testid="sign-in">{esc(text["sign_in"])}</button></form>')

    def orders(self, lang: str, customer: Optional[str]) -> str:
        text = TEXT[lang]
        if not customer:
            return f'<p>{esc(text["orders_none"])}</p>'
        rows = "".join(f"<li><strong>{esc(text['order'])} {esc(number)}</strong>: {esc(product)} – {esc(status[lang])}</li>"
                       for number, product, status in DEMO_ORDERS.get(customer, []))
        return f'<ul class="orders">{rows}</ul>'

    def widget_tag(self, lang: str, customer: Optional[str]) -> str:
        """The one script tag that embeds the widget, with a fresh token for a signed-in customer."""
        attributes = {
            "src": "/widget/helder-widget.js",
            "data-rasa-url": self.config.rasa_url,
            "data-history-url": self.config.history_url,
            "data-locale": LOCALES[lang],
            "data-shop-token": self.config.shop_token(customer) if customer else "",
            "data-token-url": "/token",
        }
        rendered = " ".join(f'{name}="{esc(value)}"' for name, value in attributes.items())
        return f"<script {rendered} defer></script>"


class Handler(BaseHTTPRequestHandler):
    server_version = "HelderShop/1.0"
    shop: Shop  # set by make_server

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base class's name)
        logger.info("%s %s", self.address_string(), format % args)

    # -- request parts ----------------------------------------------------------------------
    def cookies(self) -> Dict[str, str]:
        jar = SimpleCookie()
        try:
            jar.load(self.headers.get("Cookie", ""))
        except CookieError:
            return {}
        return {name: morsel.value for name, morsel in jar.items()}

    def language(self, query: Dict[str, List[str]]) -> str:
        wanted = (query.get("lang") or [None])[0] or self.cookies().get(LANG_COOKIE)
        if wanted in TEXT:
            return wanted
        accept = self.headers.get("Accept-Language", "").lower()
        return "en" if accept.startswith("en") else "nl"

    def customer(self) -> Optional[str]:
        return self.shop.config.customer_of(self.cookies().get(CUSTOMER_COOKIE))

    # -- responses ----------------------------------------------------------------------------
    def send(self, status: int, body: bytes, content_type: str, headers: Optional[Dict[str, str]] = None,
             cookies: Optional[List[str]] = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "same-origin")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        for cookie in cookies or []:
            self.send_header("Set-Cookie", cookie)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def redirect(self, location: str, cookies: Optional[List[str]] = None) -> None:
        self.send(HTTPStatus.SEE_OTHER, b"", "text/plain", {"Location": location, "Cache-Control": "no-store"}, cookies)

    def json(self, status: int, body: object) -> None:
        self.send(status, json.dumps(body).encode(), "application/json", {"Cache-Control": "no-store"})

    def not_found(self) -> None:
        self.send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain; charset=utf-8")

    def file(self, path: Path) -> None:
        if not path.is_file():
            if path.parent == VENDOR:
                logger.warning("%s is missing: run scripts/install_web.sh", path)
            return self.not_found()
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if content_type.startswith("text/") or content_type.endswith("javascript"):
            content_type += "; charset=utf-8"
        self.send(HTTPStatus.OK, path.read_bytes(), content_type, {"Cache-Control": "no-cache"})

    # -- routes ---------------------------------------------------------------------------------
    def do_HEAD(self) -> None:  # noqa: N802 (http.server's naming)
        self.do_GET()

    def do_GET(self) -> None:  # noqa: N802
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        path = url.path
        if path == "/health":
            return self.json(HTTPStatus.OK, {"status": "ok"})
        if path in PAGES:
            if (query.get("lang") or [None])[0] in TEXT:  # the language switch: remember, then a clean URL
                return self.redirect(path, [f"{LANG_COOKIE}={query['lang'][0]}; Path=/; Max-Age=31536000; SameSite=Lax"])
            lang = self.language(query)
            body = self.shop.page(PAGES[path], lang, self.customer(), path).encode("utf-8")
            return self.send(HTTPStatus.OK, body, "text/html; charset=utf-8", {
                "Cache-Control": "no-store",  # the page carries a short-lived token
                "Content-Security-Policy": self.shop.config.csp(),
                "X-Frame-Options": "DENY",
            })
        if path == "/login":
            return self.sign_in((query.get("customer") or [""])[0], (query.get("next") or [None])[0])
        if path == "/logout":
            return self.redirect(safe_next((query.get("next") or [None])[0]),
                                 [f"{CUSTOMER_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax"])
        if path == "/token":
            customer = self.customer()
            if not customer:
                return self.json(HTTPStatus.UNAUTHORIZED, {"token": None})
            return self.json(HTTPStatus.OK, {"token": self.shop.config.shop_token(customer)})
        if path == "/static/shop.css":
            return self.file(SHOP / "shop.css")
        if path.startswith("/widget/vendor/"):
            name = path[len("/widget/vendor/"):]
            return self.file(VENDOR / name) if name in VENDOR_FILES else self.not_found()
        if path.startswith("/widget/"):
            name = path[len("/widget/"):]
            if re.fullmatch(r"[a-z0-9-]+\.(js|css)", name):
                return self.file(WIDGET / name)
        return self.not_found()

    def do_POST(self) -> None:  # noqa: N802
        url = urlsplit(self.path)
        if url.path != "/login":
            return self.not_found()
        length = min(int(self.headers.get("Content-Length") or 0), 4096)
        form = parse_qs(self.rfile.read(length).decode("utf-8", "replace")) if length else {}
        query = parse_qs(url.query)
        customer = (form.get("customer") or query.get("customer") or [""])[0]
        self.sign_in(customer, (form.get("next") or query.get("next") or [None])[0])

    def sign_in(self, customer: str, next_path: Optional[str]) -> None:
        """The demo sign-in: any 8-digit customer number (a real shop checks a password here)."""
        customer = customer.strip()
        if not CUSTOMER_NUMBER.match(customer):
            return self.send(HTTPStatus.BAD_REQUEST, b"customer must be an 8-digit customer number\n",
                             "text/plain; charset=utf-8")
        cookie = self.shop.config.sign_in_cookie(customer)
        self.redirect(safe_next(next_path), [f"{CUSTOMER_COOKIE}={cookie}; Path=/; Max-Age={SIGN_IN_HOURS * 3600}; "
                                              "HttpOnly; SameSite=Lax"])


def make_server(host: str, port: int, config: Config) -> ThreadingHTTPServer:
    handler = type("ShopHandler", (Handler,), {"shop": Shop(config)})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="The demo shop with the chat widget.")
    parser.add_argument("--host", default=os.environ.get("SHOP_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("SHOP_PORT", "8080")))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = Config(dict(os.environ))
    if not (VENDOR / "socket.io.min.js").is_file():
        logger.warning("web/node_modules is missing: run scripts/install_web.sh, or the widget cannot connect")
    server = make_server(args.host, args.port, config)
    logger.info("shop on http://%s:%d (rasa %s, history %s)", args.host, args.port, config.rasa_url, config.history_url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
