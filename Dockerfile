# syntax=docker/dockerfile:1
FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

FROM node:24-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY src ./src
COPY cli ./cli
RUN mkdir -p /var/cache/strata && chown -R node:node /var/cache/strata
USER node
VOLUME ["/var/cache/strata"]
EXPOSE 8080 9091
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s \
  CMD node -e "fetch('http://127.0.0.1:9091/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
ENTRYPOINT ["node", "cli/strata.ts"]
CMD ["serve", "--listen", "0.0.0.0:8080", "--cache-dir", "/var/cache/strata"]
