#!/usr/bin/env bash
# bench/compare.sh — compare bsf-dns with NSD, Knot DNS and the floor responder, in one command.
#
# Builds in release mode, generates operator templates from the real MCC/MNC table, exports the
# same zone as a master file for NSD and Knot, starts all four servers on 127.0.0.1 pinned to
# core 1 (the load generator runs on core 0), runs the same load against each in alternation,
# and prints a table of medians, ratios and PASS/FAIL rows (ratios judged round by round; in a
# round the servers take turns in slices of 0.1 s from one client, so that all of them see the
# same machine). Everything stays on loopback; every process it starts is stopped by PID on
# exit. See bench/README.md for what each number means.
#
#   bench/compare.sh            # default run, about 11 minutes
#   bench/compare.sh --quick    # about 2 minutes, fewer and shorter rounds, smaller large set
#   bench/compare.sh --help
set -euo pipefail

# Five rounds: single runs on a shared VM swing by ±5-10%, and the verdicts are medians of
# per-round ratios, so two more rounds buy a steadier verdict for ~3.5 more minutes (a round is
# 100 s of load: 3 scenarios x 4 servers x 5 s, and 2 x 4 x 5 s in the two-thread phase).
ROUNDS=5
DURATION=5
# Seconds per turn in a round. Each server's speed on this VM drifts by 10-30% over seconds;
# turns of 0.1 s sample the same drift for every server (ratios of 5 s runs measured one after
# the other spread over 0.9-1.3, those of interleaved rounds over ~1.01-1.05).
SLICE=0.1
FIXED_RATE=60000
THREADS_RATE=""       # empty: half of bsf-dns's maximum rate (see the two-thread phase)
OUTSTANDING=128
OPERATORS=""          # empty: every pair of data/mcc-mnc-pairs.csv (~3,200)
LARGE=100000
DNSPERF_SECONDS=5
RELOAD_RATE=20000
OUT=""
BIN_DIR=""            # empty: build in release mode and use target/release
KEEP=0
DO_LARGE=1
DO_DNSPERF=1
DO_THREADS=1
INSTALL=1
MAX_OTHER=0.15        # cores used by other processes above which a run is repeated
ATTEMPTS=3            # tries per run
RETRY_BUDGET=24       # repeats over the whole benchmark (keeps the run time bounded)
QUIET_BUDGET=150      # seconds of waiting for a quiet machine over the whole benchmark

usage() {
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
    cat <<EOF

Options:
  --quick            2 rounds of 2 s, large set of 20,000 operators, 2 s dnsperf, at most
                     6 repeats and 30 s of waiting for quiet (~2 min)
  --rounds N         rounds per scenario, servers alternating (default $ROUNDS)
  --duration S       measured seconds per server and round (default $DURATION)
  --slice S          seconds per turn: in a round the servers take turns this long, from one
                     client, until each has had --duration (default $SLICE)
  --fixed-rate Q     open-loop rate of the fixed-load scenario (default $FIXED_RATE)
  --outstanding N    closed-loop queries in flight (default $OUTSTANDING)
  --operators N      operators of the main set (default: all real pairs)
  --large N          operators of the large set for load time, memory and reload (default $LARGE)
  --no-large         skip the large set
  --no-dnsperf       skip the dnsperf round
  --threads-rate Q   open-loop rate at which one thread and two are compared (default: half
                     of bsf-dns's maximum rate, measured first)
  --no-threads       skip the one-thread vs two-thread runs
  --no-install       do not apt-get install missing nsd/knot/dnsperf
  --out DIR          results directory (default: \$CARGO_TARGET_DIR or target, bench-compare/<time>)
  --max-other C      repeat a run if other processes used more than C cores (default $MAX_OTHER)
  --keep             keep the temporary work directory (zones, configs, logs)
  --bin DIR          use the bsf-dns, bsf-bench and bsf-floor binaries in DIR instead of
                     building them in release mode (the tests run the script on their debug
                     build: its figures then say nothing about performance)
EOF
}

while [ $# -gt 0 ]; do
    case "$1" in
        --quick) ROUNDS=2; DURATION=2; LARGE=20000; DNSPERF_SECONDS=2; RETRY_BUDGET=6; QUIET_BUDGET=30 ;;
        --rounds) ROUNDS="$2"; shift ;;
        --duration) DURATION="$2"; shift ;;
        --slice) SLICE="$2"; shift ;;
        --fixed-rate) FIXED_RATE="$2"; shift ;;
        --threads-rate) THREADS_RATE="$2"; shift ;;
        --outstanding) OUTSTANDING="$2"; shift ;;
        --operators) OPERATORS="$2"; shift ;;
        --large) LARGE="$2"; shift ;;
        --no-large) DO_LARGE=0 ;;
        --no-dnsperf) DO_DNSPERF=0 ;;
        --no-threads) DO_THREADS=0 ;;
        --no-install) INSTALL=0 ;;
        --out) OUT="$2"; shift ;;
        --max-other) MAX_OTHER="$2"; shift ;;
        --keep) KEEP=1 ;;
        --bin) BIN_DIR="$2"; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "compare.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

