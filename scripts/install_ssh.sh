#!/usr/bin/env bash
# Install the OpenSSH server the SSH tests start (tests/sshd.py) when /usr/sbin/sshd is missing.
# Needs root. The package's own sshd is not left running: services may not start during the
# install (policy-rc.d), and one that started anyway is stopped and not enabled for boot.
set -euo pipefail
[ -x /usr/sbin/sshd ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "install_ssh.sh: openssh-server is missing and installing it needs root" >&2
    exit 1
fi

policy=/usr/sbin/policy-rc.d
backup=
if [ -e "$policy" ]; then
    backup="$(mktemp /usr/sbin/policy-rc.d.jobmagics.XXXXXX)"
    cp -p "$policy" "$backup"
fi
restore_policy() {
    if [ -n "$backup" ]; then mv -f "$backup" "$policy"; else rm -f "$policy"; fi
}
trap restore_policy EXIT
printf '#!/bin/sh\n# scripts/install_ssh.sh: start no service while openssh-server installs\nexit 101\n' >"$policy"
chmod 755 "$policy"

export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends openssh-server

# The package enables its service for boot and (if policy-rc.d were ignored) may have started it.
if command -v systemctl >/dev/null; then
    systemctl disable --now ssh.service ssh.socket >/dev/null 2>&1 || true
fi
if [ -s /run/sshd.pid ] && kill -0 "$(cat /run/sshd.pid)" 2>/dev/null; then
    kill -TERM "$(cat /run/sshd.pid)"  # the package's daemon (its PidFile), not a test's sshd
fi
