#!/usr/bin/env bash
# Installs what `cargo bench -p rzts-benches --bench socks` needs besides Rust:
# Dante's SOCKS server (`sockd`, Debian package `dante-server`), the comparison
# anchor; Debian installs the binary as `danted`, upstream calls it `sockd`, and the
# bench looks for either. It only installs: the bench starts sockd itself (generated config in a
# temporary directory, as a child process) and stops it at the end.
set -euo pipefail

find_sockd() {
    for name in sockd danted; do
        if command -v "$name" >/dev/null 2>&1; then
            command -v "$name"
            return 0
        fi
        if [ -x "/usr/sbin/$name" ]; then
            echo "/usr/sbin/$name"
            return 0
        fi
    done
    return 1
}

if found=$(find_sockd); then
    echo "Dante already installed: $found"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
# The package's postinst would start the `danted` service. This script must not
# start anything, so a temporary policy-rc.d (exit 101: "action forbidden") stops
# invoke-rc.d from doing so, unless the machine already has one of its own.
POLICY_RC=/usr/sbin/policy-rc.d
OWN_POLICY_RC=0
if [ ! -e "$POLICY_RC" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY_RC" >/dev/null
    $SUDO chmod +x "$POLICY_RC"
    OWN_POLICY_RC=1
fi
cleanup() {
    if [ "$OWN_POLICY_RC" = 1 ]; then
        $SUDO rm -f "$POLICY_RC"
    fi
}
trap cleanup EXIT

$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends dante-server

found=$(find_sockd) || {
    echo "dante-server installed but neither sockd nor danted was found" >&2
    exit 1
}
echo "Dante installed: $found"
