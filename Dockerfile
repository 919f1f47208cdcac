# Keyturn: the API serving the built SPA, one process, on port 3000.
#
#   docker build -t keyturn .
#   docker run -p 3000:3000 -v keyturn-data:/data -e JWT_SECRET=... keyturn
#
# Stages: build (all deps, SPA build, then prune to the API's production deps) → runtime.

ARG NODE_IMAGE=node:20-bookworm-slim

# ---------------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS base
ENV CI=true
# Corepack-free: corepack needs COREPACK_INTEGRITY_KEYS=0 on some networks; npm just works.
RUN npm i -g pnpm@12.4.2 && pnpm --version
WORKDIR /app

# ---------------------------------------------------------------------------------------------
FROM base AS build
# Packages from the lockfile alone, so this layer is reused until the lockfile changes.
COPY pnpm-lock.yaml pnpm-workspace.yaml ./
RUN pnpm fetch
COPY . .
RUN pnpm install --frozen-lockfile --offline --filter "@keyturn/web..." --filter "@keyturn/api..." \
 && pnpm --filter @keyturn/web build \
 && test -f apps/web/dist/index.html
# Keep only what the API needs at run time (tsx runs the TypeScript sources directly).
RUN find . -name node_modules -type d -prune -exec rm -rf {} + \
 && pnpm install --frozen-lockfile --offline --prod --filter "@keyturn/api..."

# ---------------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    DATA_DIR=/data
RUN groupadd --system --gid 10001 keyturn \
 && useradd --system --uid 10001 --gid keyturn --home-dir /app --no-create-home \
      --shell /usr/sbin/nologin keyturn \
 && mkdir -p /data \
 && chown keyturn:keyturn /data
WORKDIR /app
COPY --from=build /app/package.json /app/pnpm-workspace.yaml ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/packages/shared ./packages/shared
COPY --from=build /app/apps/api ./apps/api
COPY --from=build /app/apps/web/dist ./apps/web/dist
USER keyturn
VOLUME ["/data"]
EXPOSE 3000
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/readyz',{signal:AbortSignal.timeout(4000)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# tsx is a dependency of the API package (pnpm does not hoist it to /app/node_modules), so the
# server starts from the API's directory, exactly like `pnpm start` does.
WORKDIR /app/apps/api
CMD ["node", "--import", "tsx", "src/server.ts"]