say() { printf '\n== %s\n' "$*" >&2; }
die() { printf 'compare.sh: %s\n' "$*" >&2; exit 1; }

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$REPO/target}"
case "$TARGET" in /*) ;; *) TARGET="$REPO/$TARGET" ;; esac
BIN="${BIN_DIR:-$TARGET/release}"
case "$BIN" in /*) ;; *) BIN="$PWD/$BIN" ;; esac
BENCH="$BIN/bsf-bench"

[ "$(nproc)" -ge 2 ] || die "needs at least 2 cores (server on core 1, load generator on core 0)"
SERVER_CORE=1
CLIENT_CORE=0

# --- tools -----------------------------------------------------------------------------------
missing=()
command -v nsd >/dev/null || missing+=(nsd)
command -v knotd >/dev/null || missing+=(knot)
[ "$DO_DNSPERF" = 0 ] || command -v dnsperf >/dev/null || missing+=(dnsperf)
command -v taskset >/dev/null || missing+=(util-linux)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$INSTALL" = 1 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        say "installing ${missing[*]} (apt-get)"
        # Keep package scripts from starting the system's nsd/knot: we start our own instances.
        rc_guard=0
        if [ ! -e /usr/sbin/policy-rc.d ]; then
            printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
            chmod +x /usr/sbin/policy-rc.d
            rc_guard=1
        fi
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
            || { [ "$rc_guard" = 1 ] && rm -f /usr/sbin/policy-rc.d; die "apt-get install ${missing[*]} failed"; }
        [ "$rc_guard" = 1 ] && rm -f /usr/sbin/policy-rc.d
    else
        die "missing ${missing[*]}: install them (Debian packages nsd knot dnsperf util-linux) or run as root"
    fi
fi

if [ -z "$BIN_DIR" ]; then
    say "building (release)"
    (cd "$REPO" && cargo build --release -q -p bsf-dns -p bsf-bench)
fi
for b in bsf-dns bsf-bench bsf-floor; do
    [ -x "$BIN/$b" ] || die "no $b in $BIN"
done

# --- work and results directories, cleanup ------------------------------------------------------
WORK="$(mktemp -d /tmp/bsf-compare.XXXXXX)"
RESULTS="${OUT:-$TARGET/bench-compare/$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$RESULTS"
RESULTS="$(cd "$RESULTS" && pwd)"
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do
        kill "$p" 2>/dev/null || true
    done
    for p in "${PIDS[@]}"; do
        wait "$p" 2>/dev/null || true
    done
    if [ "$KEEP" = 1 ]; then
        echo "work directory kept: $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# stop PID: end one server we started and forget it.
stop() {
    local pid="$1" p keep=()
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    for p in "${PIDS[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
    PIDS=("${keep[@]}")
}

client() { taskset -c "$CLIENT_CORE" "$@"; }

# --- zone sets ------------------------------------------------------------------------------------
cat > "$WORK/settings.toml" <<'EOF'
apex = "lwm2m.org"
[[ns]]
name = "ns1.{apex}"
addresses = ["127.0.0.1"]
EOF

# make_set NAME [OPERATORS]: templates in $WORK/NAME, names in $WORK/NAME.names, zone file in
# $WORK/NAME.zone (from bsf-dns export, so NSD and Knot serve exactly what bsf-dns serves).
make_set() {
    local name="$1" ops="${2:-}"
    "$BENCH" gen-zones --csv "$REPO/data/mcc-mnc-pairs.csv" --out "$WORK/$name" \
        --names "$WORK/$name.names" ${ops:+--operators "$ops"} >&2
    "$BIN/bsf-dns" check --zones "$WORK/$name" --config "$WORK/settings.toml" > "$WORK/$name.check" 2>&1 \
        || { cat "$WORK/$name.check" >&2; die "bsf-dns check failed on the generated $name set"; }
    "$BIN/bsf-dns" export --zones "$WORK/$name" --config "$WORK/settings.toml" > "$WORK/$name.zone"
}

# --- starting servers -----------------------------------------------------------------------------
# Each start_* sets PID and PORT, records the load time (start to first NOERROR+AA answer for
# SOA lwm2m.org) as $RESULTS/<scenario>-<server>.json, and leaves the server pinned to core 1.
wait_ready() { # server scenario
    client "$BENCH" wait --target "127.0.0.1:$PORT" --since-ns "$T0" --server-pid "$PID" \
        --timeout 300 --tag "server=$1" --tag "scenario=$2" --json --out "$RESULTS/$2-$1.json" > /dev/null \
        || die "$1 did not come up (logs in $WORK)"
}

start_bsf() { # set scenario [threads] [cores]
    local set="$1" sc="$2" threads="${3:-1}" cores="${4:-$SERVER_CORE}"
    PORT="$("$BENCH" free-port)"
    T0="$(date +%s%N)"
    taskset -c "$cores" "$BIN/bsf-dns" serve --zones "$WORK/$set" --config "$WORK/settings.toml" \
        --listen "127.0.0.1:$PORT" --threads "$threads" > "$WORK/bsf-dns-$sc.log" 2>&1 &
    PID=$!; PIDS+=("$PID")
    wait_ready bsf-dns "$sc"
}

start_nsd() { # set scenario
    local set="$1" sc="$2" d="$WORK/nsd-$2"
    mkdir -p "$d"
    PORT="$("$BENCH" free-port)"
    cat > "$d/nsd.conf" <<EOF
server:
    ip-address: 127.0.0.1@$PORT
    server-count: 1
    rrl-ratelimit: 0
    rrl-whitelist-ratelimit: 0
    reuseport: no
    username: ""
    chroot: ""
    zonesdir: "$d"
    pidfile: "$d/nsd.pid"
    database: ""
    zonelistfile: "$d/zone.list"
    xfrdfile: "$d/xfrd.state"
    xfrdir: "$d"
    logfile: "$d/nsd.log"
    hide-version: yes
remote-control:
    control-enable: no
zone:
    name: "lwm2m.org"
    zonefile: "$WORK/$set.zone"
EOF
    T0="$(date +%s%N)"
    taskset -c "$SERVER_CORE" nsd -d -c "$d/nsd.conf" > "$d/stdout.log" 2>&1 &
    PID=$!; PIDS+=("$PID")
    wait_ready nsd "$sc"
}

start_knot() { # set scenario
    local set="$1" sc="$2" d="$WORK/knot-$2"
    mkdir -p "$d"
    PORT="$("$BENCH" free-port)"
    cat > "$d/knot.conf" <<EOF
server:
    rundir: "$d"
    listen: 127.0.0.1@$PORT
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
log:
  - target: stderr
    any: warning
database:
    storage: "$d"
template:
  - id: default
    storage: "$WORK"
    file: "$set.zone"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
    semantic-checks: off
zone:
  - domain: lwm2m.org
EOF
    T0="$(date +%s%N)"
    taskset -c "$SERVER_CORE" knotd -c "$d/knot.conf" > "$d/stdout.log" 2>&1 &
    PID=$!; PIDS+=("$PID")
    wait_ready knot "$sc"
    pin_knot "$PID"
}

# Knot sets its own worker threads' affinity: put every thread back on the server core.
pin_knot() { taskset -a -p -c "$SERVER_CORE" "$1" > /dev/null; }

start_floor() { # scenario [threads] [cores]
    local sc="$1" threads="${2:-1}" cores="${3:-$SERVER_CORE}"
    PORT="$("$BENCH" free-port)"
    T0="$(date +%s%N)"
    taskset -c "$cores" "$BIN/bsf-floor" --listen "127.0.0.1:$PORT" --threads "$threads" \
        > "$WORK/floor-$sc.log" 2>&1 &
    PID=$!; PIDS+=("$PID")
    wait_ready floor "$sc"
}

# --- meta -------------------------------------------------------------------------------------------
say "generating the main set and the zone file"
make_set main "$OPERATORS"
MAIN_OPS="$(ls "$WORK/main" | wc -l)"

ver() { "$@" 2>&1 | head -1 | tr -d '"\\' || true; }
cat > "$RESULTS/meta.json" <<EOF
{
  "date": "$(date -u '+%Y-%m-%d %H:%M UTC')",
  "machine": "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) cores, kernel $(uname -r)",
  "bsf-dns": "$(ver "$BIN/bsf-dns" --version), commit $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)",
  "peers": "$(ver nsd -v); $(ver knotd --version); dnsperf $(dpkg-query -W -f '${Version}' dnsperf 2>/dev/null || echo '(version unknown)')",
  "operators (main set)": "$MAIN_OPS",
  "load": "UDP, default mix (40% A, 15% AAAA, 15% TXT, 10% SRV, 10% URI at _coaps._udp, 10% unknown operators), random letter case, EDNS 1232; $DURATION s per server and round, in turns of $SLICE s, after 0.5 s of warm-up each; closed loop $OUTSTANDING outstanding",
  "pinning": "servers on core $SERVER_CORE (one worker each), load generator on core $CLIENT_CORE"
}
EOF

# --- start the four servers -------------------------------------------------------------------------
say "starting bsf-dns, NSD, Knot and the floor responder (core $SERVER_CORE)"
declare -A SPID SPORT LENIENT
start_bsf main load;  SPID[bsf-dns]=$PID; SPORT[bsf-dns]=$PORT
start_nsd main load;  SPID[nsd]=$PID;     SPORT[nsd]=$PORT
start_knot main load; SPID[knot]=$PID;    SPORT[knot]=$PORT
start_floor load;     SPID[floor]=$PID;   SPORT[floor]=$PORT
LENIENT[bsf-dns]=""; LENIENT[nsd]=""; LENIENT[knot]=""; LENIENT[floor]=",lenient"
# bsf-dns beside the floor: the verdicts against the floor divide one by the other round by
# round, and in each round the two take turns next to each other (see round_order).
SERVERS=(bsf-dns floor nsd knot)
for s in "${SERVERS[@]}"; do
    printf '  %-8s pid %-7s 127.0.0.1:%s  ready after %s ms\n' "$s" "${SPID[$s]}" "${SPORT[$s]}" \
        "$(grep -o '"ready_ms": [0-9.]*' "$RESULTS/load-$s.json" | awk '{printf "%.0f", $2}')" >&2
done

# spec KEY: the --server item of `bsf-bench interleave` for a server started above (EXTRA[KEY]:
# more items for it, such as tags).
declare -A EXTRA
spec() { echo "name=$1,target=127.0.0.1:${SPORT[$1]},pid=${SPID[$1]}${LENIENT[$1]}${EXTRA[$1]:-}"; }

# run_round LABEL ROUND OUT KEY... -- ARGS...: one round: the servers KEY... take turns from one
# client, in slices of $SLICE s, $DURATION s each in all (bsf-bench interleave), so that every
# server samples the same drift of the machine's speed; OUT names the result files ({server}:
# the key). A round during which other processes used more than $MAX_OTHER cores is repeated
# after a pause (at most $ATTEMPTS tries, and $RETRY_BUDGET repeats over the whole benchmark);
# the report lists runs that stayed disturbed.
run_round() {
    local label="$1" r="$2" out="$3" try=1 k f bad keys=() specs=(); shift 3
    while [ "$1" != -- ]; do keys+=("$1"); shift; done
    shift
    while :; do
        quiet_wait
        specs=()
        for k in "${keys[@]}"; do
            [ "$k" = knot ] && pin_knot "${SPID[knot]}"
            specs+=(--server "$(spec "$k")")
        done
        client "$BENCH" interleave "${specs[@]}" --slice "$SLICE" --names "$WORK/main.names" \
            --duration "$DURATION" --quiet --tag "round=$r" --out "$out" "$@" > /dev/null
        bad=0
        for k in "${keys[@]}"; do
            f="${out//\{server\}/$k}"
            printf '  %-6s %-8s round %s: %s\n' "$label" "$k" "$r" "$(summary "$f")" >&2
            if disturbed "$f"; then bad=1; fi
        done
        [ "$bad" = 1 ] || break
        [ "$try" -lt "$ATTEMPTS" ] && [ "$RETRY_BUDGET" -gt 0 ] || break
        try=$((try + 1)); RETRY_BUDGET=$((RETRY_BUDGET - 1))
        echo "    (other processes were busy during that round: repeating it)" >&2
    done
}

# quiet_wait: wait (at most 20 s, and $QUIET_BUDGET s over the whole benchmark) until other
# processes leave the machine alone.
quiet_wait() {
    local t0=$SECONDS limit=20
    [ "$QUIET_BUDGET" -lt "$limit" ] && limit="$QUIET_BUDGET"
    [ "$limit" -gt 0 ] || return 0
    "$BENCH" quiet --max-busy "$MAX_OTHER" --timeout "$limit" 2>/dev/null \
        || echo "    (the machine stayed busy; measuring anyway)" >&2
    QUIET_BUDGET=$((QUIET_BUDGET - (SECONDS - t0)))
}

# disturbed FILE: true when the run's other_cores exceeds $MAX_OTHER.
disturbed() {
    tr -d '\n ' < "$1" | grep -o '"other_cores":[0-9.e+-]*' | head -1 \
        | awk -F: -v max="$MAX_OTHER" '{exit !($2 > max)}'
}

# One line from a result file, without jq.
summary() {
    tr -d '\n ' < "$1" | grep -o '"qps":[0-9.e+-]*\|"us_per_query":[0-9.e+-]*\|"p99":[0-9.e+-]*\|"lost":[0-9]*\|"wrong":[0-9]*\|"other_cores":[0-9.e+-]*' \
        | awk -F: '{v[$1]=$2} END {printf "%.0f q/s, %.3f µs/query, p99 %.0f µs, lost %d, wrong %d, other load %.2f cores", v["\"qps\""], v["\"us_per_query\""], v["\"p99\""], v["\"lost\""], v["\"wrong\""], v["\"other_cores\""]}'
}

# The servers' order in round R: SERVERS as listed in odd rounds, reversed in even ones. Within a
# round the servers take turns in slices (the order reversed every turn by bsf-bench
# interleave); this only decides who starts, so that no server always goes first after a pause.
round_order() { # round
    local i
    if (( $1 % 2 )); then
        echo "${SERVERS[@]}"
    else
        for (( i = ${#SERVERS[@]} - 1; i >= 0; i-- )); do echo "${SERVERS[i]}"; done
    fi
}

phase() { # scenario args...
    local sc="$1" r; shift
    for r in $(seq 1 "$ROUNDS"); do
        # shellcheck disable=SC2046 # round_order's words are the server keys
        run_round "$sc" "$r" "$RESULTS/$sc-{server}-r$r.json" $(round_order "$r") -- --tag "scenario=$sc" "$@"
    done
}

say "maximum rate: closed loop, $OUTSTANDING outstanding, $ROUNDS rounds"
phase max --outstanding "$OUTSTANDING"

say "fixed load: open loop at $FIXED_RATE q/s"
phase fixed --rate "$FIXED_RATE"

NSD_MAX="$("$BENCH" median --results "$RESULTS" --scenario max --server nsd --field qps)"
HALF=$(( NSD_MAX / 2 ))
say "latency at 50% of NSD's maximum: open loop at $HALF q/s"
phase half --rate "$HALF"

say "reload under load (main set, $MAIN_OPS operators)"
reload_probe() { # set port pid out tags...
    local set="$1" port="$2" pid="$3" out="$4" file name mcc mnc; shift 4
    file="$(ls "$WORK/$set" | sort | tail -1)"
    mcc="${file%%-*}"; mnc="${file#*-}"; mnc="${mnc%.toml}"
    name="bsf.mnc$mnc.mcc$mcc.lwm2m.org"
    client "$BENCH" reload --target "127.0.0.1:$port" --server-pid "$pid" --names "$WORK/$set.names" \
        --rate "$RELOAD_RATE" --change-at 2 --max-wait 60 --file "$WORK/$set/$file" --name "$name" --quiet \
        --json --out "$RESULTS/$out" "$@" > /dev/null
    printf '  %s: %s\n' "$out" "$(tr -d '\n ' < "$RESULTS/$out" | grep -o '"reload_ms":[0-9.nul]*' | head -1)" >&2
}
reload_probe main "${SPORT[bsf-dns]}" "${SPID[bsf-dns]}" reload-main.json --tag set=main --tag "operators=$MAIN_OPS"

if [ "$DO_DNSPERF" = 1 ]; then
    say "dnsperf, one round of $DNSPERF_SECONDS s per server (neutral second client)"
    client "$BENCH" queries --names "$WORK/main.names" --count 100000 --dnsperf --out "$WORK/dnsperf.txt"
    for s in "${SERVERS[@]}"; do
        [ "$s" = knot ] && pin_knot "${SPID[knot]}"
        "$BENCH" proc --pid "${SPID[$s]}" > "$RESULTS/dnsperf-$s.cpu-before.json"
        client dnsperf -s 127.0.0.1 -p "${SPORT[$s]}" -d "$WORK/dnsperf.txt" -l "$DNSPERF_SECONDS" \
            -c 4 -q "$OUTSTANDING" > "$RESULTS/dnsperf-$s.txt" 2>&1 || true
        "$BENCH" proc --pid "${SPID[$s]}" > "$RESULTS/dnsperf-$s.cpu-after.json"
        printf '  dnsperf %-8s %s\n' "$s" "$(grep 'Queries per second' "$RESULTS/dnsperf-$s.txt" | sed 's/^ *//')" >&2
    done
