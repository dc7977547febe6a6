# syntax=docker/dockerfile:1
# The demo shop with the chat widget (web/server.py; standard library + PyJWT). Optional: a real
# shop embeds web/widget/helder-widget.js itself.
#
#   docker build -f deploy/docker/web.Dockerfile -t helder-web .
#
# RASA_PUBLIC_URL and HANDOFF_PUBLIC_URL are the addresses the *browser* uses: the
# customer-facing proxy (deploy/nginx), which serves /socket.io/ and /public/conversations/.

# socket.io-client from the npm registry, exactly as web/package-lock.json says (no CDN).
FROM node:20-bookworm-slim AS vendor
WORKDIR /web
COPY web/package.json web/package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

FROM python:3.10-slim-bookworm
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1 \
    SHOP_HOST=0.0.0.0 SHOP_PORT=8080
COPY requirements/bot-lock.txt /tmp/bot-lock.txt
# The PyJWT version of the bot environment (the shop runs there locally).
RUN pip install "$(grep -i '^pyjwt==' /tmp/bot-lock.txt)" \
 && groupadd --system --gid 10001 app && useradd --system --uid 10001 --gid app app
WORKDIR /app
COPY web/server.py web/server.py
COPY web/shop/ web/shop/
COPY web/widget/ web/widget/
COPY --from=vendor /web/node_modules/ web/node_modules/
COPY deploy/docker/healthcheck.py /usr/local/bin/healthcheck.py
USER app
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
  CMD ["python", "/usr/local/bin/healthcheck.py", "http://127.0.0.1:8080/health"]
CMD ["python", "web/server.py"]
