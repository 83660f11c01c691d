#!/usr/bin/env bash
# Re-train every shipped model from scratch — text-to-image, captioner, recognizer — and export them.
#
#   nohup models/train/train_all.sh > runs/train_all.log 2>&1 &      # CPU recipe: about 2.5 hours on 2 cores
#   models/train/train_all.sh --device cuda                          # one GPU: about 9 minutes
#   models/train/train_all.sh --smoke                                # a few steps of each, to check the recipe
#
# Options: --data DIR (a Flickr8k-format world; drawn with `npm run world` when missing), --runs DIR (checkpoints
# and logs), --export DIR (default models/builtin). Every trainer checkpoints atomically and resumes: after a
# kill -9, run the same command again. Progress: tail -f RUNS/*.log
set -euo pipefail
cd "$(dirname "$0")/../.."

DEVICE=cpu DATA=data/world RUNS=runs/all EXPORT=models/builtin SMOKE=0
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE=$2; shift 2 ;;
    --data) DATA=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --export) EXPORT=$2; shift 2 ;;
    --smoke) SMOKE=1; shift ;;
    *) echo "train_all.sh: unknown option '$1' (expected --device cpu|cuda, --data DIR, --runs DIR, --export DIR, --smoke)" >&2; exit 2 ;;
  esac
done
case "$DEVICE" in cpu|cuda) ;; *) echo "train_all.sh: --device must be cpu or cuda, got '$DEVICE'" >&2; exit 2 ;; esac
export PYTHONUNBUFFERED=1
mkdir -p "$RUNS" "$EXPORT"

if [ ! -f "$DATA/captions.txt" ]; then
  echo "== drawing the world into $DATA"
  if [ "$SMOKE" = 1 ]; then npm run -s world -- --out "$DATA" --count 300 --seed 1; else npm run -s world -- --out "$DATA" --count 30000 --seed 1; fi
fi

# The recognizer is a judge: it also learns, as drawn pictures, the combinations held out of the other models'
# training (the compositional split of a world drawn at another seed). No evaluation seed draws with seed 2.
JUDGE="${DATA%/}-judge"
if [ ! -f "$JUDGE/captions.txt" ]; then
  echo "== drawing the judge's compositional pictures into $JUDGE"
  if [ "$SMOKE" = 1 ]; then JUDGE_COUNT=60; else JUDGE_COUNT=8000; fi
  npm run -s world -- --out "$JUDGE" --count "$JUDGE_COUNT" --seed 2 --split compositional
fi

# Each step's flags come from named recipe files (models/train/recipes/README.md): STEP.args for every run, then
# MODE/STEP.args for this hardware and budget (cpu, cuda, or smoke).
RECIPES=models/train/recipes
if [ "$SMOKE" = 1 ]; then MODE=smoke; else MODE=$DEVICE; fi
recipe() {
  local file
  for file in "$RECIPES/$1.args" "$RECIPES/$MODE/$1.args"; do
    if [ -f "$file" ]; then sed -e 's/#.*//' "$file" | tr -s ' \t' '\n\n' | grep -v '^$' || true; fi
  done
}
mapfile -t T2I < <(recipe t2i)
mapfile -t DEC < <(recipe t2i-decoder)
mapfile -t T2I_QUANT < <(recipe t2i-quantize)
mapfile -t CAP < <(recipe captioner-encoder)
mapfile -t CAP2 < <(recipe captioner)
mapfile -t QUANT < <(recipe captioner-quantize)
mapfile -t DOMAIN < <(recipe captioner-domain)
mapfile -t REC < <(recipe recognizer)

# The captioner trains in two stages (recipes/captioner-encoder.args, recipes/captioner.args; models/EVAL.md, "Two
# stages" and "A finer grid"). Stage 1: the factorized encoder (shapes from a colour-blind ink map, colours per
# pixel) under the plain CNN-LSTM. Stage 2: that encoder frozen, an attention decoder in which only the colour
# features choose among the colour words, and no shape word reads a colour, so colour-shape pairs held out of
# training are described like the seen ones, over an 8x8 grid of cells, decoding with a beam of 8.
caption_stages() {
  python3 models/train/train_caption.py --data "$DATA" --out "$RUNS/captioner-encoder" "${CAP[@]}" > "$RUNS/captioner.log" 2>&1 &&
  python3 models/train/train_caption.py --data "$DATA" --out "$RUNS/captioner" --cache "$RUNS/captioner-encoder" \
    --encoder-from "$RUNS/captioner-encoder/best.pt" "${CAP2[@]}" --export "$EXPORT/captioner" >> "$RUNS/captioner.log" 2>&1
}