fi

if [ "$DO_THREADS" = 1 ]; then
    # Both cores are open to the servers; the load generator stays on core 0 and sleeps while
    # it waits, so a server thread on core 0 gets its share. bsf-dns and the floor, one thread
    # and two, take turns; at maximum load, and at a fixed rate that leaves room on the
    # client's core (the verdict's: at maximum load the client and the server thread beside it
    # starve each other, and per-core capacity falls for the floor as much as for bsf-dns).
    # 32 client ports, so that SO_REUSEPORT's hash splits them about evenly between threads.
    if [ -z "$THREADS_RATE" ]; then
        BSF_MAX="$("$BENCH" median --results "$RESULTS" --scenario max --server bsf-dns --field qps)"
        THREADS_RATE=$(( BSF_MAX / 2 ))
    fi
    say "one thread vs two on both cores (load generator on core $CLIENT_CORE): bsf-dns and the floor, at maximum load and at $THREADS_RATE q/s"
    both="$CLIENT_CORE,$SERVER_CORE"
    start_bsf main load-t1 1 "$both";  SPID[bsf-t1]=$PID;   SPORT[bsf-t1]=$PORT;   LENIENT[bsf-t1]=""
    start_bsf main load-t2 2 "$both";  SPID[bsf-t2]=$PID;   SPORT[bsf-t2]=$PORT;   LENIENT[bsf-t2]=""
    start_floor load-t1 1 "$both";     SPID[floor-t1]=$PID; SPORT[floor-t1]=$PORT; LENIENT[floor-t1]=",lenient"
    start_floor load-t2 2 "$both";     SPID[floor-t2]=$PID; SPORT[floor-t2]=$PORT; LENIENT[floor-t2]=",lenient"
    THREADED=(bsf-t1 bsf-t2 floor-t1 floor-t2)
    # threads_tags PREFIX: tag each run as its server, and as scenario PREFIX-t1 or PREFIX-t2.
    threads_tags() {
        local k
        for k in "${THREADED[@]}"; do
            case "$k" in bsf-*) EXTRA[$k]=",tag.server=bsf-dns" ;; *) EXTRA[$k]=",tag.server=floor" ;; esac
            EXTRA[$k]+=",tag.scenario=$1-${k##*-}"
        done
    }
    for r in $(seq 1 "$ROUNDS"); do
        # Listed order in odd rounds, reversed in even ones (see round_order).
        order=("${THREADED[@]}"); (( r % 2 )) || order=(floor-t2 floor-t1 bsf-t2 bsf-t1)
        threads_tags cores2
        run_round cores2 "$r" "$RESULTS/cores2-{server}-r$r.json" "${order[@]}" -- \
            --lanes 32 --outstanding "$OUTSTANDING" --no-busy-poll
        threads_tags cores2-rate
        run_round cores2-rate "$r" "$RESULTS/cores2-rate-{server}-r$r.json" "${order[@]}" -- \
            --lanes 32 --rate "$THREADS_RATE" --no-busy-poll
    done
    for k in "${THREADED[@]}"; do stop "${SPID[$k]}"; done
