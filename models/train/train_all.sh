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

QUANT=() T2I_QUANT=()   # the quantizers' own defaults, but in the smoke run
if [ "$SMOKE" = 1 ]; then
  T2I_QUANT=(--calibration 2 --check 2 --steps 4 --max-error 100)   # a 20-step UNet predicts noise: mechanics only
  T2I=(--max-steps 20 --limit 256 --vae-batch 8 --batch 8 --grid 0 --log-seconds 5)
  DEC=(--max-steps 5 --limit 256 --batch 8 --log-seconds 5)
  CAP=(--max-steps 20 --batch-size 8 --eval-every 10)
  CAP2=(--max-steps 20 --batch-size 8 --eval-every 10)
  QUANT=(--calibration 16 --check 8 --max-changed 1)   # a 20-step captioner's words are noise: check the mechanics only
  REC=(--max-steps 20 --batch-size 8 --target 0)
elif [ "$DEVICE" = cuda ]; then
  T2I=(--device cuda --batch 256 --vae-batch 128 --lr 8e-4 --vae-minutes 2 --unet-minutes 5 --ckpt-minutes 1)
  DEC=(--device cuda --batch 128 --lr 6e-4 --minutes 2 --ckpt-minutes 1)
  CAP=(--device cuda --threads 4 --batch-size 128 --lr 3e-3 --minutes 6 --eval-every 200)
  CAP2=(--device cuda --threads 4 --batch-size 128 --lr 3e-3 --dropout 0.1 --minutes 3 --eval-every 200)
  REC=(--threads 6 --minutes 30)    # CPU minutes: about 5 minutes on six of the GPU machine's cores
else
  T2I=(--threads 1 --vae-minutes 30 --unet-minutes 95)
  DEC=(--threads 1 --minutes 25)
  CAP=(--threads 1 --minutes 70 --eval-every 250)
  CAP2=(--threads 1 --minutes 40 --lr 3e-3 --dropout 0.1 --eval-every 250)
  REC=(--threads 1 --minutes 30)
fi

# The captioner trains in two stages. Stage 1: the factorized encoder (shapes from a colour-blind ink map, colours per
# pixel) under the plain CNN-LSTM. Stage 2: that encoder frozen, an attention decoder in which only the colour
# features choose among the colour words, and no shape word reads a colour, so colour-shape pairs held out of
# training are described like the seen ones. It attends over an 8x8 grid of cells, each with the colour of its own
# 8x8 pixels (--fine-grid), so two objects close together keep their colours apart. It decodes with a beam of 8
# (models/EVAL.md, "Two stages" and "A finer grid").
COLOURS=(red green blue yellow purple orange) SHAPES=(circle square triangle heart star diamond)
caption_stages() {
  python3 models/train/caption_train.py --data "$DATA" --out "$RUNS/captioner-encoder" --factorized \
    --shared-input-words "${COLOURS[@]}" "${CAP[@]}" > "$RUNS/captioner.log" 2>&1 &&
  python3 models/train/caption_train.py --data "$DATA" --out "$RUNS/captioner" --cache "$RUNS/captioner-encoder" \
    --factorized --attention --split-proj --fine-grid --colour-words "${COLOURS[@]}" --colour-blind-words "${SHAPES[@]}" \
    --shared-input-words "${COLOURS[@]}" \
    --encoder-from "$RUNS/captioner-encoder/best.pt" --freeze-encoder --beam-size 8 "${CAP2[@]}" --export "$EXPORT/captioner" \
    >> "$RUNS/captioner.log" 2>&1
}

echo "== $(date -u +%T) training on $DEVICE: logs in $RUNS/{t2i,captioner,recognizer}.log"
python3 models/train/train_t2i.py --data "$DATA" --out "$RUNS/t2i" "${T2I[@]}" > "$RUNS/t2i.log" 2>&1 &
T2I_PID=$!
# The captioner and then the recognizer share the second core on CPU; on a GPU machine they run side by side.
if [ "$DEVICE" = cuda ]; then
  ( caption_stages
    python3 models/train/caption_quantize.py --captioner "$EXPORT/captioner" --data "$DATA" "${QUANT[@]}" >> "$RUNS/captioner.log" 2>&1 ) &
  CAP_PID=$!
  python3 models/train/recognizer.py --data "$DATA" --out "$RUNS/recognizer" "${REC[@]}" --extra "$JUDGE" --export "$EXPORT/recognizer" > "$RUNS/recognizer.log" 2>&1 &
  REC_PID=$!
else
  ( caption_stages
    python3 models/train/caption_quantize.py --captioner "$EXPORT/captioner" --data "$DATA" "${QUANT[@]}" >> "$RUNS/captioner.log" 2>&1
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
wait "$CAP_PID" || { echo "captioner training failed: see $RUNS/captioner.log" >&2; status=1; }
if [ -n "${REC_PID:-}" ]; then wait "$REC_PID" || { echo "recognizer training failed: see $RUNS/recognizer.log" >&2; status=1; }; fi
echo "== $(date -u +%T) done (status $status); exported into $EXPORT"
du -sh "$EXPORT"/* 2>/dev/null || true
exit $status
