#!/usr/bin/env bash
# Ampel's store density and ingest rate side by side with VictoriaMetrics, on exactly the same
# points, in one run (issue 14).
#
#   collector/benches/peers.sh [ingest|agent|both] [--devices N] [--no-ingest-rate]
#
# For each data set, `ampel-bench density` commits the points into a scratch store, folds and
# measures it, and writes the very same points as InfluxDB line protocol (one generator pass
# feeds both). VictoriaMetrics is then started on a loopback port chosen here with a scratch
# -storageDataPath, the file is POSTed to /write from 50 concurrent curl clients,
# /internal/force_flush is called, the data directory is left to settle (merges), and its size
# and the load rate are printed beside Ampel's figures with the ratios. For the ingest set the
# Ampel rate is `ampel-bench ingest --child` (QUIC + mutual TLS, acknowledged once durable) on
# the same points (its timestamps start from its own "now", the values and the 10 s steps are
# the same); for the agent set it is commit + fold inside the store, no network. The two rates
# are taken one after the other on a shared machine: compare them with the load average shown.
#
# Needs a release build: cargo build --release -p ampel-collector --bins
# Binaries: $AMPEL_BENCH, else $CARGO_TARGET_DIR/release/ampel-bench, else
# <repo>/target/release/ampel-bench; $VICTORIA_METRICS, else victoria-metrics on PATH (Debian:
# apt-get install victoria-metrics). Without VictoriaMetrics only Ampel's figures are printed.
# Scratch files go to $TMPDIR (a few GB for the agent set's line protocol); all removed on exit.

set -euo pipefail

sets=both
devices=3
ingest_rate=yes
while [ $# -gt 0 ]; do
    case "$1" in
        ingest | agent | both) sets=$1 ;;
        --devices) devices=${2:?--devices needs a number}; shift ;;
        --no-ingest-rate) ingest_rate=no ;;
        -h | --help) sed -n '2,/^$/p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "peers.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
[ "$sets" = both ] && sets="ingest agent"

repo=$(cd "$(dirname "$0")/../.." && pwd)
bench=${AMPEL_BENCH:-${CARGO_TARGET_DIR:-$repo/target}/release/ampel-bench}
if [ ! -x "$bench" ]; then
    echo "peers.sh: $bench not found: cargo build --release -p ampel-collector --bins (or set AMPEL_BENCH)" >&2
    exit 1
fi
vm=${VICTORIA_METRICS:-$(command -v victoria-metrics || true)}
if [ -z "$vm" ] || [ ! -x "$vm" ]; then
    vm=
    echo "peers.sh: VictoriaMetrics not found: install it (Debian/Ubuntu: apt-get install victoria-metrics)" \
        "or set VICTORIA_METRICS=/path/to/victoria-metrics. Printing Ampel's figures only." >&2
fi
command -v curl > /dev/null || { echo "peers.sh: curl is needed (apt-get install curl)" >&2; exit 1; }

