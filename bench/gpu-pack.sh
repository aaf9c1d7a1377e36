#!/usr/bin/env bash
# Gathers what bench/gpu-check.sh needs on a GPU machine that has neither Node.js nor npm: Node.js itself
# (../shared/device/pack-node.sh packs it into .device/) and the few runtime packages dist/ imports, copied
# into .device/node_modules. Then take .device/, dist/, build/Release/retrograd.node and
# build-cuda/Release/retrograd_cuda.node along, and run `bash bench/gpu-check.sh OUTDIR` there.
set -euo pipefail
cd "$(dirname "$0")/.."
pack=../shared/device/pack-node.sh
[ -x "$pack" ] || pack=$(git rev-parse --show-toplevel)/../shared/device/pack-node.sh
bash "$pack" >/dev/null
rm -rf .device/node_modules && mkdir -p .device/node_modules
for p in node-gyp-build cli-progress string-width strip-ansi ansi-regex emoji-regex is-fullwidth-code-point csv-parse; do
  cp -r "node_modules/$p" .device/node_modules/
done
du -sh .device dist build/Release/retrograd.node build-cuda/Release/retrograd_cuda.node
