#!/usr/bin/env bash
# Start/stop the real servers the integration tests talk to:
#   Kafka  - tansu broker, in-memory storage   127.0.0.1:$ZHIDA_KAFKA_PORT (9092)
#   Redis  - redis-server                      127.0.0.1:$ZHIDA_REDIS_PORT (6379)
#   SMTP   - Postfix smtp-sink, one file per received message in $ZHIDA_RUN_DIR/smtp
#   SMSC   - deploy/smsc/smsc.js (Node.js, npm package smpp): one SMPP 3.4 "provider" per port
#            127.0.0.1:$ZHIDA_SMPP_PORTS (2775,2776), HTTP control API on
#            127.0.0.1:$ZHIDA_SMSC_CONTROL_PORT (2780), each accepted submit_sm one JSON line in
#            $ZHIDA_RUN_DIR/sms/<port>.jsonl, receipts in <port>.receipts.jsonl (deploy/smsc/README.md)
# and, not a server but run by the tests themselves, a Python venv for the test peers
# (tests/peers: the webhook receiver verifies with PyPI's standardwebhooks), $ZHIDA_WEBHOOK_PYTHON.
# Missing software is installed on first use (apt for redis/postfix/python3-venv, cargo for
# tansu, `npm ci` into deploy/smsc/node_modules for the SMSC, pip into the venv);
# Node.js and npm must be on the machine.
# Idempotent: whatever already listens on a port is left alone; `down` only stops
# processes this script started (tracked by pid files in $ZHIDA_RUN_DIR).
#
# Usage: deploy/servers.sh up|down|status|env|tools   (tools: only install what is missing)
#        eval "$(deploy/servers.sh env)"   # exports ZHIDA_TEST_* for the tests
set -euo pipefail

RUN_DIR=${ZHIDA_RUN_DIR:-/tmp/zhida-servers}
CACHE=${ZHIDA_CACHE:-$HOME/.cache/zhida}
KAFKA_PORT=${ZHIDA_KAFKA_PORT:-9092}
REDIS_PORT=${ZHIDA_REDIS_PORT:-6379}
SMTP_PORT=${ZHIDA_SMTP_PORT:-2525}
SMTP_DUMP=$RUN_DIR/smtp
TANSU=$CACHE/tools/bin/tansu
TANSU_VERSION=0.6.0
SMTP_SINK=/usr/sbin/smtp-sink
SMPP_PORTS=${ZHIDA_SMPP_PORTS:-2775,2776}
SMSC_CONTROL_PORT=${ZHIDA_SMSC_CONTROL_PORT:-2780}
SMSC_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/smsc" && pwd)
SMS_DUMP=$RUN_DIR/sms
PY_VENV=$CACHE/tools/py
PEER_REQUIREMENTS=$(cd "$(dirname "${BASH_SOURCE[0]}")/../tests/peers" && pwd)/requirements.txt
START_TIMEOUT=30

