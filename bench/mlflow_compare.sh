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
#      LL_PORT / MLFLOW_PORT / FLOOR_PORT (5002 / 5001 / 5009), LL_DB (labledger_mlbench, dropped
#      and made again), PG_URI (MLflow's database, see run_mlflow_matrix.sh): set these apart when
#      another checkout may run this script at the same time.
# Writes bench/results/mlflow-pg-w1-<stamp>.json, labledger-pg-<stamp>.json,
# client-floor-<stamp>.json, share-ratios-<stamp>.json and mlflow-compare-<stamp>.md (the summary
# table with ratios, what the client alone costs for the same calls, then the server-share ratios
# against MLflow that issue 13 sets targets for: bench/share_ratios.py).
set -euo pipefail
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

# 1. MLflow's own server: PostgreSQL backend, one worker (the harness's reference set-up).
if [ "${SKIP_MLFLOW:-0}" != 1 ]; then
  su postgres -c "psql -qtc \"select 1 from pg_roles where rolname = 'mlbench'\" | grep -q 1 \
    || psql -qc \"create role mlbench login password 'mlbench'\""
  RESULTS="$results" VENV="$mlflow_venv" PORT="${MLFLOW_PORT:-5001}" bash "$shared/run_mlflow_matrix.sh" postgres 1 "mlflow-pg-w1-$stamp" "$@"
fi

# 2. Lab Ledger: a fresh PostgreSQL database, production settings, gunicorn as in docker-compose.
db="${LL_DB:-labledger_mlbench}"
su postgres -c "dropdb --if-exists $db && createdb $db"
export DJANGO_SETTINGS_MODULE=config.settings.production
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$db"
export SECRET_KEY="bench-$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export DEBUG=false ALLOWED_HOSTS=127.0.0.1 ARTIFACT_ROOT="$scratch/artifacts-$stamp"
# Production settings refuse to start without an audit signing key and a checkpoint file outside
# the database: a throwaway Ed25519 key (base64 of 32 random bytes) and a scratch file.
export AUDIT_SIGNING_KEY="$(head -c 32 /dev/urandom | base64)"
export AUDIT_CHECKPOINT_FILE="$scratch/checkpoints-mlflow-compare-$stamp.jsonl"
# Production settings also require a broker; no Celery work happens in these phases.
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"
cd "$root"
.venv/bin/python manage.py migrate --noinput -v 0
.venv/bin/python manage.py collectstatic --noinput -v 0
.venv/bin/python manage.py shell -c "
from django.contrib.auth import get_user_model
get_user_model().objects.create_user('bench', password=None)"
.venv/bin/python manage.py assign_role bench contributor > /dev/null
token="$(.venv/bin/python manage.py create_api_token bench --name bench)"

port="${LL_PORT:-5002}"
setsid .venv/bin/gunicorn config.wsgi --bind "127.0.0.1:$port" --workers "${WORKERS:-2}" \
  --worker-class gthread --threads 4 --timeout 120 --log-level warning \
  > "$scratch/gunicorn-mlflow-compare-$stamp.log" 2>&1 &
server=$!
trap 'kill -- -$server 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  curl -sf -o /dev/null "http://127.0.0.1:$port/healthz" && break
  kill -0 "$server" 2>/dev/null || { tail -30 "$scratch/gunicorn-mlflow-compare-$stamp.log" >&2; exit 1; }
  sleep 0.3
done
MLFLOW_TRACKING_TOKEN="$token" "$mlflow_venv/bin/python" "$shared/mlflow_client_bench.py" \
  --tracking-uri "http://127.0.0.1:$port" --label "labledger-pg-$stamp" \
  --out "$results/labledger-pg-$stamp.json" "$@" > /dev/null

# 3. The table: first column MLflow, ratios against it.
files=("$results/labledger-pg-$stamp.json")
[ "${SKIP_MLFLOW:-0}" = 1 ] || files=("$results/mlflow-pg-w1-$stamp.json" "${files[@]}")
"$mlflow_venv/bin/python" "$shared/summarize.py" "${files[@]}" | tee "$results/mlflow-compare-$stamp.md"

# 4. The client's own floor: the same calls through a proxy that replays the server's answers,
#    so the server costs nothing (bench/client_floor.py), beside the targets they imply.
targets=()
[ "${SKIP_MLFLOW:-0}" = 1 ] || targets=(--mlflow-json "$results/mlflow-pg-w1-$stamp.json")
{ printf '\nThe client alone (bench/client_floor.py, a proxy replaying answers):\n\n'
  MLFLOW_TRACKING_TOKEN="$token" "$mlflow_venv/bin/python" "$root/bench/client_floor.py" \
    --upstream "http://127.0.0.1:$port" --port "${FLOOR_PORT:-5009}" --shared-bench "$shared" "${targets[@]}" \
    --out "$results/client-floor-$stamp.json"
} | tee -a "$results/mlflow-compare-$stamp.md"

# 5. The server's share against MLflow's, the client's own work taken off (bench/share_ratios.py).
if [ "${SKIP_MLFLOW:-0}" != 1 ]; then
  { printf '\nServer shares (wall time minus the client alone), MLflow over Lab Ledger:\n\n'
    "$mlflow_venv/bin/python" "$root/bench/share_ratios.py" --mlflow "$results/mlflow-pg-w1-$stamp.json" \
      --labledger "$results/labledger-pg-$stamp.json" --floor "$results/client-floor-$stamp.json" \
      --out "$results/share-ratios-$stamp.json"
  } | tee -a "$results/mlflow-compare-$stamp.md"
fi
