# syntax=docker/dockerfile:1
# One image for every Lumen component; the Helm chart picks the service with `command`.
# Bases are pinned to exact versions (Node 20.20.2 on Debian 12). Pin the digests too in
# your registry mirror: `docker buildx imagetools inspect node:20.20.2-bookworm-slim`.

# ---- build: compile native modules and the TypeScript, then drop dev dependencies ----
FROM node:20.20.2-bookworm-slim AS build
WORKDIR /app
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json .swcrc nest-cli.json ./
COPY scripts ./scripts
COPY libs ./libs
COPY services ./services
COPY cli ./cli
COPY bin ./bin
RUN node scripts/build.mjs && npm prune --omit=dev

# ---- runtime: Node, nmap and nsenter (the prober needs both), nothing else ----
FROM node:20.20.2-bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends nmap util-linux ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 lumen \
 && useradd --uid 10001 --gid lumen --no-create-home --shell /usr/sbin/nologin lumen
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# The services run as this user; only the prober's pod sets runAsUser: 0 (setns needs it).
USER 10001:10001
EXPOSE 8081 8082 8083 8084
ENTRYPOINT ["node"]
CMD ["/app/dist/services/reporter/src/main.js"]
