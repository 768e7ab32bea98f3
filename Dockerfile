# The gateway as one image: `gateway serve` by default, `gateway db upgrade` to migrate.
FROM python:3.12-slim

WORKDIR /app
COPY pyproject.toml README.md constraints.txt ./
COPY gateway gateway
COPY storage storage
COPY templates templates
# Every dependency at the version constraints.txt pins (`./dev constraints` renews it).
RUN pip install --no-cache-dir -c constraints.txt ".[postgres]"
# An unprivileged user runs the gateway and owns /data: a new named volume takes the owner
# of the image's /data, so every replica and `docker compose exec` write as this user.
RUN useradd --uid 10001 --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin gateway \
    && mkdir /data && chown gateway:gateway /data

ENV GATEWAY_DATA_DIR=/data \
    GATEWAY_TEMPLATES_DIR=/app/templates \
    GATEWAY_SMTP_LISTEN=0.0.0.0:2525 \
    GATEWAY_LMTP_LISTEN=0.0.0.0:2424 \
    GATEWAY_HTTP_LISTEN=0.0.0.0:8080
VOLUME /data
USER gateway
EXPOSE 2525 2424 8080

# /readyz waits up to 2 s for each of two database locks (gateway/web/readiness.py):
# urlopen gives it 7 s, and the check's 10 s leave Python 3 s to start.
HEALTHCHECK --interval=10s --timeout=10s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8080/readyz', timeout=7)"]
CMD ["gateway", "serve"]
