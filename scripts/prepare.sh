# Sourced by run.sh and test.sh: dependencies installed, and DATABASE_URL / REDIS_URL exported
# (the private PostgreSQL and Redis of this checkout when they were not given; then also
# CP_MIGRATION_DATABASE_URL, the schema owner's, and KCP_PG_ADMIN_URL, the superuser's for the tests).
bash scripts/ensure-deps.sh
if [ -z "${DATABASE_URL:-}" ] || [ -z "${REDIS_URL:-}" ]; then
  eval "$(bash scripts/services.sh up)"
fi
export DATABASE_URL REDIS_URL