scratch=$(mktemp -d "${TMPDIR:-/tmp}/ampel-peers.XXXXXX")
vm_pid=
cleanup() {
    if [ -n "$vm_pid" ]; then
        kill "$vm_pid" 2> /dev/null || true
        wait "$vm_pid" 2> /dev/null || true
    fi
    rm -rf "$scratch"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# `name value` of one `name: value unit` line of a bench output file.
figure() { awk -v n="$1:" '$1 == n { print $2; exit }' "$2"; }
line() { printf '%s: %s %s\n' "$1" "$2" "$3"; }
div() { awk -v a="$1" -v b="$2" -v f="${3:-%.3f}" 'BEGIN { if (b > 0) printf f, a / b; else print "n/a" }'; }
now() { date +%s.%N; }
# CPU seconds (user + system) a process has used: fields 14 and 15 of /proc/PID/stat, counted
# after the command name, which may hold spaces.
cpu_s() { sed 's/.*) //' "/proc/$1/stat" | awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($12 + $13) / hz }'; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }

# Starts VictoriaMetrics on a free loopback port with a scratch data directory; sets vm_pid,
# vm_url. A port taken between the check and the bind makes it exit: try another, 5 times.
start_vm() {
    local dir=$1 port
    for _ in 1 2 3 4 5; do
        port=$((20000 + RANDOM % 40000))
        if (exec 3<> "/dev/tcp/127.0.0.1/$port") 2> /dev/null; then continue; fi
        "$vm" -storageDataPath="$dir" -httpListenAddr="127.0.0.1:$port" -search.latencyOffset=0s \
            -search.disableCache -loggerLevel=WARN > "$dir.log" 2>&1 &
        vm_pid=$!
        vm_url="http://127.0.0.1:$port"
        local deadline=$((SECONDS + 30))
        while [ $SECONDS -lt $deadline ] && kill -0 "$vm_pid" 2> /dev/null; do
            if curl -sf --max-time 2 "$vm_url/health" > /dev/null; then return 0; fi
            sleep 0.2
        done
        kill "$vm_pid" 2> /dev/null || true
        wait "$vm_pid" 2> /dev/null || true
        vm_pid=
    done
    echo "peers.sh: VictoriaMetrics did not start (log: $(tail -5 "$dir.log" 2> /dev/null))" >&2
    return 1
}

stop_vm() {
    kill "$vm_pid" 2> /dev/null || true
    local deadline=$((SECONDS + 30))
    while kill -0 "$vm_pid" 2> /dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
    kill -9 "$vm_pid" 2> /dev/null || true
    wait "$vm_pid" 2> /dev/null || true
    vm_pid=
}

# Waits until the directory's size has not changed for 3 polls 2 s apart (background merges
# done), at most 120 s; prints the size in bytes.
settle() {
    local dir=$1 last=-1 same=0 size deadline=$((SECONDS + 120))
    while [ $SECONDS -lt $deadline ]; do
        size=$(du -sb "$dir" | cut -f1)
        if [ "$size" = "$last" ]; then same=$((same + 1)); else same=0; fi
        [ $same -ge 3 ] && break
        last=$size
        sleep 2
    done
    du -sb "$dir" | cut -f1
}

# Loads the line-protocol file into VictoriaMetrics and prints its figures beside Ampel's.
peer() {
    local set=$1 lp=$2 points=$3 ampel=$4
    local dir="$scratch/vm-$set"
    mkdir -p "$dir"
    start_vm "$dir" || return 1
    split -n l/50 -d -a 2 "$lp" "$scratch/part-$set-"
    rm -f "$lp"
    local started failed=0 cpu0
    started=$(now)
    cpu0=$(cpu_s "$vm_pid")
    printf '%s\0' "$scratch"/part-"$set"-* | xargs -0 -P 50 -I{} curl -sS --fail --max-time 600 -X POST -T {} \
        "$vm_url/write?precision=ms" || failed=1
    local took
    took=$(elapsed "$started")
    rm -f "$scratch"/part-"$set"-*
    [ $failed = 0 ] || echo "peers.sh: VictoriaMetrics refused some of the $set data (log: $dir.log)" >&2
    curl -sf --max-time 120 "$vm_url/internal/force_flush" > /dev/null
    local flushed stored size cpu
    flushed=$(elapsed "$started")
    cpu=$(awk -v a="$cpu0" -v b="$(cpu_s "$vm_pid")" 'BEGIN { printf "%.2f", b - a }')
    # Every point must be there (nothing outside the retention, nothing merged away).
    stored=$(curl -sf --max-time 120 "$vm_url/api/v1/query" --data-urlencode 'query=sum(count_over_time({__name__=~".+"}[30d]))' |
        sed -n 's/.*"value":\[[^,]*,"\([0-9.e+]*\)"\].*/\1/p')
    [ "${stored:-0}" = "$points" ] || echo "peers.sh: VictoriaMetrics holds ${stored:-?} of the $points $set points" >&2
    size=$(settle "$dir")
    local data index
    data=$(du -sb "$dir/data" 2> /dev/null | cut -f1)
    index=$(du -sb "$dir/indexdb" 2> /dev/null | cut -f1)
    stop_vm
    line "peers.$set.vm.points_stored" "${stored:-?}" "points (count_over_time after force_flush)"
    line "peers.$set.vm.bytes_per_point" "$(div "$size" "$points")" \
        "bytes (storage dir after force_flush and settling: $(div "$size" 1048576 %.1f) MiB; data $(div "${data:-0}" 1048576 %.1f), indexdb $(div "${index:-0}" 1048576 %.1f))"
    line "peers.$set.vm.points_per_s" "$(div "$points" "$took" %.0f)" "points/s (HTTP /write, 50 clients, until the last response; $(div "$points" "$flushed" %.0f) including force_flush)"
    line "peers.$set.vm.cpu" "$cpu" "CPU s of VictoriaMetrics from the first request to the end of force_flush ($(div "$cpu" "$(div "$points" 1000000 %.6f)" %.2f) s per million points)"
    line "peers.$set.ampel_vs_vm.bytes" "$(div "$ampel" "$(div "$size" "$points" %.6f)" %.1f)" "x (Ampel data.mdb bytes per point / VictoriaMetrics')"
    vm_rate=$(div "$points" "$took" %.0f)
}

line peers.load_average "$(cut -d' ' -f1 /proc/loadavg 2> /dev/null || echo '?')" "(1 min, at the start; $(nproc 2> /dev/null || echo '?') cores)"
for set in $sets; do
    echo "== $set set"
    out="$scratch/density-$set.txt"
    lp="$scratch/$set.lp"
    emit=()
    [ -n "$vm" ] && emit=(--emit-influx "$set" --out "$lp")
    "$bench" density --set "$set" --devices "$devices" --dir "$scratch" "${emit[@]}" | tee "$out"
    points=$(figure "density.$set.points" "$out")
    ampel=$(figure "density.$set.data_mdb" "$out")
    ampel_all=$(figure "density.$set.all" "$out")
    if [ -n "$vm" ]; then
        lines=$(figure "density.$set.influx_lines" "$out")
        [ "$lines" = "$points" ] || { echo "peers.sh: the file holds $lines points, the store $points" >&2; exit 1; }
    fi
    rate=$(figure "density.$set.store_wall" "$out")
    rate_what="points/s (commit + fold inside the store, no network)"
    if [ "$set" = ingest ] && [ "$ingest_rate" = yes ]; then
        if [ -x "$(dirname "$bench")/ampel-collector" ]; then
            "$bench" ingest --child --dir "$scratch" > "$scratch/ingest.txt"
            rate=$(figure ingest.throughput "$scratch/ingest.txt")
            collector_cpu=$(figure cpu.collector "$scratch/ingest.txt")
            rate_what="points/s (ampel-bench ingest --child: QUIC + mutual TLS, acknowledged once durable;"
            rate_what+=" collector CPU $collector_cpu s, $(div "$collector_cpu" "$(div "$points" 1000000 %.6f)" %.2f) s per million points)"
        else
            echo "peers.sh: no ampel-collector next to $bench: build with --bins for the QUIC ingest rate" >&2
        fi
    fi
    line "peers.$set.points" "$points" "points"
    line "peers.$set.ampel.bytes_per_point" "$ampel" "bytes (data.mdb after fold; pages of all databases: $ampel_all)"
    line "peers.$set.ampel.points_per_s" "$rate" "$rate_what"
    if [ -n "$vm" ]; then
        vm_rate=
        peer "$set" "$lp" "$points" "$ampel" || continue
        line "peers.$set.ampel_vs_vm.rate" "$(div "$rate" "$vm_rate" %.2f)" "x (Ampel points/s / VictoriaMetrics')"
    fi
done
