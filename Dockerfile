# syntax=docker/dockerfile:1
# Strata edge node. No demo origin: the node reads its configuration from STRATA_CONFIG
# (default /etc/strata/strata.yaml, mount your file there) and refuses to start without one.
# docs/docker.md: build, run, compose (edge, shield, origin), stop timeout against the drain.
FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

FROM node:24-bookworm-slim
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="strata" \
      org.opencontainers.image.description="A CDN-style caching edge node on a persistent LMDB cache" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.documentation="docs/docker.md"
# tini as PID 1: signals reach node, and exited children are reaped.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production \
    STRATA_CONFIG=/etc/strata/strata.yaml \
    STRATA_CACHE_DIR=/var/cache/strata
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY src ./src
COPY cli ./cli
RUN mkdir -p /var/cache/strata /etc/strata && chown -R node:node /var/cache/strata
USER node
VOLUME ["/var/cache/strata"]
# The client and admin ports of the example configuration (docs/docker.md); the file decides.
EXPOSE 8080 9091
# SIGTERM drains (at most 30 s with workers): give `docker stop` / compose a 40 s grace period.
STOPSIGNAL SIGTERM
# /healthz on the admin listener the configuration names (or a TCP connect when it is disabled).
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "cli/strata.js", "healthcheck"]
ENTRYPOINT ["/usr/bin/tini", "--", "node", "cli/strata.js"]
CMD ["serve"]
