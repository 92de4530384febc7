#!/bin/sh
# Installs the servers the integration tests start privately (MariaDB, NATS with JetStream, etcd,
# Chromium for the dashboard test, and sysbench as the MariaDB source's workload)
# when their binaries are missing. Idempotent: does nothing when all are present. Used by CI
# before `npm test`; needs root (or sudo) only when something is missing.
set -eu

missing=""
command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || missing="$missing mariadb-server"
command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || missing="$missing nats-server"
command -v etcd >/dev/null 2>&1 || missing="$missing etcd-server"
[ -x /usr/bin/chromium ] || missing="$missing chromium"
command -v sysbench >/dev/null 2>&1 || missing="$missing sysbench"

if [ -z "$missing" ]; then
  echo "ensure-services: mariadb-server, nats-server, etcd-server, chromium and sysbench are installed"
  exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "ensure-services: installing$missing"
# One apt at a time on a shared machine (the test helpers take the same lock).
$SUDO flock /tmp/apt.lock sh -c "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends$missing"
