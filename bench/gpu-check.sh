#!/usr/bin/env bash
# The GPU check (../shared/DEVICE.md): on a machine with an NVIDIA GPU and files built beforehand (dist/, the CPU
# addon, the CUDA addon, .device/ with Node.js), no network and no npm:
#   0. the device (else one line "no CUDA device: …" and exit 1), the driver, Node.js;
#   1. the built files;
#   2. kernel conformance: node dist/cli.js check cuda;
#   2b. the runtime: node test/gpu/runtime.mjs (allocator, out of memory, kernel failures, TF32, GC);
#   2d. NCCL: node test/gpu/nccl.mjs (a communicator of one rank, queued all-reduces);
#   2c. autograd: node bench/gpu-autograd-check.mjs (operations, gradients and models against PyTorch's values);
#   3. training: node bench/gpu-train-check.mjs (accuracy, memory per epoch, cuda vs cpu steps);
#   4. benchmark: node bench/gpu.mjs against PyTorch on the same card;
#   4b. the application examples' steps (GAN, VAE, translator, decoding): node bench/apps.mjs --backend cuda;
#   5. a summary LAST: each step's result and time, then the benchmark table.
# Every step runs under `timeout` (about 7 minutes in all) and a failing step does not stop the next.
# Everything is also written to OUTDIR/gpu-check.log; the benchmark writes OUTDIR/gpu-<card>.json and gpu-table.txt.
#   bash bench/gpu-check.sh [OUTDIR]        (OUTDIR: $1, else $OUT, else bench/results/gpu-run)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD
OUTDIR="${1:-${OUT:-bench/results/gpu-run}}"
CUDA_ADDON="${CUDA_ADDON:-build-cuda/Release/retrograd_cuda.node}"
mkdir -p "$OUTDIR" || { echo "gpu-check: cannot create $OUTDIR"; exit 1; }
OUTDIR=$(cd "$OUTDIR" && pwd)
LOG="$OUTDIR/gpu-check.log"
exec > >(tee "$LOG") 2>&1
TEE_PID=$!
# wait for tee so that the log and the terminal hold everything before the script returns
trap 'exec 1>&- 2>&-; wait "$TEE_PID" 2>/dev/null' EXIT
START=$SECONDS
rm -f "$OUTDIR/gpu-table.txt"

NAMES=() RESULTS=() TIMES=()
record() { NAMES+=("$1"); RESULTS+=("$2"); TIMES+=("$3"); }
# run_step NAME LIMIT_SECONDS COMMAND...: runs it under timeout, records PASS / FAIL (exit N) / TIMEOUT and its time.
run_step() {
  local name=$1 limit=$2 t0=$SECONDS rc result
  shift 2
  echo
  echo "== $name (limit ${limit}s): $*"
  timeout -k 10 "$limit" "$@"
  rc=$?
  case $rc in
    0) result=PASS ;;
    124 | 137) result="TIMEOUT (${limit}s)" ;;
    *) result="FAIL (exit $rc)" ;;
  esac
  echo "== $name: $result in $((SECONDS - t0))s"
  record "$name" "$result" "$((SECONDS - t0))"
}

# ---- 0. the device, the driver, Node.js ----
echo "== gpu-check $(date -u +%Y-%m-%dT%H:%M:%SZ) in $ROOT, output in $OUTDIR"
if ! command -v nvidia-smi >/dev/null 2>&1; then
  echo "no CUDA device: nvidia-smi not found"
  exit 1
fi
gpus=$(timeout 30 nvidia-smi -L 2>&1)
rc=$?
if [ $rc -ne 0 ]; then
  echo "no CUDA device: nvidia-smi -L failed (exit $rc): $(head -n 1 <<<"$gpus")"
  exit 1
fi
if ! grep -q '^GPU ' <<<"$gpus"; then
  echo "no CUDA device: nvidia-smi -L lists no GPU${gpus:+ ($(head -n 1 <<<"$gpus"))}"
  exit 1
