# Sourced by run.sh and test.sh: dependencies installed, and DATABASE_URL / REDIS_URL exported
# (the private PostgreSQL and Redis of this checkout when they were not given).
bash scripts/ensure-deps.sh
if [ -z "${DATABASE_URL:-}" ] || [ -z "${REDIS_URL:-}" ]; then
  eval "$(bash scripts/services.sh up)"
fi
export DATABASE_URL REDIS_URL
