#!/usr/bin/env bash
# The demo: Odoo with smartpm_prepay and its demo data on http://localhost:8069
# (database smartpm_demo, admin / admin). Ctrl-C stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
PY=.venv/bin/python
DB=${SMARTPM_DEMO_DB:-smartpm_demo}
HTTP_PORT=${SMARTPM_DEMO_PORT:-8069}
ODOO_BIN=$("$PY" -c 'import odoo, os; print(os.path.join(os.path.dirname(os.path.dirname(odoo.__file__)), "odoo-bin"))')
installed=$(psql -h 127.0.0.1 -U postgres -d "$DB" -qtAX -c \
  "SELECT 1 FROM ir_module_module WHERE name='smartpm_prepay' AND state='installed'" 2>/dev/null || true)
if [ "$installed" != 1 ]; then
  echo "[demo] creating database $DB with demo data"
  dropdb -h 127.0.0.1 -U postgres --if-exists "$DB"
  "$PY" "$ODOO_BIN" -c var/odoo.conf -d "$DB" -i smartpm_prepay,payment_demo --stop-after-init --log-level=warn
else
  echo "[demo] updating smartpm_prepay in $DB"
  "$PY" "$ODOO_BIN" -c var/odoo.conf -d "$DB" -u smartpm_prepay --stop-after-init --log-level=warn
fi
pids=()
cleanup() { trap - INT TERM EXIT; for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait; }
trap cleanup INT TERM EXIT
"$PY" "$ODOO_BIN" -c var/odoo.conf -d "$DB" --db-filter="^$DB\$" --http-port="$HTTP_PORT" \
  --http-interface=127.0.0.1 &
pids+=($!)
echo "[demo] Odoo: http://localhost:$HTTP_PORT  (database $DB, login admin / admin)"
wait -n "${pids[@]}"
