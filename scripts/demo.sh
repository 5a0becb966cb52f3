#!/usr/bin/env bash
# The demo: Odoo with smartpm_prepay and its demo data on http://localhost:8069
# (database smartpm_demo, admin / admin), the 25 simulated meters of the demo data, one
# meter bridge and the push listener its push-mode meters (SIM00021-SIM00024) connect to.
# Ctrl-C stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
PY=.venv/bin/python
DB=${SMARTPM_DEMO_DB:-smartpm_demo}
HTTP_PORT=${SMARTPM_DEMO_PORT:-8069}
PUSH_PORT=4059  # the push destination of the demo's meters in push mode (demo/push_demo.xml)
ODOO_BIN=$("$PY" -c 'import odoo, os; print(os.path.join(os.path.dirname(os.path.dirname(odoo.__file__)), "odoo-bin"))')
installed=$(psql -h 127.0.0.1 -U postgres -d "$DB" -qtAX -c \
  "SELECT 1 FROM ir_module_module WHERE name='smartpm_prepay' AND state='installed'" 2>/dev/null || true)
# Odoo loads demo data at install only (not on -u): a database made from older demo data
# (before a new demo file, e.g. the push demo's) is made again, once.
DEMO_SUM=$(cat smartpm_prepay/demo/*.xml | sha256sum | cut -c1-16)
mkdir -p var
if [ "$installed" = 1 ] && [ "$(cat "var/demo-data-$DB.sum" 2>/dev/null)" != "$DEMO_SUM" ]; then
  echo "[demo] the demo data changed since $DB was made: making it again"
  installed=0
fi
if [ "$installed" != 1 ]; then
  echo "[demo] creating database $DB with demo data"
  dropdb -h 127.0.0.1 -U postgres --if-exists "$DB"
  "$PY" "$ODOO_BIN" -c var/odoo.conf -d "$DB" -i smartpm_prepay,payment_demo --stop-after-init --log-level=warn
  echo "$DEMO_SUM" > "var/demo-data-$DB.sum"
else
  echo "[demo] updating smartpm_prepay in $DB"
  "$PY" "$ODOO_BIN" -c var/odoo.conf -d "$DB" -u smartpm_prepay --stop-after-init --log-level=warn
fi
pids=()
cleanup() { trap - INT TERM EXIT; for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait; }
trap cleanup INT TERM EXIT

# Simulated meters of the demo data: SIM00001.. on 127.0.0.1:4100.., control on :4099;
# SIM00025 (Grace's, time of use) holds its credit in money
.venv/bin/meter-sim --meters 25 --money-meters SIM00025 --base-port 4100 --control-port 4099 \
  --speed "${SMARTPM_SIM_SPEED:-30}" --seed 1 > var/demo-sim.log 2>&1 &
pids+=($!)

"$PY" "$ODOO_BIN" -c var/odoo.conf -d "$DB" --http-port="$HTTP_PORT" \
  --http-interface=127.0.0.1 --logfile=var/demo-odoo.log &
pids+=($!)
for _ in $(seq 120); do
  curl -fs "http://127.0.0.1:$HTTP_PORT/web/health" >/dev/null 2>&1 && break; sleep 1
done

# A fresh API key of the demo's Bridge API user; the push setup of the meters in push mode
# sent again (the simulator just started remembers none: scripts/demo_push_setup.py)
SHELL_OUT=$(cat scripts/bridge_user.py scripts/demo_push_setup.py \
  | "$PY" "$ODOO_BIN" shell -c var/odoo.conf -d "$DB" --no-http --log-level=warn 2>/dev/null)
KEY=$(sed -n 's/^API_KEY=//p' <<<"$SHELL_OUT" | tail -n1)
PUSH_METERS=$(sed -n 's/^PUSH_METERS=//p' <<<"$SHELL_OUT" | tail -n1)
# The push listener the meters in push mode connect to, then one bridge (runs the set_push)
MB_ODOO_API_KEY=$KEY .venv/bin/meter-bridge listen --listen "127.0.0.1:$PUSH_PORT" \
  --odoo-url "http://127.0.0.1:$HTTP_PORT" --db "$DB" --login bridge \
  --bridge-id demo-listener --log-format text > var/demo-listener.log 2>&1 &
pids+=($!)
MB_ODOO_API_KEY=$KEY .venv/bin/meter-bridge run --odoo-url "http://127.0.0.1:$HTTP_PORT" \
  --db "$DB" --login bridge --bridge-id demo-bridge --log-format text > var/demo-bridge.log 2>&1 &
pids+=($!)

cat <<MSG
[demo] Odoo:      http://localhost:$HTTP_PORT  (database $DB, login admin / admin)
[demo] meters:    25 simulated meters on 127.0.0.1:4100-4124, control http://127.0.0.1:4099/meters
[demo] bridge:    demo-bridge (logs in var/demo-bridge.log)
[demo] push:      listener on 127.0.0.1:$PUSH_PORT (var/demo-listener.log), meters in push mode: ${PUSH_METERS:-none}
[demo]            open a cover: curl -XPOST -d '{"kind":"cover_open"}' http://127.0.0.1:4099/meters/SIM00021/tamper
[demo] Ctrl-C stops everything.
MSG
wait -n "${pids[@]}"
