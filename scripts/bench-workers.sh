#!/usr/bin/env bash
# Trials/hour of `hwnas search --workers 2 --threads 1` against
# `--workers 1` at the same settings and seed, interleaved in one sitting
# (ROUNDS rounds, alternating which goes first), then whether the latencies
# the parallel search recorded match a quiet `hwnas measure` of the same
# trials (and the same for --quiet on, the parallel search with the quiet
# slot forced on; its default, auto, leaves it off where each worker is
# pinned to a core of its own). Prints /proc/loadavg beside every figure: on a shared
# machine other work disturbs both.
#
#   scripts/bench-workers.sh            # TRIALS=24 SUBSET=2000 ROUNDS=2
#   TRIALS=60 ROUNDS=3 scripts/bench-workers.sh
set -euo pipefail
cd "$(dirname "$0")/.."
TRIALS=${TRIALS:-24}
SUBSET=${SUBSET:-2000}
ROUNDS=${ROUNDS:-2}
SEED=${SEED:-7}
DATA=${DATA:-data/mnist}
OUT=${OUT:-$(mktemp -d /tmp/hwnas-bench-workers.XXXXXX)}
mkdir -p "$OUT"
export CGO_CFLAGS="${CGO_CFLAGS:--O2 -Wno-deprecated-declarations}"
go build -o bin/hwnas ./cmd/hwnas
[ -f "$DATA/train-images-idx3-ubyte.gz" ] || bin/hwnas data --out "$DATA"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); results in $OUT"
echo "settings: --trials $TRIALS --subset $SUBSET --seed $SEED --threads 1 --strategy rl"

run() { # run NAME WORKERS [extra flags]: one fresh study, prints its trials/hour
  local name=$1 workers=$2; shift 2
  local load0 load1
  load0=$(cut -d' ' -f1-3 /proc/loadavg)
  bin/hwnas search --db "$OUT/$name.db" --study "$name" --data "$DATA" --trials "$TRIALS" --subset "$SUBSET" \
    --seed "$SEED" --threads 1 --workers "$workers" "$@" --json >"$OUT/$name.json" 2>"$OUT/$name.log"
  load1=$(cut -d' ' -f1-3 /proc/loadavg)
  python3 - "$OUT/$name.json" "$name" "$load0" "$load1" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
print(f"{sys.argv[2]:<14} {s['done']:3d} trials in {s['seconds']:6.1f} s: {s['trials_per_hour']:7.0f} trials/hour   loadavg before {sys.argv[3]}, after {sys.argv[4]}")
PY
}

for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) -eq 1 ]; then
    run "w1-r$r" 1; run "w2-r$r" 2
  else
    run "w2-r$r" 2; run "w1-r$r" 1
  fi
done
run "w2-quieton" 2 --quiet on

python3 - "$OUT" "$ROUNDS" <<'PY'
import json, sys
out, rounds = sys.argv[1], int(sys.argv[2])
tph = lambda n: json.load(open(f"{out}/{n}.json"))["trials_per_hour"]
w1 = [tph(f"w1-r{r}") for r in range(1, rounds + 1)]
w2 = [tph(f"w2-r{r}") for r in range(1, rounds + 1)]
print(f"trials/hour: --workers 1 {sum(w1)/len(w1):.0f}, --workers 2 {sum(w2)/len(w2):.0f}: "
      f"{sum(w2)/sum(w1):.2f}x (per round: {', '.join(f'{b/a:.2f}x' for a, b in zip(w1, w2))})")
PY

# Latencies recorded during the parallel searches against a quiet
# re-measurement of the same trials (hwnas measure replaces the row, so
# the recorded figures are read first).
# The quiet re-measurement in both settings: all trials in one group of
# interleaved rounds (measure's default), and each alone beside the
# reference (--group 1), as the search measured it. Each on its own copy.
for name in "w2-r1" "w2-quieton"; do
  bin/hwnas trials --db "$OUT/$name.db" --study "$name" --json >"$OUT/$name.trials.json"
  for group in 64 1; do
    cp "$OUT/$name.db" "$OUT/$name-g$group.db"
    echo "quiet re-measurement of $name, --group $group, loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
    bin/hwnas measure --db "$OUT/$name-g$group.db" --study "$name" --threads 1 --group "$group" --json >"$OUT/$name-g$group.measure.json"
    bin/hwnas trials --db "$OUT/$name-g$group.db" --study "$name" --json >"$OUT/$name-g$group.quiet.json"
    python3 - "$OUT/$name.trials.json" "$OUT/$name-g$group.quiet.json" "$name --group $group" <<'PY'
import json, sys, statistics
def figures(path):
    trials = json.load(open(path))
    trials = trials.get("trials", trials) if isinstance(trials, dict) else trials
    out = {}
    for t in trials:
        for l in t.get("latencies") or []:
            if l["batch"] == 1 and l["device"]["cores"] == 1 and l.get("runtime", "hwnas") == "hwnas":
                st = l["stats"]
                out[t["number"]] = st.get("latency_ns") or st["median_ns"]
    return out
rec, quiet = figures(sys.argv[1]), figures(sys.argv[2])
diffs = sorted((rec[n] - q) / q for n, q in quiet.items() if n in rec)
within = sum(abs(d) <= 0.05 for d in diffs)
print(f"{sys.argv[3]}: {len(diffs)} trials; recorded vs quiet latency: median diff {100*statistics.median(diffs):+.1f}%, "
      f"median |diff| {100*statistics.median(abs(d) for d in diffs):.1f}%, within ±5%: {within}/{len(diffs)}")
PY
  done
done
