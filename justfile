# Zhida task runner (https://just.systems). Every recipe is a thin wrapper over a
# command you can also run by hand, as README shows it; `just` itself is optional
# (`cargo install just --locked` if you want it). The exports below only point the build
# at the cache deploy/test.sh and .ci/run use.

export ZHIDA_CACHE := env_var_or_default("ZHIDA_CACHE", env_var("HOME") + "/.cache/zhida")
export CARGO_TARGET_DIR := env_var_or_default("CARGO_TARGET_DIR", ZHIDA_CACHE + "/target")

# List the recipes.
default:
    @just --list

# Everything in one process on the embedded defaults (no installs needed).
demo:
    cargo run --release -- demo

# The full suite against real servers (installs and starts them, then stops them).
test *ARGS:
    deploy/test.sh {{ARGS}}

# Start / stop / show the real servers (tansu, Redis, smtp-sink) for manual runs.
servers-up:
    deploy/servers.sh up
servers-down:
    deploy/servers.sh down
servers-status:
    deploy/servers.sh status

# Formatting and lints, as CI runs them.
lint:
    cargo fmt --all -- --check
    cargo clippy --locked --all-targets -- -D warnings

fmt:
    cargo fmt --all

# What CI runs on a clean clone.
ci:
    .ci/run

# Container image for Kubernetes (see helm/zhida).
image TAG="zhida:dev":
    docker build -f deploy/Dockerfile -t {{TAG}} .

# Audience matching: bitmap index vs linear scan on 1M synthetic profiles (fixed seed).
bench-match:
    cargo bench -p zhida-audience --bench match

# A profiler replica's replay of 1M profiles and its policy resolution with reasons.
bench-rebuild:
    cargo bench -p zhida-profiler --bench rebuild

# SMS/s from one notifier to the SMSC simulator (1 and 2 providers, with and without a
# rate limit) beside one raw SMPP session; starts the real servers first.
bench-sms:
    deploy/servers.sh up
    eval "$(deploy/servers.sh env)" && cargo bench --bench sms

# Emails/s through the email channel with DKIM off, Ed25519 and RSA-2048, side by side
# (render + sign alone, and via SMTP to a Postfix smtp-sink the bench starts itself).
bench-email:
    cargo bench -p zhida-notifier --bench email

# What `kafka.one_record_per_batch` costs: produce and consume records/s of ~400-byte
# events through zhida_bus::Producer with batch.num.messages 1 vs 10000, on the running
# tansu; starts the real servers first.
bench-broker:
    deploy/servers.sh up
    eval "$(deploy/servers.sh env)" && cargo bench -p zhida-bus --bench broker

# A fetch offset inside a multi-record batch (why `one_record_per_batch` exists; see
# docs/upstream/tansu-fetch-inside-batch.md); BROKER defaults to the test servers' tansu.
repro-fetch-inside-batch BROKER="127.0.0.1:9092":
    cargo run -p zhida-bus --example tansu_fetch_inside_batch -- {{BROKER}}

# The delivery ledger's begin + finish per delivery on the real Redis, one after another
# and 8/64/256 at once, with commands per Redis read; starts the real servers first.
bench-ledger:
    deploy/servers.sh up
    eval "$(deploy/servers.sh env)" && cargo bench -p zhida-store --bench ledger

# Profiles/s imported by `zhida import` into one `zhida serve profiler`, beside the same
# profiles through UpsertProfile (64 callers) and the raw produce rate of their records,
# with kafka.one_record_per_batch on and off (the default); starts the real servers first.
bench-import:
    deploy/servers.sh up
    eval "$(deploy/servers.sh env)" && cargo bench --bench import

# The whole pipeline: BENCH_PIPELINE_PROFILES (100,000) email subscribers imported, one
# policy fanned out to them through `zhida serve all` and then serve all + a second notifier,
# emails/s beside smtp-source into the same smtp-sink and librdkafka's raw rate, publish →
# email latency of 50 single-recipient policies, CPU per process; starts the real servers.
bench-pipeline:
    deploy/servers.sh up
    eval "$(deploy/servers.sh env)" && cargo bench --bench pipeline

# The policy library's search (公文库): ZHIDA_BENCH_POLICIES (100,000) generated Chinese
# policies produced to policy.events and rebuilt into the index (beside reading the topic
# alone), search p50/p99 beside a str::contains scan, RSS; starts the real servers first.
bench-search:
    deploy/servers.sh up
    eval "$(deploy/servers.sh env)" && cargo bench -p zhida-search --bench search

# The 政府+ relay against tansu and Redis: policies relayed/s to 1,000 webhook subscribers
# (signed, verified) beside the sender's raw rate, StreamFeed fan-out to 1,000 clients
# beside one, and memory per idle stream.
bench-relay:
    deploy/servers.sh up
    eval "$(deploy/servers.sh env)" && cargo bench --bench relay

# Every benchmark.
bench: bench-match bench-rebuild bench-sms bench-email bench-broker bench-ledger bench-import bench-pipeline bench-search bench-relay
