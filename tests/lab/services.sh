#!/usr/bin/env bash
# The sockeye lab's real servers, started INSIDE a network namespace the caller
# made: `ip netns exec NS tests/lab/services.sh start STATE_DIR [ADDR4]` and
# `tests/lab/services.sh stop STATE_DIR`.
#
# `start` makes a test CA and certificates (openssl CLI), renders the configs of
# tests/lab/conf/ into STATE_DIR, starts OpenSSH, Postfix, Dovecot, two vsftpd,
# nginx, slapd, an `openssl s_server -tls1` and the scripted responders
# (responders.py) in the foreground of their own, waits (bounded) until every
# port listens, prints `ready` and exits 0; the daemons keep running, their pids
# in STATE_DIR/pids/. Everything they write lives in STATE_DIR, so several labs
# (one per namespace) run at once. Nothing here touches /etc, /var or systemd;
# the only global thing it may create is the empty directory /run/sshd that
# sshd's privilege separation insists on.
#
# With the default ADDR4 it also adds 198.18.0.2's neighbour 198.18.0.3 to the
# same interface (SOCKEYE_LAB_ALIAS4 to change, empty for none), where a
# responder speaks SSH on port 110.
#
# SOCKEYE_LAB_WILDCARD=1 (opt-in, for benches/probe/run.sh): Postfix's smtpd on
# 25 and nginx's 443 listen on the wildcard address 0.0.0.0 instead of ADDR4,
# so that a local route (`ip route add local 198.18.16.0/22 dev lo`) makes every
# address of a block answer SMTP-with-STARTTLS and HTTPS; Postfix's limits that
# would otherwise throttle a single busy client are lifted (see tests/lab/README.md).
# Every other port stays on ADDR4. Unset or 0: the default lab, unchanged.
#
# `stop` sends TERM to every recorded pid (only if it is still the process we
# started: same start time), waits a grace period, then KILL; it is idempotent.
# Ports, first bytes and accounts: tests/lab/README.md.
set -euo pipefail
# The daemons and their tools live in sbin, which a test's PATH may lack.
export PATH="/usr/sbin:/usr/bin:/sbin:/bin:$PATH"

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
conf_src="$here/conf"

# How long `start` waits for every port to listen.
READY_SECONDS=${SOCKEYE_LAB_READY_SECONDS:-20}
# Lifetime cap of the scripted responders and the TLS 1.0 server.
RESPONDER_SECONDS=${SOCKEYE_LAB_RESPONDER_SECONDS:-900}
# 1: smtpd on 25 and nginx's 443 on 0.0.0.0 (see the header).
WILDCARD=${SOCKEYE_LAB_WILDCARD:-0}
# TERM grace before KILL in `stop`.
STOP_GRACE_TENTHS=50

usage() {
  echo "usage: $0 start STATE_DIR [ADDR4] | stop STATE_DIR" >&2
  exit 2
}

die() {
  echo "services.sh: $*" >&2
  exit 1
}

# Field 22 of /proc/PID/stat: start time in clock ticks since boot. With the pid
# it identifies a process, so a recycled pid is never signalled. Fails for a
# process that is gone or a zombie (dead, waiting for a parent to reap it).
start_time() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  # The command name (field 2) may contain spaces: cut after its closing paren.
  stat=${stat##*) }
  # shellcheck disable=SC2086 # split into fields on purpose
  set -- $stat
  [ "$1" != Z ] || return 1
  echo "${20}"
}

# alive NAME: true if the recorded process still runs.
alive() {
  local f="$state/pids/$1.pid" pid want got
  [ -f "$f" ] || return 1
  read -r pid want <"$f" || return 1
  got=$(start_time "$pid") || return 1
  [ "$got" = "$want" ]
}

# launch NAME CMD...: runs CMD in the background, output to logs/NAME.log,
# records "pid starttime" in pids/NAME.pid. CMD must stay in the foreground
# (it is the daemon itself, or execs it).
launch() {
  local name=$1
  shift
  "$@" </dev/null >>"$state/logs/$name.log" 2>&1 &
  local pid=$! st
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    st=$(start_time "$pid") && break
    sleep 0.01
  done
  [ -n "${st:-}" ] || { tail_log "$name"; die "$name exited at once"; }
  echo "$pid $st" >"$state/pids/$name.pid"
}

tail_log() {
  local name=$1 f
  for f in "$state/logs/$name.log" "$state/logs/$name"*.log; do
    [ -s "$f" ] || continue
    echo "---- last lines of $f" >&2
    tail -n 25 "$f" >&2
  done
}

