#!/usr/bin/env bash
# Refresh smartpm_prepay/i18n/smartpm_prepay.pot with Odoo's own export (`make pot`):
# install the addon without demo data into a throw-away database, export its terms
# (Python `_`/`env._`, views, data, QWeb, and the `_t` of static/src), drop the database.
# Run it after adding or changing any user-facing string; test_i18n.py fails until you do.
# Then merge the new terms into each translation and translate them, e.g.
#   msgmerge --update --no-fuzzy-matching --backup=none smartpm_prepay/i18n/fr.po smartpm_prepay/i18n/smartpm_prepay.pot
# (not `oca-checks-po --fix`: it empties each msgstr equal to its msgid, tests/test_lint.py)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null || { echo "[pot] set-up failed" >&2; exit 1; }
PY=.venv/bin/python
ODOO_BIN=$("$PY" -c 'import odoo, os; print(os.path.join(os.path.dirname(os.path.dirname(odoo.__file__)), "odoo-bin"))')
DB=${SMARTPM_I18N_DB:-smartpm_i18n_export_$$}
POT=smartpm_prepay/i18n/smartpm_prepay.pot
PGARGS=(-h "${SMARTPM_DB_HOST:-127.0.0.1}" -U "${SMARTPM_DB_ADMIN:-postgres}")
cleanup() { dropdb "${PGARGS[@]}" --if-exists "$DB" >/dev/null 2>&1 || true; }
trap cleanup EXIT
cleanup
mkdir -p var smartpm_prepay/i18n
: > var/i18n-export.log  # Odoo appends to its log file
echo "[pot] installing smartpm_prepay into the throw-away database '$DB'"
"$PY" "$ODOO_BIN" -c var/odoo.conf -d "$DB" -i smartpm_prepay --without-demo=all \
  --stop-after-init --log-level=warn --logfile=var/i18n-export.log
echo "[pot] exporting the terms to $POT"
"$PY" "$ODOO_BIN" -c var/odoo.conf -d "$DB" --i18n-export="$POT" --modules=smartpm_prepay \
  --stop-after-init --log-level=warn --logfile=var/i18n-export.log
# a source file Babel cannot parse is logged (with its traceback) and its terms are left
# out: say so loudly, but keep the rest of the export
if grep -E "Failed to extract terms" var/i18n-export.log | sed 's/^.*Failed/[pot] WARNING: failed/'; then
  echo "[pot] WARNING: the terms of the file(s) above are missing from $POT" >&2
fi
if grep -E " (ERROR|CRITICAL) " var/i18n-export.log | grep -v "Failed to extract terms"; then
  echo "[pot] FAILED: see var/i18n-export.log" >&2
  exit 1
fi
echo "[pot] $(grep -c '^msgid ' "$POT") entries (including the header) in $POT"