fi
echo "$gpus"
nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used,clocks.max.sm,power.limit,temperature.gpu,utilization.gpu --format=csv
command -v nvcc >/dev/null 2>&1 && nvcc --version | tail -n 2
# Node.js travels in .device/ (../shared/device/pack-node.sh); its env.sh unpacks it and puts it first on the PATH
if [ -f .device/env.sh ]; then
  # shellcheck disable=SC1091
  . .device/env.sh >/dev/null
fi
# the runtime packages travel in .device/node_modules (bench/gpu-pack.sh) where npm has not installed them
if [ ! -e node_modules ] && [ -d .device/node_modules ]; then ln -s .device/node_modules node_modules; fi
if ! command -v node >/dev/null 2>&1; then
  echo "no Node.js: neither .device/env.sh nor node on the PATH"
  exit 1
fi
echo "node $(node --version) ($(command -v node)); python3: $(command -v python3 || echo none)"
record "0 device and Node.js" PASS "$((SECONDS - START))"

# ---- 1. the built files ----
t0=$SECONDS
missing=()
for f in dist/index.js dist/cli.js "$CUDA_ADDON"; do [ -e "$f" ] || missing+=("$f"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "missing: ${missing[*]} (build them before the check: npm run build, the CUDA addon with cmake-js into build-cuda/)"
  exit 1
fi
ls -la "$CUDA_ADDON"
timeout 60 node --input-type=module -e "
  import * as rg from './dist/index.js';
  for (const b of rg.backends()) console.log('backend', b.name, b.available ? 'available' : 'UNAVAILABLE: ' + b.reason, JSON.stringify(b.detail));"
record "1 built files" PASS "$((SECONDS - t0))"

# ---- 2. to 4. ----
run_step "2 kernel conformance (check cuda)" 60 node dist/cli.js check cuda
run_step "2b runtime (allocator, errors, tf32)" 60 node --expose-gc test/gpu/runtime.mjs
# NCCL from PyTorch's wheel where the system has none (rg loads libnccl.so.2 at run time)
NCCL_LIB=$(python3 -c 'import nvidia.nccl, os; print(os.path.join(os.path.dirname(nvidia.nccl.__file__), "lib"))' 2>/dev/null || true)
run_step "2d NCCL (a communicator of one rank)" 60 env LD_LIBRARY_PATH="${NCCL_LIB:+$NCCL_LIB:}${LD_LIBRARY_PATH:-}" node test/gpu/nccl.mjs
run_step "2c autograd against PyTorch" 60 node bench/gpu-autograd-check.mjs --backend cuda
run_step "3 training check" 60 node --expose-gc bench/gpu-train-check.mjs
run_step "4 benchmark vs PyTorch" 170 node bench/gpu.mjs --out "$OUTDIR" --epochs 3 --budget 10 --gemm "${GPU_GEMM_SIZES:-2048,4096}" --torch-timeout 100
run_step "4b applications vs PyTorch" 120 node bench/apps.mjs --backend cuda --rounds 1 --steps 20

# ---- 5. the summary, LAST ----
echo
echo "== summary: $(head -n 1 <<<"$gpus"), $((SECONDS - START))s in all"
printf '%-36s %-18s %s\n' step result seconds
failed=0
for i in "${!NAMES[@]}"; do
  printf '%-36s %-18s %s\n' "${NAMES[$i]}" "${RESULTS[$i]}" "${TIMES[$i]}"
  [ "${RESULTS[$i]}" = PASS ] || failed=1
done
echo
if [ -s "$OUTDIR/gpu-table.txt" ]; then cat "$OUTDIR/gpu-table.txt"; else echo "(no benchmark table: see step 4 in $LOG)"; fi
echo "gpu-check: $([ $failed = 0 ] && echo PASS || echo FAIL); log $LOG"
exit $failed
