#!/usr/bin/env bash
# Rebuilds models/demo/ from scratch: dataset → vocabulary + training (LibTorch) → F32 GGUF →
# Q8_0 (ztslm model quantize) → signature bundle (ztslm model sign). Needs build/trainer built
# with -DZTSLM_BUILD_TRAINER=ON (see README.md) and DEMO_KEY, a P-256 private key kept outside
# the repository (jq writes the release section of the manifest). Training is niced, uses two threads and stops within MAX_SECONDS.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${DEMO_KEY:?set DEMO_KEY to the demo publisher private key (PEM, outside the repository)}"
BUILD="${BUILD:-build/trainer}"
WORK="${WORK:-$(mktemp -d /tmp/ztslm-demo-XXXXXX)}"
SEED="${SEED:-7}"
COUNT="${COUNT:-60000}"
MAX_SECONDS="${MAX_SECONDS:-2160}"
TRAIN="$BUILD/tools/demo-model/ztslm-demo-train"
ZTSLM="$BUILD/src/ztslm"
OUT=models/demo

"$TRAIN" data --seed "$SEED" --count "$COUNT" -o "$WORK/data.jsonl"
# Debian's libtorch links the reference BLAS by default; OpenBLAS (libopenblas0-pthread) is ~10x
# faster. Use it for this process only, without switching the system's libblas alternative.
OPENBLAS_DIR=/usr/lib/x86_64-linux-gnu/openblas-pthread
if [[ -e "$OPENBLAS_DIR/libblas.so.3" ]]; then
  export LD_LIBRARY_PATH="$OPENBLAS_DIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
# One BLAS thread and passive OpenMP waits: on a loaded machine spinning threads waste most of
# the CPU the trainer gets.
export OPENBLAS_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
nice -n "${NICE:-15}" "$TRAIN" train --data "$WORK/data.jsonl" --data-seed "$SEED" --seed "$SEED" \
  --vocab 2048 --embd 128 --layers 4 --heads 4 --heads-kv 2 --ff 384 --ctx 512 \
  --batch 8 --lr 3e-3 --warmup 30 --steps 8000 --max-seconds "$MAX_SECONDS" --threads 2 \
  -o "$WORK/demo-F32.gguf" --manifest "$WORK/manifest.json" --loss "$WORK/loss.tsv" \
  --plot "$WORK/loss.svg"
mkdir -p "$OUT"
"$ZTSLM" model quantize "$WORK/demo-F32.gguf" "$OUT/ztslm-demo-Q8_0.gguf" --type Q8_0
sha=$(sha256sum "$OUT/ztslm-demo-Q8_0.gguf" | cut -d' ' -f1)
bytes=$(stat -c %s "$OUT/ztslm-demo-Q8_0.gguf")
f32sha=$(sha256sum "$WORK/demo-F32.gguf" | cut -d' ' -f1)
jq --arg sha "$sha" --argjson bytes "$bytes" --arg f32 "$f32sha" \
  '. + {release: {file: "ztslm-demo-Q8_0.gguf", type: "Q8_0", quantizer: "ztslm model quantize --type Q8_0",
                   sha256: $sha, bytes: $bytes, f32_sha256: $f32,
                   signature: "ztslm-demo-Q8_0.gguf.sig", public_key: "demo-publisher.pub.pem"}}' \
  "$WORK/manifest.json" > "$OUT/manifest.json"
cp "$WORK/loss.svg" docs/demo-model-loss.svg
openssl ec -in "$DEMO_KEY" -pubout -out "$OUT/demo-publisher.pub.pem" 2>/dev/null
"$ZTSLM" model sign --key "$DEMO_KEY" "$OUT/ztslm-demo-Q8_0.gguf"
"$ZTSLM" model verify --key "$OUT/demo-publisher.pub.pem" "$OUT/ztslm-demo-Q8_0.gguf"
echo "work files (dataset, F32 model, loss.tsv) are in $WORK"
