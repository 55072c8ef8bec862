#!/usr/bin/env bash
# Pack what the device machine needs to run Kiln and the benchmarks: it has no Node and no
# network. Writes .device/node.xz (the node binary) and .device/kiln.tar.xz (dist/, the runtime
# node_modules with their built addons, storage/native's build, server/kiln.cjs, bench/).
# Carry .device with the run tool (carry: [".device"]); bench/device/run.sh unpacks it there.
set -euo pipefail
cd "$(dirname "$0")/../.."
npm run build --silent
rm -rf .device && mkdir -p .device/stage
cp -a package.json package-lock.json dist server bench .device/stage/
mkdir -p .device/stage/storage/native && cp -a storage/native/build .device/stage/storage/native/
cp -a node_modules .device/stage/
(cd .device/stage && npm prune --omit=dev --ignore-scripts --no-audit --no-fund >/dev/null 2>&1)
tar -C .device/stage -cJf .device/kiln.tar.xz .
rm -rf .device/stage
xz -T0 -6 -c "$(command -v node)" > .device/node.xz
du -sh .device/*