log() { echo "[servers] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

port_open() { (: <>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# pid recorded in $RUN_DIR/<name>.pid, if that process is alive and is still <name>.
managed_pid() {
    local pid
    pid=$(cat "$RUN_DIR/$1.pid" 2>/dev/null) || return 1
    if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null &&
        tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$1"; then
        echo "$pid"
    else
        rm -f "$RUN_DIR/$1.pid"
        return 1
    fi
}

# wait_port <port> <name> <log> [pid]: poll until the port accepts connections.
wait_port() {
    local deadline=$((SECONDS + START_TIMEOUT))
    until port_open "$1"; do
        if [[ -n ${4:-} ]] && ! kill -0 "$4" 2>/dev/null; then
            tail -n 20 "$3" >&2 || true
            die "$2 exited during startup (log: $3)"
        fi
        ((SECONDS < deadline)) || { tail -n 20 "$3" >&2 || true; die "$2 not listening on :$1 after ${START_TIMEOUT}s (log: $3)"; }
        sleep 0.2
    done
}

apt_install() {
    # Wait for a concurrent apt/dpkg run instead of failing on its lock.
    local apt=(apt-get -o DPkg::Lock::Timeout=900 -y -q)
    apt-cache show "$1" >/dev/null 2>&1 || "${apt[@]}" update >&2
    DEBIAN_FRONTEND=noninteractive "${apt[@]}" install --no-install-recommends "$@" >&2
}

# ---------------------------------------------------------------- Kafka (tansu)
install_tansu() {
    [[ -x $TANSU ]] && return
    command -v cc >/dev/null || apt_install build-essential
    log "installing tansu $TANSU_VERSION into $CACHE/tools (slow, ~10+ min first time)"
    log "(if another install into the same root is running, cargo waits for its build lock)"
    cargo install tansu --version "$TANSU_VERSION" --locked --features dynostore,postgres \
        --root "$CACHE/tools" --target-dir "$CACHE/tansu-build" >&2
    [[ -x $TANSU ]] || die "tansu install did not produce $TANSU"
}

up_kafka() {
    local pid
    if pid=$(managed_pid tansu); then log "kafka: tansu already running (pid $pid)"; return; fi
    if port_open "$KAFKA_PORT"; then log "kafka: port $KAFKA_PORT already in use, leaving it"; return; fi
    install_tansu
    log "kafka: starting tansu on 127.0.0.1:$KAFKA_PORT (memory storage)"
    # Run from $RUN_DIR: tansu reads a .env file from its working directory.
    (cd "$RUN_DIR" && exec nohup "$TANSU" broker \
        --cluster-id zhida \
        --listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
        --advertised-listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
        --storage-engine memory://tansu/ \
        </dev/null >"$RUN_DIR/tansu.log" 2>&1) &
    echo $! >"$RUN_DIR/tansu.pid"
    wait_port "$KAFKA_PORT" kafka "$RUN_DIR/tansu.log" $!
}

# ---------------------------------------------------------------- Redis
redis_answers() {
    if command -v redis-cli >/dev/null; then
        [[ $(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]]
    else
        port_open "$REDIS_PORT"
    fi
}

up_redis() {
    local pid
    if pid=$(managed_pid redis-server); then log "redis: already running (pid $pid)"; return; fi
    if redis_answers; then log "redis: already answering on :$REDIS_PORT, leaving it"; return; fi
    port_open "$REDIS_PORT" && die "port $REDIS_PORT is in use by something that is not redis"
    if ! command -v redis-server >/dev/null; then
        log "redis: installing redis-server via apt"
        apt_install redis-server
        # Under systemd the package starts its own service; use that if so.
        if redis_answers; then log "redis: system service answering on :$REDIS_PORT, leaving it"; return; fi
    fi
    log "redis: starting redis-server on 127.0.0.1:$REDIS_PORT"
    redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
        --dir "$RUN_DIR" --pidfile "$RUN_DIR/redis-server.pid" --logfile "$RUN_DIR/redis.log" </dev/null
    wait_port "$REDIS_PORT" redis "$RUN_DIR/redis.log"
}

# ---------------------------------------------------------------- SMTP (smtp-sink)
up_smtp() {
    local pid user=()
    if pid=$(managed_pid smtp-sink); then log "smtp: smtp-sink already running (pid $pid)"; return; fi
    if port_open "$SMTP_PORT"; then log "smtp: port $SMTP_PORT already in use, leaving it"; return; fi
    if [[ ! -x $SMTP_SINK ]]; then
        log "smtp: installing postfix (for smtp-sink) via apt"
        # "No configuration": do not set up or start the Postfix mail system itself.
        echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
        apt_install postfix
    fi
    # Fresh server, fresh dump dir. Each message -> $SMTP_DUMP/<YYYYmmdd-HHMMSS>.<random hex>
    rm -rf "$SMTP_DUMP" && mkdir -p "$SMTP_DUMP"
    ((EUID == 0)) && user=(-u root)   # smtp-sink insists on -u when run as root
    log "smtp: starting smtp-sink on 127.0.0.1:$SMTP_PORT, dumping to $SMTP_DUMP"
    nohup "$SMTP_SINK" "${user[@]}" -m 1024 -d "$SMTP_DUMP/%Y%m%d-%H%M%S." \
        "127.0.0.1:$SMTP_PORT" 1024 </dev/null >"$RUN_DIR/smtp-sink.log" 2>&1 &
    echo $! >"$RUN_DIR/smtp-sink.pid"
    wait_port "$SMTP_PORT" smtp "$RUN_DIR/smtp-sink.log" $!
}

# ---------------------------------------------------------------- SMSC (deploy/smsc/smsc.js)
smpp_ports() { tr ',' ' ' <<<"$SMPP_PORTS"; }

# npm ci from the committed lock file, once per lock file version (stamp in node_modules).
install_smsc() {
    local stamp=$SMSC_DIR/node_modules/.zhida-installed-lock
    cmp -s "$SMSC_DIR/package-lock.json" "$stamp" 2>/dev/null && return
    log "smsc: installing node packages (npm ci in $SMSC_DIR)"
    (cd "$SMSC_DIR" && npm ci --prefer-offline --no-audit --no-fund --loglevel=error) >&2 ||
        die "smsc: npm ci failed in $SMSC_DIR"
    cp "$SMSC_DIR/package-lock.json" "$stamp"
}

up_smsc() {
    local pid port open=() closed=()
    if pid=$(managed_pid smsc); then log "smsc: already running (pid $pid)"; return; fi
    for port in $(smpp_ports) "$SMSC_CONTROL_PORT"; do
        if port_open "$port"; then open+=("$port"); else closed+=("$port"); fi
    done
    if ((${#closed[@]} == 0)); then log "smsc: ports $SMPP_PORTS and $SMSC_CONTROL_PORT already in use, leaving them"; return; fi
    ((${#open[@]} == 0)) || die "smsc: port(s) ${open[*]} in use by something else (need $SMPP_PORTS and $SMSC_CONTROL_PORT)"
    command -v node >/dev/null && command -v npm >/dev/null ||
        die "smsc: the SMSC simulator needs Node.js and npm on PATH (Debian: apt-get install nodejs npm)"
    install_smsc
    # Fresh server, fresh dump dir.
    rm -rf "$SMS_DUMP" && mkdir -p "$SMS_DUMP"
    log "smsc: starting the SMPP simulator on 127.0.0.1:$SMPP_PORTS, control on :$SMSC_CONTROL_PORT, dumping to $SMS_DUMP"
    ZHIDA_RUN_DIR=$RUN_DIR ZHIDA_SMPP_PORTS=$SMPP_PORTS ZHIDA_SMSC_CONTROL_PORT=$SMSC_CONTROL_PORT \
        nohup node "$SMSC_DIR/smsc.js" </dev/null >"$RUN_DIR/smsc.log" 2>&1 &
    echo $! >"$RUN_DIR/smsc.pid"
    for port in $(smpp_ports) "$SMSC_CONTROL_PORT"; do
        wait_port "$port" smsc "$RUN_DIR/smsc.log" $!
    done
}

smpp_addrs() { # 127.0.0.1:2775,127.0.0.1:2776
    local port out=()
    for port in $(smpp_ports); do out+=("127.0.0.1:$port"); done
    (IFS=,; echo "${out[*]}")
}

# ---------------------------------------------------------------- Python venv for tests/peers
# A venv with tests/peers/requirements.txt, (re)made when that file changes (a copy of the
# one installed is kept in the venv); under a lock, as parallel `up`s may share the cache.
py_installed() {
    cmp -s "$PEER_REQUIREMENTS" "$PY_VENV/zhida-requirements.txt" 2>/dev/null && [[ -x $PY_VENV/bin/python ]]
}

install_py() {
    py_installed && return
    mkdir -p "$CACHE/tools"
    exec 8>"$CACHE/tools/py.lock"
    flock 8
    if ! py_installed; then
        # Debian's python3 has no ensurepip (so no `python3 -m venv`) without python3-venv.
        if ! command -v python3 >/dev/null || ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
            log "python: installing python3-venv via apt"
            apt_install python3-venv
        fi
        log "python: making the venv $PY_VENV for $PEER_REQUIREMENTS"
        python3 -m venv --clear "$PY_VENV" >&2 || die "python: could not make the venv $PY_VENV"
        "$PY_VENV/bin/pip" install --quiet --disable-pip-version-check --require-hashes \
            -r "$PEER_REQUIREMENTS" >&2 || die "python: pip install -r $PEER_REQUIREMENTS failed"
        cp "$PEER_REQUIREMENTS" "$PY_VENV/zhida-requirements.txt"
    fi
    exec 8>&-
}

# ---------------------------------------------------------------- commands
stop() {
    local pid
    pid=$(managed_pid "$1") || { log "$1: not started by us, nothing to stop"; return; }
    log "$1: stopping pid $pid"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && { log "$1: still alive, sending SIGKILL"; kill -9 "$pid" 2>/dev/null || true; }
    rm -f "$RUN_DIR/$1.pid"
}

status_line() { # <label> <port> <pid-name>
    local pid
    if pid=$(managed_pid "$3"); then
        port_open "$2" && echo "$1 127.0.0.1:$2 up (pid $pid, ours)" && return
        echo "$1 127.0.0.1:$2 DOWN (pid $pid alive but port closed)"; return 1
    fi
    port_open "$2" && echo "$1 127.0.0.1:$2 up (external)" && return
    echo "$1 127.0.0.1:$2 down"; return 1
}

mkdir -p "$RUN_DIR"
case ${1:-} in
up)
    up_redis
    up_smtp
    up_kafka
    up_smsc
    install_py
    log "all up"
    ;;
tools)
    install_tansu
    install_smsc
    install_py
    log "tools installed"
    ;;
down)
    stop smsc
    stop tansu
    stop smtp-sink
    stop redis-server
    ;;
status)
    rc=0
    status_line kafka "$KAFKA_PORT" tansu || rc=1
    status_line redis "$REDIS_PORT" redis-server || rc=1
    status_line smtp "$SMTP_PORT" smtp-sink || rc=1
    for port in $(smpp_ports); do status_line smpp "$port" smsc || rc=1; done
    status_line smsc-control "$SMSC_CONTROL_PORT" smsc || rc=1
    echo "smtp dump dir: $SMTP_DUMP ($(find "$SMTP_DUMP" -type f 2>/dev/null | wc -l) messages)"
    echo "sms dump dir: $SMS_DUMP ($(cat "$SMS_DUMP"/[0-9]*[0-9].jsonl 2>/dev/null | wc -l) accepted submits)"
    exit $rc
    ;;
env)
    printf 'export %s=%q\n' \
        ZHIDA_TEST_KAFKA "127.0.0.1:$KAFKA_PORT" \
        ZHIDA_TEST_REDIS "redis://127.0.0.1:$REDIS_PORT" \
        ZHIDA_TEST_SMTP "127.0.0.1:$SMTP_PORT" \
        ZHIDA_TEST_SMTP_DUMP "$SMTP_DUMP" \
        ZHIDA_TEST_SMPP "$(smpp_addrs)" \
        ZHIDA_TEST_SMSC_CONTROL "http://127.0.0.1:$SMSC_CONTROL_PORT" \
        ZHIDA_TEST_SMS_DUMP "$SMS_DUMP" \
        ZHIDA_WEBHOOK_PYTHON "$PY_VENV/bin/python"
    ;;
*)
    echo "usage: $0 up|down|status|env|tools" >&2
    exit 2
    ;;
esac
