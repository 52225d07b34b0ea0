#!/usr/bin/env bash
# Start/stop the real servers the integration tests talk to:
#   Kafka  - tansu broker, in-memory storage   127.0.0.1:$ZHIDA_KAFKA_PORT (9092)
#   Redis  - redis-server                      127.0.0.1:$ZHIDA_REDIS_PORT (6379)
#   SMTP   - Postfix smtp-sink, one file per received message in $ZHIDA_RUN_DIR/smtp
# Missing software is installed on first use (apt for redis/postfix, cargo for tansu).
# Idempotent: whatever already listens on a port is left alone; `down` only stops
# processes this script started (tracked by pid files in $ZHIDA_RUN_DIR).
#
# Usage: deploy/servers.sh up|down|status|env
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
    log "all up"
    ;;
down)
    stop tansu
    stop smtp-sink
    stop redis-server
    ;;
status)
    rc=0
    status_line kafka "$KAFKA_PORT" tansu || rc=1
    status_line redis "$REDIS_PORT" redis-server || rc=1
    status_line smtp "$SMTP_PORT" smtp-sink || rc=1
    echo "smtp dump dir: $SMTP_DUMP ($(find "$SMTP_DUMP" -type f 2>/dev/null | wc -l) messages)"
    exit $rc
    ;;
env)
    printf 'export %s=%q\n' \
        ZHIDA_TEST_KAFKA "127.0.0.1:$KAFKA_PORT" \
        ZHIDA_TEST_REDIS "redis://127.0.0.1:$REDIS_PORT" \
        ZHIDA_TEST_SMTP "127.0.0.1:$SMTP_PORT" \
        ZHIDA_TEST_SMTP_DUMP "$SMTP_DUMP"
    ;;
*)
    echo "usage: $0 up|down|status|env" >&2
    exit 2
    ;;
esac
