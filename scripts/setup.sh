#!/usr/bin/env bash
# Idempotent set-up: .venv with the Python dependencies, Odoo 18.0 importable, PostgreSQL
# answering with the project's role, and var/odoo.conf. Safe to run any number of times.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-python3}
CACHE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/smartpm-prepay"
ODOO_CACHE="$CACHE_DIR/odoo-18.0"
ODOO_URL=${ODOO_URL:-https://github.com/odoo/odoo/archive/refs/heads/18.0.tar.gz}
PGHOST=${PGHOST:-127.0.0.1}
PGPORT=${PGPORT:-5432}
DB_USER=${SMARTPM_DB_USER:-smartpm}
say() { printf '[setup] %s\n' "$*" >&2; }

# --- Python -------------------------------------------------------------------------------
if [ ! -x .venv/bin/python ]; then
  say "creating .venv"
  "$PY" -m venv .venv
fi
VPY=$ROOT/.venv/bin/python
stamp=.venv/.smartpm-deps
want=$(cat pyproject.toml scripts/odoo-requirements.txt scripts/odoo-constraints.txt | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "installing Python dependencies"
  "$VPY" -m pip install -q --upgrade pip wheel setuptools
  "$VPY" -m pip install -q -c scripts/odoo-constraints.txt \
    -r scripts/odoo-requirements.txt -e ".[test]"
  echo "$want" > "$stamp"
fi

# --- Odoo 18.0 ----------------------------------------------------------------------------
is_odoo18() { [ -f "$1/odoo/release.py" ] && grep -q "^version_info = (18, 0" "$1/odoo/release.py"; }
unpack_into_cache() {  # $1: a source tree or an archive (.tar.gz, .tgz, .tar, .zip)
  local src=$1 tmp
  tmp=$(mktemp -d "$CACHE_DIR/.unpack.XXXXXX")
  if [ -d "$src" ]; then
    cp -a "$src/." "$tmp/"
  else
    case "$src" in
      *.zip) "$VPY" -m zipfile -e "$src" "$tmp" ;;
      *) tar -xf "$src" -C "$tmp" ;;
    esac
  fi
  # an archive usually holds one top folder (odoo-18.0/): descend into it
  local top=$tmp
  if ! is_odoo18 "$top" && [ "$(ls -A "$top" | wc -l)" = 1 ]; then top="$top/$(ls -A "$top")"; fi
  is_odoo18 "$top" || { say "ERROR: $src is not an Odoo 18.0 source tree"; rm -rf "$tmp"; exit 1; }
  rm -rf "$ODOO_CACHE.old"; [ -d "$ODOO_CACHE" ] && mv "$ODOO_CACHE" "$ODOO_CACHE.old"
  mv "$top" "$ODOO_CACHE"; rm -rf "$tmp" "$ODOO_CACHE.old"
}
site=$("$VPY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
if ! "$VPY" -c 'import odoo' >/dev/null 2>&1; then
  mkdir -p "$CACHE_DIR"
  if [ -n "${ODOO_SOURCE:-}" ]; then
    say "installing Odoo 18.0 from ODOO_SOURCE"
    unpack_into_cache "$ODOO_SOURCE"
  elif is_odoo18 "$ODOO_CACHE"; then
    say "using the Odoo 18.0 source kept in $ODOO_CACHE"
  else
    say "downloading Odoo 18.0 from its official source (large)"
    if curl -fL --retry 2 --connect-timeout 20 -o "$CACHE_DIR/odoo-18.0.tar.gz" "$ODOO_URL"; then
      unpack_into_cache "$CACHE_DIR/odoo-18.0.tar.gz"
    fi
    rm -f "$CACHE_DIR/odoo-18.0.tar.gz"
  fi
  is_odoo18 "$ODOO_CACHE" && echo "$ODOO_CACHE" > "$site/smartpm-odoo.pth"
fi
if ! ODOO_DIR=$("$VPY" -c 'import odoo, os; print(os.path.dirname(os.path.dirname(odoo.__file__)))' 2>/dev/null); then
  # Not fatal: the bridge and simulator tests still run; run-tests.sh says so loudly.
  say "WARNING: Odoo 18.0 could not be installed (set ODOO_SOURCE to a source tree or archive)"
  ODOO_DIR=""
fi

# --- PostgreSQL ---------------------------------------------------------------------------
if ! pg_isready -q -h "$PGHOST" -p "$PGPORT" 2>/dev/null; then
  if ! command -v pg_ctlcluster >/dev/null; then
    say "installing PostgreSQL"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
  say "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | tail -n1)" main start || true
  for _ in $(seq 30); do pg_isready -q -h "$PGHOST" -p "$PGPORT" && break; sleep 1; done
fi
PSQL="psql -h $PGHOST -p $PGPORT -U postgres -d postgres -qtAX"
if ! $PSQL -c "SELECT 1 FROM pg_roles WHERE rolname='$DB_USER'" 2>/dev/null | grep -q 1; then
  if $PSQL -c "CREATE ROLE $DB_USER LOGIN CREATEDB PASSWORD '$DB_USER'" 2>/dev/null; then
    say "created PostgreSQL role $DB_USER"
  else
    sudo -u postgres psql -qc "CREATE ROLE $DB_USER LOGIN CREATEDB PASSWORD '$DB_USER'"
  fi
fi

# --- Headless Chromium, for Odoo tours ------------------------------------------------------
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1 \
    && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  say "installing Chromium (Debian package) for the browser tests"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
    >/dev/null 2>&1 || say "WARNING: Chromium could not be installed; browser tours will skip"
fi

# --- wkhtmltopdf, for Odoo's PDF reports (the tenant statement) ------------------------------
# Odoo looks for `wkhtmltopdf` on the PATH (odoo/tools/which); Debian's package (0.12.6,
# unpatched Qt) renders the reports, with a warning about headers and footers. poppler-utils
# gives `pdftotext`, with which the tests read the PDFs.
if { ! command -v wkhtmltopdf >/dev/null 2>&1 || ! command -v pdftotext >/dev/null 2>&1; } \
    && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  say "installing wkhtmltopdf and poppler-utils (Debian packages) for the PDF reports"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    wkhtmltopdf poppler-utils) >/dev/null 2>&1 \
    || say "WARNING: wkhtmltopdf could not be installed; PDF reports fall back to HTML"
