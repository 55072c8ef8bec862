#!/usr/bin/env bash
# On the device machine (no Node, no network): unpack .device (made by bench/device/bundle.sh and
# carried with the run tool), then measure, for each argument:
#   a core set (0, 0-3, 0-15): 64 MiB GET/PUT, 8 MiB ranges, 4 KiB GET/PUT with the Kiln server pinned
#      to those cores, as one process and as one HTTP worker per core (--workers N), beside nginx
#      (if installed) and node-mem (Node's HTTP ceiling), all driven by the same client;
#   train: the training-job test, bench/training/loader_bench.py, Kiln vs local files (needs torch).
# Results go to $OUT (the run tool brings that folder back). Usage: bash bench/device/run.sh [args...]
# (default: 0 0-3 0-15 train). One run-tool call may last 600 s: a core set takes ~1.5 min per server
# layout (one for 0, two for the others) and train ~3-5 min, so split the work, e.g.
#   bash bench/device/run.sh 0 0-3     then     bash bench/device/run.sh 0-15     then     bash bench/device/run.sh train
# CELL_SECONDS (5) and TRAIN_ARGS (--shards 32 --workers 8 --seconds 60) shorten a rehearsal:
#   OUT=/tmp/out CELL_SECONDS=2 TRAIN_ARGS="--shards 2 --shard-mib 16 --seconds 5 --device cpu" bash bench/device/run.sh 0 0-1 train
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/kiln-device-out}
mkdir -p "$OUT" .device/bin .device/kiln
python3 - <<'PY'
import lzma, os, shutil, tarfile
if not os.path.exists('.device/bin/node'):
    with lzma.open('.device/node.xz') as src, open('.device/bin/node', 'wb') as dst:
        shutil.copyfileobj(src, dst)
    os.chmod('.device/bin/node', 0o755)
if not os.path.exists('.device/kiln/dist'):
    with tarfile.open('.device/kiln.tar.xz') as t:
        t.extractall('.device/kiln')
PY
export PATH="$PWD/.device/bin:$PATH"
cd .device/kiln
{ nproc; lscpu | grep -E 'Model name|Socket|Core|Thread'; free -g; df -h /tmp; node -v; nvidia-smi -L 2>/dev/null; } > "$OUT/machine.txt" 2>&1
ARGS=${*:-"0 0-3 0-15 train"}
for c in $ARGS; do
  [ "$c" = train ] && continue
  n=$(( $(echo "$c" | awk -F- '{print ($2==""?0:$2)}') + 1 ))
  # The load comes from 4 client processes on the cores the server does not have (all cores: shared).
  total=$(nproc)
  client=$( [ "$n" -lt "$total" ] && echo "--client-cpus $n-$((total - 1))" )
  # One process (its thread pool sized to the cores), then one HTTP worker per core (--workers n).
  for w in $( [ "$n" -gt 1 ] && echo "1 $n" || echo 1 ); do
    pool=$(( w > 1 ? 8 : (n * 4 > 4 ? n * 4 : 4) ))
    UV_THREADPOOL_SIZE=$pool timeout 300 node dist/bench/http/run.js --targets kiln,nginx,node-mem --scenarios get-64m,put-64m,range-8m,get-4k,put-4k \
      --seconds "${CELL_SECONDS:-5}" --rounds 1 --kiln-cpus "$c" --kiln-workers "$w" --client-procs 4 $client --out "$OUT/cores-$c-w$w.md" > "$OUT/cores-$c-w$w.log" 2>&1
  done
done
case " $ARGS " in *" train "*) ;; *) ls -la "$OUT"; exit 0 ;; esac
# Training: shards written to local disk and to Kiln, then the same DataLoader over both.
DATA=/tmp/kiln-train && rm -rf "$DATA" && mkdir -p "$DATA"
KILN_ROOT_USER=kilnadmin KILN_ROOT_PASSWORD=kilnadmin-change-me UV_THREADPOOL_SIZE=64 \
  node server/kiln.cjs server --address 127.0.0.1:9000 --drives "$DATA/d1,$DATA/d2,$DATA/d3,$DATA/d4" --log-level error > "$OUT/kiln-train.log" 2>&1 &
KPID=$!
sleep 3
timeout 500 python3 bench/training/loader_bench.py --endpoint http://127.0.0.1:9000 --local-dir "$DATA/local" \
  --upload ${TRAIN_ARGS:---shards 32 --workers 8 --seconds 60} > "$OUT/training.json" 2> "$OUT/training.log"
kill $KPID
ls -la "$OUT"
