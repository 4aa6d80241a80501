# foureyes: one image, every process. The command picks the entry point:
#   node bin/foureyes.js gateway
#   node bin/foureyes.js worker orchestrator|checks|deploy
# Sources run through tsx (a runtime dependency: there is no build step); the workflow bundle is built here,
# at image build time, so orchestrator replicas start at once and all run byte-identical workflow code.

ARG NODE_VERSION=20.19-bookworm-slim

# --- deps: production dependencies only -------------------------------------------------------------
FROM node:${NODE_VERSION} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund \
 && npm cache clean --force

# --- bundle: the workflow bundle (webpack runs inside @temporalio/worker, a production dependency) ----
FROM node:${NODE_VERSION} AS bundle
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY bin ./bin
COPY src ./src
# src/dev (the local stack, development commands, stand-ins) stays out (.dockerignore); stop if it came in.
RUN test ! -e src/dev \
 && FOUREYES_WORKFLOW_BUNDLE=/app/workflow-bundle.js node bin/foureyes.js bundle

# --- runtime ------------------------------------------------------------------------------------------
FROM node:${NODE_VERSION} AS runtime
# git: the checks zone fetches the exact head SHA and the deploy zone works in a copy of the approved SHA.
# tini: PID 1 that forwards SIGTERM and reaps the children of checks and deploy commands.
RUN apt-get update \
 && apt-get install -y --no-install-recommends git ca-certificates tini bubblewrap \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 foureyes \
 && useradd --system --uid 10001 --gid foureyes --home-dir /home/foureyes --create-home --shell /usr/sbin/nologin foureyes
ENV NODE_ENV=production \
    FOUREYES_WORKFLOW_BUNDLE=/app/workflow-bundle.js \
    FOUREYES_CONFIG=/etc/foureyes/foureyes.yaml \
    FOUREYES_DATA=/home/foureyes/.foureyes \
    HOST=0.0.0.0 \
    PORT=3000
WORKDIR /app
# Everything under /app belongs to root and is read-only for the service user.
COPY --from=deps /app/node_modules ./node_modules
COPY package.json package-lock.json ./
COPY bin ./bin
COPY src ./src
COPY foureyes.example.yaml ./
# Copied last so it is newer than every workflow source: the worker uses it as is and never rebuilds.
COPY --from=bundle /app/workflow-bundle.js ./workflow-bundle.js
USER 10001:10001
EXPOSE 3000 9464
ENTRYPOINT ["/usr/bin/tini", "--"]
# The gateway by default; workers override the command (see docker-compose.yml).
CMD ["node", "bin/foureyes.js", "gateway"]
# Images are healthchecked per service in docker-compose.yml (the gateway on /healthz, workers on their
# metrics endpoint), so no HEALTHCHECK is baked in here.