fi
# A CJK font, so that a report printed in Chinese shows its glyphs and not empty boxes:
# wkhtmltopdf takes what fontconfig offers for the characters the report's fonts (DejaVu,
# Liberation) lack. WenQuanYi Micro Hei is the lightest Debian font covering Simplified
# Chinese (1.6 MB; fonts-noto-cjk is 56 MB).
if command -v fc-list >/dev/null 2>&1 && [ -z "$(fc-list :lang=zh-cn 2>/dev/null)" ] \
    && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  say "installing a Chinese font (fonts-wqy-microhei, Debian) for reports printed in Chinese"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    fonts-wqy-microhei) >/dev/null 2>&1 \
    || say "WARNING: no Chinese font could be installed; Chinese PDF reports show boxes"
fi
if command -v wkhtmltopdf >/dev/null 2>&1 && [ -n "${ODOO_DIR:-}" ]; then
  # what Odoo itself decides at start (ok / broken / install / upgrade / bad_version)
  state=$("$VPY" -c 'from odoo.addons.base.models.ir_actions_report import wkhtmltopdf_state as s; print(s)' 2>/dev/null || echo unknown)
  [ "$state" = ok ] || say "WARNING: Odoo does not accept this wkhtmltopdf (state: $state)"
fi

# --- Odoo configuration -------------------------------------------------------------------
mkdir -p var
if [ -z "$ODOO_DIR" ]; then exit 0; fi
cat > var/odoo.conf <<CONF
[options]
addons_path = $ODOO_DIR/odoo/addons,$ROOT
data_dir = $ROOT/var/data
db_host = $PGHOST
db_port = $PGPORT
db_user = $DB_USER
db_password = $DB_USER
admin_passwd = admin
list_db = True
without_demo = False
CONF
# two checkouts side by side (tests serve HTTP): give each its own port
if [ -n "${SMARTPM_HTTP_PORT:-}" ]; then echo "http_port = $SMARTPM_HTTP_PORT" >> var/odoo.conf; fi
say "ready: Odoo $("$VPY" -c 'import odoo.release as r; print(r.version)') from $ODOO_DIR"