# The out-of-domain check's statistics belong to one encoder graph (domain.json names its sha256, and a folder whose
# encoder changed fails at load): calibrate them again for the encoder just trained and quantized.
caption_domain() {
  npx tsx models/train/calibrate_domain.ts --captioner "$EXPORT/captioner" "${DOMAIN[@]}" --write >> "$RUNS/captioner.log" 2>&1
}

echo "== $(date -u +%T) training on $DEVICE: logs in $RUNS/{t2i,captioner,recognizer}.log"
python3 models/train/train_t2i.py --data "$DATA" --out "$RUNS/t2i" "${T2I[@]}" > "$RUNS/t2i.log" 2>&1 &
T2I_PID=$!
# The captioner and then the recognizer share the second core on CPU; on a GPU machine they run side by side.
if [ "$DEVICE" = cuda ]; then
  ( caption_stages
    python3 models/train/caption_quantize.py --captioner "$EXPORT/captioner" --data "$DATA" "${QUANT[@]}" >> "$RUNS/captioner.log" 2>&1
    caption_domain ) &
  CAP_PID=$!
  python3 models/train/recognizer.py --data "$DATA" --out "$RUNS/recognizer" "${REC[@]}" --extra "$JUDGE" --export "$EXPORT/recognizer" > "$RUNS/recognizer.log" 2>&1 &
  REC_PID=$!
else
  ( caption_stages
    python3 models/train/caption_quantize.py --captioner "$EXPORT/captioner" --data "$DATA" "${QUANT[@]}" >> "$RUNS/captioner.log" 2>&1
    caption_domain
    python3 models/train/recognizer.py --data "$DATA" --out "$RUNS/recognizer" --cache "$RUNS/captioner-encoder" "${REC[@]}" --extra "$JUDGE" --export "$EXPORT/recognizer" > "$RUNS/recognizer.log" 2>&1 ) &
  CAP_PID=$! REC_PID=
fi

status=0
wait "$T2I_PID" || { echo "text-to-image training failed: see $RUNS/t2i.log" >&2; status=1; }
# then the VAE decoder alone, its encoder (the UNet's latent space) frozen: the decoder of stage 1 blurs small objects
if [ $status = 0 ]; then
  python3 models/train/vae_decoder_ft.py --ckpt "$RUNS/t2i/t2i.pt" --data "$DATA" --out "$RUNS/t2i-decoder" "${DEC[@]}" > "$RUNS/t2i-decoder.log" 2>&1 \
    || { echo "decoder fine-tune failed: see $RUNS/t2i-decoder.log" >&2; status=1; }
fi
if [ $status = 0 ]; then
  python3 models/train/export_t2i.py --ckpt "$RUNS/t2i-decoder/t2i.pt" --out "$EXPORT/text-to-image" > "$RUNS/t2i-export.log" 2>&1 \
    || { echo "text-to-image export failed: see $RUNS/t2i-export.log" >&2; status=1; }
fi
if [ $status = 0 ]; then
  python3 models/train/t2i_quantize.py --model "$EXPORT/text-to-image" --data "$DATA" "${T2I_QUANT[@]}" >> "$RUNS/t2i-export.log" 2>&1 \
    || { echo "text-to-image quantization failed: see $RUNS/t2i-export.log" >&2; status=1; }
fi
if [ $status = 0 ]; then
  # the UNet's layers before the first cross-attention once per latent, not once per guidance half (same numbers)
  python3 models/train/t2i_share_latents.py --model "$EXPORT/text-to-image" >> "$RUNS/t2i-export.log" 2>&1 \
    || { echo "text-to-image latent sharing failed: see $RUNS/t2i-export.log" >&2; status=1; }
fi
wait "$CAP_PID" || { echo "captioner training failed: see $RUNS/captioner.log" >&2; status=1; }
if [ -n "${REC_PID:-}" ]; then wait "$REC_PID" || { echo "recognizer training failed: see $RUNS/recognizer.log" >&2; status=1; }; fi
echo "== $(date -u +%T) done (status $status); exported into $EXPORT"
du -sh "$EXPORT"/* 2>/dev/null || true
exit $status
