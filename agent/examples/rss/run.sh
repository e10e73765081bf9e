#!/bin/bash
# Resident memory of the real agent with every source on, against the stub collector (QUIC,
# mutual TLS, 1 s interval) while a writer appends a busy appliance's EVE, ClamAV and mail lines
# every second. Prints VmRSS (now) and VmHWM (peak) after SECS seconds; keeps the run directory
# (agent.log, smaps) for a closer look. See BENCHMARKS.md, "Agent".
#
#   cargo build -p ampel-agent --profile agent-release --bin ampel-agent --example stub_collector
#   agent/examples/rss/run.sh [BIN] [SECS]
set -u
WT=$(cd "$(dirname "$0")/../../.." && pwd)
BIN=$(realpath "${1:-$WT/target/agent-release/ampel-agent}")
SECS=${2:-60}
D=$(mktemp -d /tmp/ampel-rss.XXXX)
PORT=$((20000 + RANDOM % 20000))
$WT/target/agent-release/examples/stub_collector $D 127.0.0.1:$PORT > $D/collector.log 2>&1 &
CPID=$!
for i in $(seq 50); do [ -f $D/agent.toml ] && break; sleep 0.1; done
: > $D/eve.json; : > $D/clamav.log; : > $D/mail.log
cp $WT/agent/tests/fixtures/mail/generated-rspamd-3.4-history.json $D/rspamd.json
cp $WT/agent/tests/fixtures/netfilter/generated-nft-1.0.6-j-list-counters.json $D/nft.json
printf 'product = "Ampel UTM"\nmodel = "RC100"\nserial = "X1"\nlicensed = true\nexpiry = "2030-01-01"\n[features]\nids = "2030-01-01"\n' > $D/license.toml
cat >> $D/agent.toml <<EOT
[sources.license]
enabled = true
path = "$D/license.toml"
[sources.eve]
enabled = true
path = "$D/eve.json"
[sources.clamav]
enabled = true
path = "$D/clamav.log"
[sources.mail]
enabled = true
log = "$D/mail.log"
rspamd-history = "$D/rspamd.json"
[sources.netdev]
enabled = true
[sources.nft]
enabled = true
path = "$D/nft.json"
[sources.agent]
enabled = true
EOT
python3 "$(dirname "$0")/writer.py" $WT $D $SECS &
WPID=$!
(cd $D && RUST_LOG=${RUST_LOG:-info} taskset -c 0 $BIN run --config $D/agent.toml > $D/agent.log 2>&1) &
sleep 1
APID=$(pgrep -P $! -f "ampel-agent run" | head -1)
[ -z "$APID" ] && APID=$(pgrep -f "$D/agent.toml" | head -1)
echo "dir=$D agent_pid=$APID"
sleep $SECS
grep -E 'VmRSS|VmHWM|RssAnon|RssFile|RssShmem|Threads' /proc/$APID/status
cp /proc/$APID/smaps_rollup $D/smaps_rollup 2>/dev/null
cat /proc/$APID/smaps > $D/smaps 2>/dev/null
echo "batches acked: $(grep -c batch $D/collector.log)"
kill $APID; sleep 1; kill $CPID $WPID 2>/dev/null
wait 2>/dev/null
tail -3 $D/agent.log
