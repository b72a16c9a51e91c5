#!/usr/bin/env bash
# Lab Ledger against `mlflow server`, back to back, through the real mlflow client, on PostgreSQL.
#
# The harness is the shared one (../shared/bench: mlflow_client_bench.py, run_mlflow_matrix.sh,
# summarize.py); nothing of it is copied here. MLflow lives in its own virtualenv, never in ours.
#
#   bash bench/mlflow_compare.sh                 # full workload, 3 repeats (about 15 minutes)
#   bash bench/mlflow_compare.sh --repeats 1     # extra arguments go to mlflow_client_bench.py
#
# env: SHARED_BENCH (default ../shared/bench), MLFLOW_VENV (default /tmp/mlflow-venv),
#      WORKERS (Lab Ledger gunicorn workers, default 2), SKIP_MLFLOW=1 (only Lab Ledger),
#      LL_PORT / MLFLOW_PORT / FLOOR_PORT / FLOOR_UPSTREAM_PORT (5002 / 5001 / 5009 / 5003), LL_DB
#      (labledger_mlbench; it and LL_DB_floor are dropped and made again), PG_URI (MLflow's
#      database, see run_mlflow_matrix.sh): set these apart when another checkout may run this
#      script at the same time.
# Writes bench/results/mlflow-pg-w1-<stamp>.json, labledger-pg-<stamp>.json,
# client-floor-<stamp>-{1,2,3}.json, share-ratios-<stamp>.json and mlflow-compare-<stamp>.md (the
# summary table with ratios, what the client alone costs for the same calls, then the server-share
# ratios against MLflow that issue 13 sets targets for: bench/share_ratios.py).
#
# The client's floor (bench/client_floor.py) drifts with the machine as much as the servers do, and
# a server's share is its wall time minus that floor, so the floor is measured three times: before
# MLflow's run, between the two runs and after Lab Ledger's, and share_ratios.py pools them. It has
# a Lab Ledger server of its own on a database of its own, so the thousand runs it seeds are not in
# the database the harness measures.
set -euo pipefail
shopt -s inherit_errexit  # a failure inside $(…) (a database that cannot be dropped) stops the script too
root="$(cd "$(dirname "$0")/.." && pwd)"
shared="${SHARED_BENCH:-$root/../shared/bench}"
mlflow_venv="${MLFLOW_VENV:-/tmp/mlflow-venv}"
results="$root/bench/results"
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
scratch="$root/var/bench"
mkdir -p "$results" "$scratch"

[ -f "$shared/mlflow_client_bench.py" ] || { echo "no harness at $shared (set SHARED_BENCH)" >&2; exit 2; }
if [ ! -x "$mlflow_venv/bin/mlflow" ]; then
  python3 -m venv "$mlflow_venv"
  "$mlflow_venv/bin/pip" install --quiet mlflow==3.17.2 psycopg2-binary
fi

# 1. Lab Ledger's settings, for the database the harness measures and the floor's own: production
#    settings, gunicorn as in docker-compose.
db="${LL_DB:-labledger_mlbench}"
floor_db="${db}_floor"
# Production settings refuse to start without an audit signing key and a checkpoint file outside
# the database: a throwaway Ed25519 key (base64 of 32 random bytes) and a scratch file per database.
# They also require a broker; no Celery work happens in these phases.
labledger_env=(
  DJANGO_SETTINGS_MODULE=config.settings.production DEBUG=false ALLOWED_HOSTS=127.0.0.1
  SECRET_KEY="bench-$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  AUDIT_SIGNING_KEY="$(head -c 32 /dev/urandom | base64)"
  ARTIFACT_ROOT="$scratch/artifacts-$stamp" REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"
)
settings_for() {  # settings_for <database>: Lab Ledger's settings on that database, in `settings`
  settings=("${labledger_env[@]}" DATABASE_URL="postgres://postgres@127.0.0.1:5432/$1"
    AUDIT_CHECKPOINT_FILE="$scratch/checkpoints-mlflow-compare-$stamp-$1.jsonl")
}
labledger() {  # labledger <database> <command...>: the command with Lab Ledger's settings on it
  settings_for "$1"; shift
  env "${settings[@]}" "$@"
}
prepare() {  # prepare <database>: made again, migrated, with a contributor `bench`; prints a token
  local database=$1
  su postgres -c "dropdb --if-exists $database && createdb $database"
  labledger "$database" .venv/bin/python manage.py migrate --noinput -v 0
  labledger "$database" .venv/bin/python manage.py shell -c "
from django.contrib.auth import get_user_model
get_user_model().objects.create_user('bench', password=None)" > /dev/null
  labledger "$database" .venv/bin/python manage.py assign_role bench contributor > /dev/null
  labledger "$database" .venv/bin/python manage.py create_api_token bench --name bench
}
servers=()
trap 'for pid in "${servers[@]}"; do kill -- -"$pid" 2>/dev/null || true; done' EXIT
serve() {  # serve <database> <port>: gunicorn in its own process group, back when it answers
  local database=$1 port=$2 log="$scratch/gunicorn-mlflow-compare-$stamp-$1.log"
  # setsid first, so that gunicorn keeps its PID ($!) and leads its own process group (the trap
  # stops the group); a function run in the background would be a subshell in between.
  settings_for "$database"
  setsid env "${settings[@]}" .venv/bin/gunicorn config.wsgi --bind "127.0.0.1:$port" \
    --workers "${WORKERS:-2}" --worker-class gthread --threads 4 --timeout 120 --log-level warning \
    > "$log" 2>&1 &
  local pid=$!
  servers+=("$pid")
  for _ in $(seq 1 100); do
    curl -sf -o /dev/null "http://127.0.0.1:$port/healthz" && return 0
    kill -0 "$pid" 2>/dev/null || { tail -30 "$log" >&2; exit 1; }
    sleep 0.3
  done
}
cd "$root"
labledger "$db" .venv/bin/python manage.py collectstatic --noinput -v 0
token="$(prepare "$db")"
floor_token="$(prepare "$floor_db")"
floor_port="${FLOOR_UPSTREAM_PORT:-5003}"
serve "$floor_db" "$floor_port"

