#!/usr/bin/env bash
# The test command of the README: installs what the tests need, runs every test.
#
# As root on Debian it installs the packages the end-to-end tests use
# (iproute2 and nftables for the network-namespace lab, libxml2-utils and
# nmap for validating our nmap XML against nmap's own DTD, python3 for the
# scripted listeners, ncat and curl as clients of `cat`'s HTTP proxy server,
# lua5.4 for `cat --lua-exec`, chromium to render the HTML report headless,
# and the real servers of tests/lab/: OpenSSH, Postfix,
# Dovecot, vsftpd with pam_pwdfile, nginx, OpenLDAP, openssl; socat, dnsmasq and
# snmpd for the UDP scan's tests). A policy-rc.d
# that exits 101 keeps the packages from starting their system instances: the
# lab runs its own, in namespaces. Without root those tests say loudly that
# they were skipped, and under CI=true they fail instead: a test that cannot
# run never passes silently.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(iproute2 nftables libxml2-utils nmap python3 procps ncat curl chromium
  openssh-server postfix dovecot-core dovecot-pop3d dovecot-imapd vsftpd libpam-pwdfile
  nginx slapd ldap-utils openssl util-linux socat dnsmasq snmpd lua5.4)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "test.sh: installing ${missing[*]}"
    # Another run may install at the same time: wait for dpkg's lock rather
    # than fail on it.
    lock=(-o DPkg::Lock::Timeout=600)
    apt-get "${lock[@]}" update -qq
    policy=/usr/sbin/policy-rc.d
    made_policy=
    # Created only if absent, in one step (noclobber: O_EXCL), so that of two
    # runs at once only the one that made it removes it, after its install.
    if (set -C && printf '#!/bin/sh\nexit 101\n' >"$policy") 2>/dev/null; then
      chmod 755 "$policy" && made_policy=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get "${lock[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    [ -z "$made_policy" ] || rm -f "$policy"
  elif [ "${CI:-}" = true ]; then
    echo "test.sh: missing packages ${missing[*]} and not root to install them" >&2
    exit 1
  else
    echo "test.sh: WARNING: missing ${missing[*]}; the tests that need them will be skipped" >&2
  fi
fi

cargo build --workspace --all-targets
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
# The benchmark harnesses' own parsers (probe: nmap XML and sockeye JSON).
python3 -m unittest discover -s benches/probe -p 'test_*.py' || status=1
cargo test --workspace --no-fail-fast "$@" 2>&1 | tee "$log" || status=$?
# One closing line over every test binary (cargo prints one per binary, the
# last being doc tests, often "0 passed").
passed=$(sed -n 's/^test result: .*\. \([0-9]*\) passed.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
failed=$(sed -n 's/^test result: .* \([0-9]*\) failed.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
echo "tests: $passed passed, $failed failed"
exit "$status"