# render SRC DEST: a template with @STATE@, @ADDR@, @MAIL_UID@, @MAIL_GID@.
render() {
  sed -e "s|@STATE@|$state|g" -e "s|@ADDR@|$addr|g" \
    -e "s|@MAIL_UID@|$mail_uid|g" -e "s|@MAIL_GID@|$mail_gid|g" "$1" >"$2"
}

make_tls() {
  local t="$state/tls"
  mkdir -p "$t/ca-db"
  # The CA (EC P-256: instant to generate).
  openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$t/ca.key" -out "$t/ca.crt" -days 3650 -subj "/O=sockeye lab/CN=sockeye lab test CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    2>"$t/openssl.log"
  # The servers' certificate (RSA 2048, as most real servers still have).
  openssl req -new -newkey rsa:2048 -nodes -keyout "$t/server.key" -out "$t/server.csr" \
    -subj "/O=sockeye lab/CN=lab.test" 2>>"$t/openssl.log"
  cat >"$t/server.ext" <<EXT
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:lab.test, DNS:mail.lab.test, DNS:forbidden.lab.test, IP:$addr
EXT
  openssl x509 -req -in "$t/server.csr" -CA "$t/ca.crt" -CAkey "$t/ca.key" \
    -set_serial "0x$(openssl rand -hex 8)" -days 825 -sha256 -extfile "$t/server.ext" \
    -out "$t/server.crt" 2>>"$t/openssl.log"
  # An EXPIRED certificate (valid 2020-01-01 .. 2021-01-01) for the 7443 responder.
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$t/expired.key" \
    -out "$t/expired.csr" -subj "/O=sockeye lab/CN=expired.lab.test" 2>>"$t/openssl.log"
  : >"$t/ca-db/index.txt"
  openssl rand -hex 8 >"$t/ca-db/serial"
  render "$conf_src/openssl-ca.cnf" "$t/openssl-ca.cnf"
  openssl ca -batch -notext -config "$t/openssl-ca.cnf" -extensions expired_ext \
    -cert "$t/ca.crt" -keyfile "$t/ca.key" -in "$t/expired.csr" -out "$t/expired.crt" \
    -startdate 20200101000000Z -enddate 20210101000000Z 2>>"$t/openssl.log" >/dev/null
  chmod 600 "$t"/*.key
}

# Every port of the lab, "port name": name is the log to show if it never listens.
PORTS="22 sshd
25 postfix
465 postfix
587 postfix
2525 postfix
110 dovecot
143 dovecot
993 dovecot
995 dovecot
21 vsftpd
2121 vsftpd-plain
80 nginx
443 nginx
631 nginx
8080 nginx
389 slapd
636 slapd
7001 responders
7002 responders
7003 responders
7004 responders
7005 responders
7025 responders
7110 responders
7421 responders
7443 responders
7010 tls1-server"

wait_ports() {
  local deadline=$((SECONDS + READY_SECONDS)) missing listening port name
  while :; do
    listening=" $(ss -Hltn | awk '{print $4}' | tr '\n' ' ') "
    missing=""
    while read -r port name; do
      want=$addr
      [ "$WILDCARD" = 1 ] && { [ "$port" = 25 ] || [ "$port" = 443 ]; } && want=0.0.0.0
      case "$listening" in *" $want:$port "*) ;; *) missing="$missing $port:$name" ;; esac
    done <<<"$PORTS"
    if [ -n "$alias4" ]; then
      case "$listening" in *" $alias4:110 "*) ;; *) missing="$missing $alias4:110:responders" ;; esac
    fi
    [ -z "$missing" ] && return 0
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "services.sh: not listening after ${READY_SECONDS}s:$missing" >&2
      # The state of each daemon in charge, and its log tail.
      for name in $(printf '%s\n' $missing | sed 's/.*://' | sort -u); do
        alive "$name" || echo "services.sh: $name is not running" >&2
        tail_log "$name"
      done
      return 1
    fi
    sleep 0.1
  done
}

do_start() {
  addr=${1:-198.18.0.2}
  mkdir -p "$state"
  state=$(cd "$state" && pwd)
  for f in "$state"/pids/*.pid; do
    [ -e "$f" ] || continue
    n=$(basename "$f" .pid)
    alive "$n" && die "$n already runs from $state (stop it first)"
  done
  # From here on, any failure stops whatever this run started.
  trap 'rc=$?; if [ "$rc" != 0 ]; then do_stop; fi' EXIT
  # A restart in the same directory makes new keys and a fresh directory
  # database; mail, queue and logs are kept.
  rm -rf "$state/tls" "$state/ssh" "$state/ldap/db"
  # Daemons drop privileges (postfix, dovecot, ftp, mail users): they must be
  # able to walk down to their files.
  chmod 755 "$state"
  mkdir -p "$state"/{pids,logs,run,ssh,tls,sasl,mail,postfix/conf,postfix/data,postfix/queue,dovecot/run,dovecot/state} \
    "$state"/{ftp/anon,ftp/home,ftp/empty,ftp/pam.d,nginx/tmp,ldap/db}
  # The system interpreter: starts faster than a pyenv shim, uses the system OpenSSL.
  python=/usr/bin/python3
  [ -x "$python" ] || python=python3
  mail_uid=$(id -u mail)
  mail_gid=$(id -g mail)
  # sshd wants its privilege-separation directory; labs start concurrently, so
  # create it in one step that cannot fail when another lab made it first.
  mkdir -p -m 755 /run/sshd
  ip link set lo up 2>/dev/null || true

  # A second address on ADDR4's interface, for an SSH banner on port 110 (a
  # service on another service's usual port): 198.18.0.3 next to the default
  # 198.18.0.2, or SOCKEYE_LAB_ALIAS4 (empty: none).
  alias4=${SOCKEYE_LAB_ALIAS4-}
  if [ -z "${SOCKEYE_LAB_ALIAS4+set}" ] && [ "$addr" = 198.18.0.2 ]; then
    alias4=198.18.0.3
  fi
  if [ -n "$alias4" ]; then
    local dev prefix
    read -r dev prefix < <(ip -o -4 addr show to "$addr/32" | awk '{print $2, $4; exit}') || true
    [ -n "${dev:-}" ] || die "no interface carries $addr"
    ip addr replace "$alias4/${prefix#*/}" dev "$dev"
  fi

  make_tls

  # OpenSSH.
  ssh-keygen -q -t ed25519 -N '' -C lab.test -f "$state/ssh/ssh_host_ed25519_key"
  ssh-keygen -q -t ecdsa -b 256 -N '' -C lab.test -f "$state/ssh/ssh_host_ecdsa_key"
  render "$conf_src/sshd_config" "$state/ssh/sshd_config"
  launch sshd /usr/sbin/sshd -D -f "$state/ssh/sshd_config" -E "$state/logs/sshd.log"

  # Users and mailboxes: alice/wonderland, bob/builder.
  printf '%s\n' \
    "alice:{PLAIN}wonderland:$mail_uid:$mail_gid::$state/mail/alice::" \
    "bob:{PLAIN}builder:$mail_uid:$mail_gid::$state/mail/bob::" >"$state/dovecot/users"
  chown "root:dovecot" "$state/dovecot/users"
  chmod 640 "$state/dovecot/users"
  chown "$mail_uid:$mail_gid" "$state/mail"
  chown postfix:postfix "$state/sasl"

  # Dovecot first: Postfix authenticates through its socket.
  render "$conf_src/dovecot.conf" "$state/dovecot/dovecot.conf"
  launch dovecot /usr/sbin/dovecot -F -c "$state/dovecot/dovecot.conf"

  # Postfix: a private config directory; post-install makes the queue.
  render "$conf_src/main.cf" "$state/postfix/conf/main.cf"
  render "$conf_src/master.cf" "$state/postfix/conf/master.cf"
  cp "$conf_src/vmailbox" "$state/postfix/conf/vmailbox"
  if [ "$WILDCARD" = 1 ]; then
    # smtpd on 25 on every address; one client may open as many sessions as it
    # likes (the default 50 per client would answer 421), and up to 1100 smtpd
    # processes may run (the default 100 would queue a benchmark's sessions).
    sed -i "s|^$addr:25 |0.0.0.0:25 |" "$state/postfix/conf/master.cf"
    printf '%s\n' "# SOCKEYE_LAB_WILDCARD=1" "smtpd_client_connection_count_limit = 0" \
      "default_process_limit = 1100" >>"$state/postfix/conf/main.cf"
  fi
  # Postfix waits until a just-written table or main.cf is 2 s old (it might be
  # half written): these are complete, so date them back.
  touch -d '1 minute ago' "$state"/postfix/conf/*
  chown postfix:postfix "$state/postfix/data"
  # What `postfix start` does, minus its slow checks (our queue is new), and
  # master(8) itself in the foreground (start-fg would leave a shell in between).
  local pf_conf="$state/postfix/conf" pf_daemons
  pf_daemons=$(postconf -c "$pf_conf" -h daemon_directory)
  "$pf_daemons/post-install" config_directory="$pf_conf" \
    meta_directory="$(postconf -c "$pf_conf" -h meta_directory)" create-missing \
    >>"$state/logs/postfix.log" 2>&1 || { tail_log postfix; die "postfix post-install failed"; }
  launch postfix "$pf_daemons/master" -c "$pf_conf" -s

  # vsftpd: PAM service file bind-mounted over /etc/pam.d in vsftpd's own
  # mount namespace, so it is per lab and nothing is written to /etc.
  render "$conf_src/vsftpd.conf" "$state/ftp/vsftpd.conf"
  render "$conf_src/vsftpd-plain.conf" "$state/ftp/vsftpd-plain.conf"
  render "$conf_src/pam-sockeye-lab-ftp" "$state/ftp/pam.d/sockeye-lab-ftp"
  printf '%s\n' "alice:$(openssl passwd -6 wonderland)" "bob:$(openssl passwd -6 builder)" \
    >"$state/ftp/passwd"
  chmod 600 "$state/ftp/passwd"
  # Sent as "220-" lines, then vsftpd closes the reply with a bare "220 " line.
  printf '%s\n' "Welcome to the sockeye lab's plain FTP server." \
    "This greeting spans several lines on purpose." "No TLS here." >"$state/ftp/banner-plain.txt"
  echo "Anonymous FTP of the sockeye lab." >"$state/ftp/anon/README"
  # 2121's anonymous passwords (secure_email_list_enable): any other is refused.
  echo "guest@lab.test" >"$state/ftp/anon-passwords"
  echo "Alice's FTP home in the sockeye lab." >"$state/ftp/home/README"
  launch vsftpd unshare --mount --propagation private -- sh -c \
    'mount --bind "$1" /etc/pam.d && exec /usr/sbin/vsftpd "$2"' sh \
    "$state/ftp/pam.d" "$state/ftp/vsftpd.conf"
  launch vsftpd-plain /usr/sbin/vsftpd "$state/ftp/vsftpd-plain.conf"

  # nginx.
  render "$conf_src/nginx.conf" "$state/nginx/nginx.conf"
  if [ "$WILDCARD" = 1 ]; then
    # 443 on every address; room for a benchmark's concurrent connections.
    sed -i -e "s|listen $addr:443 |listen 443 |" \
      -e "s|worker_connections 256;|worker_connections 4096;|" "$state/nginx/nginx.conf"
  fi
  launch nginx /usr/sbin/nginx -p "$state/nginx/" -e "$state/logs/nginx-error.log" \
    -c "$state/nginx/nginx.conf" -g 'daemon off;'

  # slapd: the database is loaded offline, then slapd runs in the foreground (-d 0).
  render "$conf_src/slapd.conf" "$state/ldap/slapd.conf"
  slapadd -q -f "$state/ldap/slapd.conf" -l "$conf_src/base.ldif" >>"$state/logs/slapd.log" 2>&1 ||
    { tail_log slapd; die "slapadd failed"; }
  launch slapd /usr/sbin/slapd -d 0 -f "$state/ldap/slapd.conf" -h "ldap://$addr/ ldaps://$addr/"

  # The scripted responders and the TLS 1.0-only "old printer".
  launch responders timeout "$RESPONDER_SECONDS" "$python" "$here/responders.py" --addr "$addr" \
    --seconds "$RESPONDER_SECONDS" --expired-cert "$state/tls/expired.crt" \
    --expired-key "$state/tls/expired.key" ${alias4:+--alias "$alias4"}
  launch tls1-server timeout "$RESPONDER_SECONDS" openssl s_server -quiet -tls1 \
    -cipher 'DEFAULT:@SECLEVEL=0' -www -accept "$addr:7010" \
    -cert "$state/tls/server.crt" -key "$state/tls/server.key"

  wait_ports || exit 1
  echo ready
}

do_stop() {
  [ -d "$state/pids" ] || return 0
  local f n pid st pids=""
  for f in "$state"/pids/*.pid; do
    [ -e "$f" ] || continue
    n=$(basename "$f" .pid)
    if alive "$n"; then
      read -r pid st <"$f"
      kill -TERM "$pid" 2>/dev/null || true
      pids="$pids $n"
    else
      rm -f "$f"
    fi
  done
  for _ in $(seq "$STOP_GRACE_TENTHS"); do
    local left=""
    for n in $pids; do alive "$n" && left="$left $n"; done
    pids=$left
    [ -z "$pids" ] && break
    sleep 0.1
  done
  for n in $pids; do
    if alive "$n"; then
      read -r pid st <"$state/pids/$n.pid"
      echo "services.sh: $n ($pid) ignored TERM, sending KILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  rm -f "$state"/pids/*.pid
}

[ $# -ge 2 ] || usage
state=$2
case $1 in
  start) [ $# -le 3 ] || usage; do_start "${3:-}" ;;
  stop) [ $# -eq 2 ] || usage; do_stop ;;
  *) usage ;;
esac
