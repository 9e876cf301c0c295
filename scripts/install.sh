#!/usr/bin/env bash
# Installs errands-server on a systemd host: the binary in /usr/local/bin, the unit, and a
# settings file /etc/errands/errands.env (kept if it exists); then enables and (re)starts the
# service. Running it again upgrades in place. --uninstall removes the binary and the unit but
# keeps the settings and the data; --uninstall --purge removes those too.
#
#   sudo scripts/install.sh [path/to/errands-server]     (default: dist/errands-server)
#   sudo scripts/install.sh --uninstall [--purge]
#
# DESTDIR=/some/dir installs into that tree instead and leaves systemctl alone (packaging, tests).
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
DESTDIR="${DESTDIR:-}"
BIN="$DESTDIR/usr/local/bin/errands-server"
UNIT="$DESTDIR/etc/systemd/system/errands-server.service"
ENV_FILE="$DESTDIR/etc/errands/errands.env"
# DynamicUser= keeps the state under /var/lib/private, /var/lib/errands being a link to it.
STATE_DIRS=("$DESTDIR/var/lib/private/errands" "$DESTDIR/var/lib/errands")

say() { printf 'install.sh: %s\n' "$*"; }
fail() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }

systemctl_() {
  if [ -z "$DESTDIR" ]; then systemctl "$@"; fi
}

if [ -z "$DESTDIR" ] && [ "$(id -u)" -ne 0 ]; then fail "run as root (sudo $0 $*)"; fi

uninstall() {
  local purge="$1"
  if [ -z "$DESTDIR" ] && systemctl list-unit-files errands-server.service >/dev/null 2>&1; then
    systemctl disable --now errands-server.service || true
  fi
  rm -f "$BIN" "$UNIT"
  systemctl_ daemon-reload
  if [ "$purge" = yes ]; then
    rm -rf "$DESTDIR/etc/errands" "${STATE_DIRS[@]}"
    say "removed errands-server, its settings and its data"
  else
    say "removed errands-server; kept $ENV_FILE and the data in /var/lib/errands (--purge removes them)"
  fi
}

install_() {
  local source="$1"
  [ -x "$source" ] || fail "no executable at $source (build it with: bun run build)"
  "$source" version >/dev/null || fail "$source does not run on this host"

  # A new file then a rename: a running server keeps its old binary until it restarts.
  install -d -m 0755 "$(dirname "$BIN")"
  install -m 0755 "$source" "$BIN.new"
  mv -f "$BIN.new" "$BIN"
  install -D -m 0644 "$HERE/../systemd/errands-server.service" "$UNIT"

  if [ -e "$ENV_FILE" ]; then
    say "kept the settings in $ENV_FILE"
  else
    install -d -m 0755 "$(dirname "$ENV_FILE")"
    # Only root reads it (systemd does, before starting the service): it may hold tokens.
    (umask 077 && cat >"$ENV_FILE" <<'SETTINGS'
# Settings of errands-server, one NAME=value a line; `errands-server help` lists them all.
# The database stays in /var/lib/errands (ERRANDS_STORAGE is set by the unit).
# Restart after a change: systemctl restart errands-server
#
#ERRANDS_PORT=:5555
#ERRANDS_TOKEN=a-long-random-secret,another-one
#ERRANDS_CORS_ORIGINS=*
#ERRANDS_MAX_BODY=1MiB
#ERRANDS_SYNC=full
#ERRANDS_MAX_LOGS=1000
#ERRANDS_EVENT_RETENTION=24h
#ERRANDS_LOG_LEVEL=info
#ERRANDS_METRICS_PUBLIC=false
SETTINGS
    )
    say "wrote the settings template $ENV_FILE"
  fi

  systemctl_ daemon-reload
  systemctl_ enable errands-server.service
  # restart also starts it, and picks up a new binary on an upgrade.
  systemctl_ restart errands-server.service
  say "installed $("$BIN" version) to $BIN; logs: journalctl -u errands-server"
}

case "${1:-}" in
  --uninstall)
    case "${2:-}" in
      "") uninstall no ;;
      --purge) uninstall yes ;;
      *) fail "unknown option ${2}" ;;
    esac
    ;;
  -h | --help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' ;;
  -*) fail "unknown option $1" ;;
  *) install_ "${1:-$HERE/../dist/errands-server}" ;;
esac