# 2. The client's own floor: the same calls through a proxy that replays the server's answers, so
#    the server costs nothing (bench/client_floor.py); measured before, between and after the runs.
floor() {  # floor <n>: one floor run; its table goes to a scratch file for the summary
  MLFLOW_TRACKING_TOKEN="$floor_token" "$mlflow_venv/bin/python" "$root/bench/client_floor.py" \
    --upstream "http://127.0.0.1:$floor_port" --port "${FLOOR_PORT:-5009}" --shared-bench "$shared" \
    --seeded "$scratch/client-floor-seeded-$stamp.json" --out "$results/client-floor-$stamp-$1.json" \
    > "$scratch/client-floor-$stamp-$1.md"
}
floor 1

# 3. MLflow's own server: PostgreSQL backend, one worker (the harness's reference set-up).
if [ "${SKIP_MLFLOW:-0}" != 1 ]; then
  su postgres -c "psql -qtc \"select 1 from pg_roles where rolname = 'mlbench'\" | grep -q 1 \
    || psql -qc \"create role mlbench login password 'mlbench'\""
  RESULTS="$results" VENV="$mlflow_venv" PORT="${MLFLOW_PORT:-5001}" bash "$shared/run_mlflow_matrix.sh" postgres 1 "mlflow-pg-w1-$stamp" "$@"
fi
floor 2

# 4. Lab Ledger on its fresh database.
port="${LL_PORT:-5002}"
serve "$db" "$port"
MLFLOW_TRACKING_TOKEN="$token" "$mlflow_venv/bin/python" "$shared/mlflow_client_bench.py" \
  --tracking-uri "http://127.0.0.1:$port" --label "labledger-pg-$stamp" \
  --out "$results/labledger-pg-$stamp.json" "$@" > /dev/null
floor 3

# 5. The table: first column MLflow, ratios against it; then the floor runs.
files=("$results/labledger-pg-$stamp.json")
[ "${SKIP_MLFLOW:-0}" = 1 ] || files=("$results/mlflow-pg-w1-$stamp.json" "${files[@]}")
"$mlflow_venv/bin/python" "$shared/summarize.py" "${files[@]}" | tee "$results/mlflow-compare-$stamp.md"
when=("" "before MLflow's run" "between the two runs" "after Lab Ledger's run")
for n in 1 2 3; do
  { printf '\nThe client alone, %s (bench/client_floor.py, a proxy replaying answers):\n\n' "${when[$n]}"
    cat "$scratch/client-floor-$stamp-$n.md"
  } | tee -a "$results/mlflow-compare-$stamp.md"
done

# 6. The server's share against MLflow's, the client's own work taken off (bench/share_ratios.py).
if [ "${SKIP_MLFLOW:-0}" != 1 ]; then
  { printf '\nServer shares (wall time minus the client alone), MLflow over Lab Ledger:\n\n'
    "$mlflow_venv/bin/python" "$root/bench/share_ratios.py" --mlflow "$results/mlflow-pg-w1-$stamp.json" \
      --labledger "$results/labledger-pg-$stamp.json" \
      --floor "$results/client-floor-$stamp-1.json" --floor "$results/client-floor-$stamp-2.json" \
      --floor "$results/client-floor-$stamp-3.json" --out "$results/share-ratios-$stamp.json"
  } | tee -a "$results/mlflow-compare-$stamp.md"
fi