fi

for s in "${SERVERS[@]}"; do stop "${SPID[$s]}"; done

if [ "$DO_LARGE" = 1 ]; then
    say "large set: $LARGE operators (load time, memory, reload)"
    make_set large "$LARGE"
    LARGE_OPS="$(ls "$WORK/large" | wc -l)"
    start_bsf large load-large
    reload_probe large "$PORT" "$PID" reload-large.json --tag set=large --tag "operators=$LARGE_OPS"
    stop "$PID"
    start_nsd large load-large;  stop "$PID"
    start_knot large load-large; stop "$PID"
    for s in bsf-dns nsd knot; do
        printf '  %-8s ready after %s ms\n' "$s" \
            "$(grep -o '"ready_ms": [0-9.]*' "$RESULTS/load-large-$s.json" | awk '{printf "%.0f", $2}')" >&2
    done
fi

say "report"
"$BENCH" report --results "$RESULTS" --json-out "$RESULTS/summary.json" | tee "$RESULTS/report.md"
ln -sfn "$RESULTS" "$(dirname "$RESULTS")/latest" 2>/dev/null || true
echo >&2
echo "took $((SECONDS / 60)) min $((SECONDS % 60)) s" >&2
echo "results: $RESULTS (report.md, summary.json and one JSON file per run)" >&2
