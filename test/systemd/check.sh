#!/bin/bash
# Runs as a oneshot unit inside a Debian root booted with systemd as PID 1 (systemd.test.ts):
# installs errands-server with scripts/install.sh, works the service through systemd, and
# writes what it saw as name=value lines to /opt/errands/result.
set -u
cd /opt/errands
result=/opt/errands/result
: >"$result"
say() { printf '%s=%s\n' "$1" "$2" >>"$result"; }
prop() { systemctl show errands-server -p "$1" --value; }
up() {
  for _ in $(seq 100); do
    curl -sf localhost:5555/health >/dev/null && return 0
    sleep 0.1
  done
  return 1
}
status_of() { curl -s -o /dev/null -w '%{http_code}' "localhost:5555/v1/errand/$1"; }

./scripts/install.sh ./errands-server >>log 2>&1
say install $?
up
say up $?
say active "$(prop ActiveState)"
pid=$(prop MainPID)
say uid "$(awk '/^Uid:/ {print $2}' "/proc/$pid/status")"
say capabilities "$(awk '/^CapEff:/ {print $2}' "/proc/$pid/status")"
say no_new_privileges "$(awk '/^NoNewPrivs:/ {print $2}' "/proc/$pid/status")"
id=$(curl -s localhost:5555/v1/errands/ -H 'content-type: application/json' \
  -d '{"name":"n","type":"t"}' | sed -E 's/.*"id":"([^"]+)".*/\1/')
say created "$id"
say db_owner "$(stat -c %u /var/lib/errands/errands.sqlite)"
say db_mode "$(stat -c %a /var/lib/errands/errands.sqlite)"

# Killed: Restart=on-failure starts it again, with the errand.
kill -9 "$pid"
for _ in $(seq 100); do
  [ "$(prop NRestarts)" = 1 ] && [ "$(prop ActiveState)" = active ] && break
  sleep 0.1
done
up
say up_after_kill $?
say restarts "$(prop NRestarts)"
say errand_after_kill "$(status_of "$id")"

# Stopped: SIGTERM, and the server exits cleanly by itself.
systemctl stop errands-server
say stop_result "$(prop Result)"
say stop_exit_status "$(prop ExecMainStatus)"
say stopped_logged "$(journalctl -b -u errands-server -o cat --no-pager | grep -c '"msg":"stopped"')"

# Installed again (an upgrade): started, with the data.
./scripts/install.sh ./errands-server >>log 2>&1
say reinstall $?
up
say up_after_reinstall $?
say errand_after_reinstall "$(status_of "$id")"
say exposure "$(systemd-analyze security errands-server --no-pager 2>/dev/null |
  sed -n 's/.*Overall exposure level for errands-server.service: //p')"

./scripts/install.sh --uninstall --purge >>log 2>&1
say uninstall $?
say units_left "$(systemctl list-unit-files errands-server.service --no-legend | wc -l)"
say data_left "$(ls -A /var/lib/private | wc -l)"
say done yes
