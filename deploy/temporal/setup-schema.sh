#!/bin/sh
# Creates (or upgrades) Temporal's PostgreSQL schemas: the main store and visibility. Idempotent: safe at
# every `docker compose up` and after a server upgrade (update-schema applies only missing versions).
set -eu
: "${SQL_HOST:?}" "${SQL_USER:?}" "${SQL_PASSWORD:?}"
export SQL_PLUGIN=postgres12 SQL_PORT="${SQL_PORT:-5432}"
schema=/etc/temporal/schema/postgresql/v12
for db in temporal temporal_visibility; do
  dir=temporal; [ "$db" = temporal_visibility ] && dir=visibility
  temporal-sql-tool --db "$db" create-database || true
  SQL_DATABASE="$db" temporal-sql-tool --db "$db" setup-schema -v 0.0 || true
  SQL_DATABASE="$db" temporal-sql-tool --db "$db" update-schema -d "$schema/$dir/versioned"
done
touch /tmp/schema-ready
