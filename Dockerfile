# syntax=docker/dockerfile:1
# Build stage: compile TypeScript and build native modules (better-sqlite3) against this Node.
FROM node:20-bookworm-slim AS build
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json tsconfig.json ./
COPY src ./src
COPY ui ./ui
COPY scripts/build-ui.mjs ./scripts/build-ui.mjs
RUN npm ci --no-audit --no-fund && npm prune --omit=dev

# Runtime stage: only what the gateway needs, as a non-root user.
FROM node:20-bookworm-slim
ENV NODE_ENV=production LOG_FORMAT=json
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json gateway.yaml ./
COPY bin ./bin
COPY schema ./schema
COPY servers.d ./servers.d
COPY agents.d ./agents.d
RUN mkdir -p /app/data && chown -R node:node /app/data
USER node
EXPOSE 8080
VOLUME ["/app/data"]
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:8080/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
ENTRYPOINT ["node", "bin/switchyard.js"]
CMD ["serve", "--config", "gateway.yaml"]
