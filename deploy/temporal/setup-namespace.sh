#!/bin/sh
# Registers the foureyes namespace and its search attributes (src/shared/search-attributes.ts) on the
# compose project's Temporal server. Idempotent.
set -eu
address="${TEMPORAL_ADDRESS:-temporal:7233}"
ns="${TEMPORAL_NAMESPACE:-foureyes}"
until temporal operator cluster health --address "$address" >/dev/null 2>&1; do sleep 2; done
temporal operator namespace describe --address "$address" --namespace "$ns" >/dev/null 2>&1 \
  || temporal operator namespace create --address "$address" --namespace "$ns" --retention "${FOUREYES_RETENTION:-720h}"
for attr in FoureyesRepo=Keyword FoureyesPR=Int FoureyesAuthor=Keyword FoureyesInitiators=KeywordList \
            FoureyesApprovers=KeywordList FoureyesStage=Keyword FoureyesHeadSha=Keyword \
            FoureyesEmergency=Keyword; do
  temporal operator search-attribute create --address "$address" --namespace "$ns" \
    --name "${attr%%=*}" --type "${attr#*=}" >/dev/null 2>&1 || true
done
touch /tmp/namespace-ready
