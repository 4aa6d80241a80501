#!/bin/sh
# Example deploy command. foureyes runs it in a working copy of the approved commit with:
#   FOUREYES_CHANGE, FOUREYES_ENVIRONMENT, FOUREYES_SHA, FOUREYES_IDEMPOTENCY_KEY
#   and the leased values named under `lease.env` in foureyes.yaml (never printed: they are redacted anyway).
set -eu
echo "deploying ${FOUREYES_CHANGE} at ${FOUREYES_SHA} to ${FOUREYES_ENVIRONMENT} (key ${FOUREYES_IDEMPOTENCY_KEY})"
test -n "${VAULT_TOKEN:-}" && echo "holding a leased token for ${FOUREYES_ENVIRONMENT}"
echo "done"
