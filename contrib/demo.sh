#!/usr/bin/env bash
# `make demo`: the whole flow on this machine, no account needed. A sandbox server on
# loopback, a sample tree of real FITS/XISF files, a real sync, and a second run that
# sends nothing again. Everything lives in ./demo (deleted at the start of each demo).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
DEMO="$PWD/demo"
rm -rf "$DEMO"
mkdir -p "$DEMO"
export OORT_SYNC_HOME="$DEMO/home"

echo "== 1. Sample data: real FITS and XISF files in $DEMO/data"
$BIN/python -c "from oort_lib.samples import make_sample_tree; make_sample_tree('$DEMO/data')"
find "$DEMO/data" -type f | sed "s|$DEMO/data/|   |" | sort

echo "== 2. The sandbox server (an Arcsecond-compatible server on loopback, speaking"
echo "   today's API, the 2026 generation; \`--dialect=2021\` serves the Oort docs' one too)"
$BIN/oort-sync sandbox --port=0 --data="$DEMO/sandbox" --dialect=2026 >"$DEMO/sandbox.out" 2>&1 &
SANDBOX=$!
trap 'kill $SANDBOX 2>/dev/null || true' EXIT
URL=""
for _ in $(seq 1 100); do
  URL=$(sed -n 's|^Sandbox serving \(http://[^ ]*\)/ .*|\1|p' "$DEMO/sandbox.out" | head -1)
  [ -n "$URL" ] && break
  sleep 0.1
done
[ -n "$URL" ] || { cat "$DEMO/sandbox.out"; echo "the sandbox did not start"; exit 1; }
sed 's/^/   /' "$DEMO/sandbox.out"
KEY=$(sed -n 's/^upload key: *//Ip' "$DEMO/sandbox.out" | head -1)
USER_NAME=$(sed -n 's/^username: *//p' "$DEMO/sandbox.out" | head -1)
TELESCOPE=$(sed -n 's/^personal telescope: .* \([0-9a-f-]\{36\}\).*/\1/p' "$DEMO/sandbox.out" | head -1)

echo "== 3. oort-sync login --username=$USER_NAME --key-stdin (the sandbox's test key)"
echo "$KEY" | $BIN/oort-sync login --api="$URL" --username="$USER_NAME" --key-stdin

echo "== 4. oort-sync telescopes (today's Arcsecond attaches every dataset to one)"
$BIN/oort-sync telescopes

echo "== 5. oort-sync watch $DEMO/data -t $TELESCOPE -y"
$BIN/oort-sync watch "$DEMO/data" -t "$TELESCOPE" -y

echo "== 6. oort-sync run --dry-run --min-age=0 (the plan)"
$BIN/oort-sync run --dry-run --min-age=0

echo "== 7. oort-sync run --min-age=0 -v (the real sync: one dataset per folder, one POST per file;"
echo "   the server builds the night logs, observations and calibrations itself)"
$BIN/oort-sync run --min-age=0 -v || true

echo "== 8. oort-sync run --min-age=0 -v again: nothing is sent twice"
$BIN/oort-sync run --min-age=0 -v || true

echo "== 9. oort-sync status"
$BIN/oort-sync status

echo "== 10. oort-sync nights (what did we get last night?)"
$BIN/oort-sync nights

echo "== 11. oort-sync doctor (is everything set up right? Here no schedule is installed,"
echo "   a warning, and the sandbox's telescope has no site, a problem: each with its fix)"
$BIN/oort-sync doctor || true

cat <<MSG

Done. To look at the result:
  OORT_SYNC_HOME=$DEMO/home .venv/bin/oort-sync status
  .venv/bin/oort-sync sandbox --data=$DEMO/sandbox   then open the page it prints
  (its page shows the night logs the server built from the files)
The demo sandbox ($URL) stops now.
MSG
