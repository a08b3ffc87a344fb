# syntax=docker/dockerfile:1
#
# The Vigil image: one image for every role; the role is the command.
#
#   docker build -t vigil .
#   docker run --rm vigil --help
#   docker run --rm -e VIGIL_DATABASE_URL=postgres://... vigil migrate
#   docker run -d -p 8080:8080 -e VIGIL_KAFKA_BROKERS=... vigil api
#
# Configuration comes only from the VIGIL_* / OTEL_* environment variables (core/config.ts).
# docker-compose.yml runs the whole pipeline with its infrastructure; deploy/k8s/ has manifests.

ARG NODE_IMAGE=node:20-bookworm-slim

# ---------------------------------------------------------------------------
# build: all dependencies (TypeScript, @types), compile into dist/
# ---------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
ENV NPM_CONFIG_UPDATE_NOTIFIER=false NPM_CONFIG_FUND=false NPM_CONFIG_AUDIT=false
# Manifests first: the dependency layer is reused until package*.json change.
COPY package.json package-lock.json ./
# patches/: fixes applied to dependencies at install (patch-package, the postinstall script).
COPY patches ./patches
RUN --mount=type=cache,target=/root/.npm npm ci
# Sources (.dockerignore keeps node_modules, dist, .local, .git, ... out of the context).
COPY . .
RUN npm run build

# ---------------------------------------------------------------------------
# runtime: production dependencies, compiled JS, and the files read at run time
# (schemas/avro/*.avsc, migrations/*.sql, package.json, which marks the root)
# ---------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
LABEL org.opencontainers.image.title="vigil" \
      org.opencontainers.image.description="Vigil fatigue-monitoring pipeline (one image, the role is the command)" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV NODE_ENV=production \
    NPM_CONFIG_UPDATE_NOTIFIER=false NPM_CONFIG_FUND=false NPM_CONFIG_AUDIT=false \
    VIGIL_API_HOST=0.0.0.0 \
    VIGIL_API_PORT=8080 \
    VIGIL_GATEWAY_HOST=0.0.0.0 \
    VIGIL_GATEWAY_PORT=8090 \
    VIGIL_METRICS_HOST=0.0.0.0
WORKDIR /app
COPY package.json package-lock.json ./
# patches/: fixes applied to dependencies at install (patch-package, the postinstall script).
COPY patches ./patches
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev
COPY --from=build /app/dist ./dist
COPY schemas/avro ./schemas/avro
COPY migrations ./migrations
COPY api/ui ./api/ui
COPY bin ./bin
# Everything above is owned by root, so the app can read but not modify its own code, and nothing
# is written at run time: the container can run with a read-only root filesystem (deploy/k8s does).
# Run as the official image's non-root `node` user, given as 1000:1000 so that Kubernetes'
# runAsNonRoot can verify it.
USER 1000:1000
# API, ingest gateway, and every role's /metrics (when VIGIL_METRICS_PORT=9464 is set: off by default).
EXPOSE 8080 8090 9464
# Meaningful for the api and gateway roles only: it reads the role from PID 1's command line
# (`node dist/main.js <role>`, possibly under docker-init) and reports healthy for any other role.
# Those two are checked with /health/live via node's fetch (the slim image has no curl).
# The long start period covers an api started while Kafka is still unreachable: it only listens
# once its Kafka admin client has connected or given up (kafkajs retries, about a minute).
HEALTHCHECK --interval=15s --timeout=5s --start-period=90s --retries=3 \
  CMD ["node", "-e", "const a=require('fs').readFileSync('/proc/1/cmdline','utf8').split('\\0');const i=a.findIndex(s=>/(main\\.js|vigil)$/.test(s));const r=i<0?'':a[i+1];if(r!=='api'&&r!=='gateway')process.exit(0);const p=r==='api'?(process.env.VIGIL_API_PORT||8080):(process.env.VIGIL_GATEWAY_PORT||8090);fetch('http://127.0.0.1:'+p+'/health/live',{signal:AbortSignal.timeout(4000)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["node", "dist/main.js"]
CMD ["--help"]
