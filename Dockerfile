# syntax=docker/dockerfile:1
# pictalk: build with the dev toolchain, run as a non-root user with the builtin models inside.

FROM node:20-bookworm-slim AS build
WORKDIR /app
# better-sqlite3 may build from source where no prebuilt binary matches.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts && npm rebuild better-sqlite3 sharp
COPY tsconfig.json tsconfig.build.json ./
COPY common common
COPY inference inference
COPY bot bot
COPY adapters adapters
COPY models models
COPY scripts scripts
COPY bin bin
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production \
    PICTALK_REQUIRE_PLATFORM=1 \
    PICTALK_DB=/data/pictalk.sqlite \
    PICTALK_METRICS_PORT=9464
WORKDIR /app
COPY --from=build --chown=node:node /app/package.json ./
COPY --from=build --chown=node:node /app/node_modules node_modules
COPY --from=build --chown=node:node /app/dist dist
COPY --from=build --chown=node:node /app/bin bin
COPY --from=build --chown=node:node /app/models/builtin models/builtin
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 9464 3000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PICTALK_METRICS_PORT||9464)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
CMD ["node", "bin/pictalk.js", "start"]
