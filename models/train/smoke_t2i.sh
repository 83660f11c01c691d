#!/usr/bin/env bash
# Smoke test of the text-to-image recipe at toy size (about 1-2 minutes on one CPU core):
# train both stages for a few steps on a small world, kill -9 a run mid-way and resume it, export to the diffusers
# ONNX layout (the exporter reloads every graph and checks it against PyTorch), then time the reference sampler.
#   models/train/smoke_t2i.sh [DATA_DIR]     (default data/world-small; any Flickr8k-format folder works)
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA=${1:-data/world-small}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
TINY=(--limit 64 --vae-channels 8 16 16 --unet-channels 16 32 --text-width 32 --text-layers 1
      --vae-batch 4 --batch 4 --grid 0 --log-seconds 1 --ckpt-minutes 0.02)

echo "== train (interrupted by kill -9 once checkpoints exist)"
python3 models/train/train_t2i.py --data "$DATA" --out "$OUT/run" --max-steps 400 "${TINY[@]}" > "$OUT/first.log" 2>&1 &
PID=$!
for _ in $(seq 1 240); do [ -f "$OUT/run/vae.pt" ] && break; sleep 0.5; done
sleep 1
kill -9 "$PID" 2>/dev/null || true
wait "$PID" 2>/dev/null || true
[ -f "$OUT/run/vae.pt" ] || { echo "FAIL: no checkpoint before the kill"; cat "$OUT/first.log"; exit 1; }

echo "== resume with the same data and out folder"
python3 models/train/train_t2i.py --data "$DATA" --out "$OUT/run" --max-steps 30 "${TINY[@]}" 2>&1 \
  | grep -v NNPACK | tee "$OUT/second.log" | grep -E 'resuming|done|skipping|tokenizer'
grep -q 'resuming' "$OUT/second.log" || { echo "FAIL: the second run did not resume"; exit 1; }

echo "== export and reload"
python3 models/train/export_t2i.py --ckpt "$OUT/run/t2i.pt" --out "$OUT/export" 2>&1 | grep -v NNPACK
for f in model_index.json scheduler/scheduler_config.json tokenizer/vocab.json tokenizer/merges.txt \
         text_encoder/model.onnx unet/model.onnx vae_decoder/model.onnx vae_encoder/model.onnx vae_decoder/config.json; do
  [ -f "$OUT/export/$f" ] || { echo "FAIL: $f missing"; exit 1; }
done

echo "== decoder fine-tune (encoder frozen), export"
python3 models/train/vae_decoder_ft.py --ckpt "$OUT/run/t2i.pt" --data "$DATA" --out "$OUT/dec" --limit 64 --batch 4 \
  --max-steps 5 --log-seconds 0 2>&1 | grep -v NNPACK | tail -n 2
python3 - "$OUT/run/t2i.pt" "$OUT/dec/t2i.pt" <<'PY'
import sys, torch
a, b = (torch.load(p, map_location='cpu', weights_only=False)['vae'] for p in sys.argv[1:3])
enc = [k for k in a if k.startswith(('encoder.', 'quant_conv.'))]
dec = [k for k in a if k.startswith(('decoder.', 'post_quant_conv.')) and a[k].is_floating_point()]
assert enc and all(torch.equal(a[k], b[k]) for k in enc), 'the encoder changed'
assert any(not torch.equal(a[k], b[k]) for k in dec), 'the decoder did not change'
print(f'decoder fine-tune: {len(enc)} encoder tensors unchanged, decoder changed')
PY
python3 models/train/export_t2i.py --ckpt "$OUT/dec/t2i.pt" --out "$OUT/export-dec" 2>&1 | grep -v NNPACK | tail -n 1

echo "== reference sampler"
python3 models/train/sample_ddim.py --ckpt "$OUT/run/t2i.pt" --prompt "a big red circle" --steps 4 --guidance 7.5 \
  --seed 1 --repeat 2 --json 2>&1 | grep -v NNPACK
echo "smoke_t2i: OK"
