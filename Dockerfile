# syntax=docker/dockerfile:1
# pictalk: build with the dev toolchain, run as a non-root user with the builtin models inside.
#   docker build -t pictalk .                                  # the CPU image: the last stage, `runtime` (role all)
#   docker build --target gpu-worker -t pictalk:gpu-worker .   # a cluster worker on an NVIDIA GPU (linux/amd64 only)

# The gpu-worker's base: CUDA 12 with cuDNN 9 on Ubuntu 22.04, what onnxruntime-node's CUDA 12 binaries need (ONNX
# Runtime built with CUDA 12.x runs on any CUDA 12.x; a build for cuDNN 8 does not run on cuDNN 9, nor the reverse).
# A recent 12.x tag brings a recent cuDNN 9, less likely to be older than the one ONNX Runtime was built against.
# The host driver must run this CUDA version; for an older driver pick an older tag, e.g.
#   docker build --target gpu-worker --build-arg CUDA_IMAGE=nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04 .
ARG CUDA_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu22.04

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

# ---- gpu-worker: `pictalk start --role worker` with onnxruntime on CUDA ----
# Node 20 on the CUDA (Ubuntu 22.04, glibc 2.35) base: the node binary of the official node image is nodejs.org's own
# linux-x64 build, linked against glibc 2.28 at most (not a Debian bookworm build), so it runs unchanged on Ubuntu 22.04.
# Native addons are another matter: they are compiled or fetched for the libc of the stage that installs them, so
# gpu-deps installs node_modules again on the CUDA base instead of copying the bookworm build's.
FROM ${CUDA_IMAGE} AS gpu-base
COPY --from=node:20-bookworm-slim /usr/local/bin/node /usr/local/bin/node
RUN node --version

FROM gpu-base AS gpu-deps
WORKDIR /app
COPY --from=node:20-bookworm-slim /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/npm
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm && npm --version
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund --ignore-scripts && npm rebuild better-sqlite3 sharp
# onnxruntime-node bundles only its CPU library; the CUDA execution provider (libonnxruntime_providers_cuda.so and
# libonnxruntime_providers_shared.so) comes from the Microsoft.ML.OnnxRuntime.Gpu.Linux NuGet package of the same version,
# which its install script downloads. `npm ci --ignore-scripts` (and `"onnxruntime-node": false` under allowScripts in
# package.json) skip that script, so run it here; ONNXRUNTIME_NODE_INSTALL=1 forces the download
# (node_modules/onnxruntime-node/script/install.js and install-utils.js: parseInstallFlag). The `test -f` lines fail
# the build where nothing came (on arm64 there is no CUDA package, and the script then downloads nothing).
RUN ONNXRUNTIME_NODE_INSTALL=1 node node_modules/onnxruntime-node/script/install.js \
 && test -f node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime_providers_cuda.so \
 && test -f node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime_providers_shared.so

FROM gpu-base AS gpu-worker
ENV NODE_ENV=production \
    PICTALK_EXECUTION_PROVIDER=cuda \
    PICTALK_METRICS_PORT=9464
# The CUDA base has no `node` user: make one with the uid (1000) of the CPU image's, so volumes and a Kubernetes
# runAsUser work the same for both (an Ubuntu 24.04 base has `ubuntu` on 1000: it goes first).
RUN (userdel --remove ubuntu 2>/dev/null || true) \
 && groupadd --gid 1000 node && useradd --uid 1000 --gid node --create-home --shell /usr/sbin/nologin node
WORKDIR /app
COPY --from=build --chown=node:node /app/package.json ./
COPY --from=gpu-deps --chown=node:node /app/node_modules node_modules
COPY --from=build --chown=node:node /app/dist dist
COPY --from=build --chown=node:node /app/bin bin
COPY --from=build --chown=node:node /app/models/builtin models/builtin
USER node
EXPOSE 9464
# /healthz: 200 once the models are loaded and Redis answers; loading a real model on the GPU takes a while.
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PICTALK_METRICS_PORT||9464)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
CMD ["node", "bin/pictalk.js", "start", "--role", "worker"]

# ---- runtime: the default target (`docker build .`), on the CPU; keep it the last stage ----
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
# 9464 metrics, 3000 Slack HTTP mode, 8080 Discord HTTP interactions (PICTALK_DISCORD_HTTP_PORT=8080)
EXPOSE 9464 3000 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PICTALK_METRICS_PORT||9464)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
CMD ["node", "bin/pictalk.js", "start"]
