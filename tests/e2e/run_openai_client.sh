#!/bin/bash
# ctest driver: starts `ztslm serve` on a free port with a fresh state dir, installs the official
# `openai` npm package into BUILD_DIR/e2e-node (once), and runs openai_client.mjs against it.
# Exit 77 (skipped) when node/npm are missing or npm cannot reach its registry.
set -u
ZTSLM=$1; MODEL=$2; NODE_DIR=$3
HERE=$(cd "$(dirname "$0")" && pwd)
command -v node >/dev/null && command -v npm >/dev/null || { echo "SKIP: node/npm not installed"; exit 77; }
[ -f "$MODEL" ] || { echo "SKIP: model $MODEL not found (../shared missing)"; exit 77; }
if [ ! -d "$NODE_DIR/node_modules/openai" ]; then
  mkdir -p "$NODE_DIR"
  if ! npm install --prefix "$NODE_DIR" --no-audit --no-fund --silent openai@4 >"$NODE_DIR/npm.log" 2>&1; then
    echo "SKIP: npm install openai failed (no network?); see $NODE_DIR/npm.log"; exit 77
  fi
fi
STATE=$(mktemp -d)
trap 'kill $PID_SRV 2>/dev/null; wait $PID_SRV 2>/dev/null; rm -rf "$STATE"' EXIT
PID_SRV=""
# The gateway serves only signed models: sign a copy with a fresh publisher key and trust that key.
mkdir -p "$STATE/model"
SIGNED="$STATE/model/$(basename "$MODEL")"
cp "$MODEL" "$SIGNED"
openssl ecparam -name prime256v1 -genkey -noout 2>/dev/null | openssl pkcs8 -topk8 -nocrypt -out "$STATE/model/key.pem" &&
  openssl pkey -in "$STATE/model/key.pem" -pubout -out "$STATE/model/key.pub.pem" &&
  "$ZTSLM" model sign --key "$STATE/model/key.pem" "$SIGNED" >/dev/null || { echo "FAIL: cannot sign the model"; exit 1; }
cat >"$STATE/ztslm.yaml" <<EOF
listen: {port: 0}
state_dir: $STATE
model: {path: $SIGNED}
trust:
  publishers: [{name: e2e, public_key_file: $STATE/model/key.pub.pem}]
EOF
coproc SRV { exec "$ZTSLM" serve --config "$STATE/ztslm.yaml" 2>&1; }
PID_SRV=$SRV_PID
KEY=""; PORT=""
while IFS= read -r -t 60 line <&"${SRV[0]}"; do
  case "$line" in
    "admin API key"*) KEY=${line##* } ;;
    "ztslm serve: https://"*) PORT=$(echo "$line" | sed -E 's#.*https://[^:]+:([0-9]+)/.*#\1#'); break ;;
    *) echo "$line" ;;
  esac
done
[ -n "$KEY" ] && [ -n "$PORT" ] || { echo "FAIL: server did not start"; exit 1; }
MODEL_ID=$(basename "$MODEL" .gguf)
# ES modules resolve packages next to the script: run a copy inside NODE_DIR.
cp "$HERE/openai_client.mjs" "$NODE_DIR/openai_client.mjs"
NODE_EXTRA_CA_CERTS="$STATE/tls/ca.pem" node "$NODE_DIR/openai_client.mjs" "https://localhost:$PORT/v1" "$KEY" "$MODEL_ID"
RC=$?
kill -TERM $PID_SRV; wait $PID_SRV; SRV_RC=$?; PID_SRV=""
[ $SRV_RC -eq 0 ] || { echo "FAIL: server exit $SRV_RC after SIGTERM"; exit 1; }
exit $RC
