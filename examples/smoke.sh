#!/bin/sh
# Example verify (smoke) command: exit non-zero to stop promotion to the next environment.
set -eu
echo "smoke test of ${FOUREYES_ENVIRONMENT} at ${FOUREYES_SHA}: ok"
