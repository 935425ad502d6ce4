#!/usr/bin/env bash
# The latency acceptance runs of issue 14, rerunnable on any machine:
#
#   [KEEP=1] scripts/latency-check.sh [DB [STUDY]]
#
# With no DB it first runs a 50-trial search of the default space with a
# relative budget into a fresh database (about 5 minutes on 2 cores). Then:
#   1. hwnas measure twice in a row: every trial's figure within ±5%, the
#      rank order by latency the same up to ties inside the intervals, the
#      ratios to the reference within ±3%, the predictor's record;
#   2. hwnas measure again with a CPU-bound process (hwnas train on one
#      core) beside it: within ±10% of run 1, or flagged disturbed;
#   3. hwnas measure --runtime onnxruntime, then hwnas best --runtime
#      onnxruntime --json lists the trials, hwnas trials shows both runtimes;
#   4. a search with --runtime onnxruntime killed with kill -9 mid-trial and
#      resumed: every trial done once, both runtimes measured.
# Every figure is printed with the load average (/proc/loadavg) beside it.
# Exit status 0 when every check held, 1 otherwise (the figures say which).
set -euo pipefail
cd "$(dirname "$0")/.."
HWNAS=${HWNAS:-bin/hwnas}
DATA=${DATA:-data/mnist}
[ -x "$HWNAS" ] || make build >/dev/null
[ -d "$DATA" ] || "$HWNAS" data --out "$DATA" >/dev/null
WORK=$(mktemp -d /tmp/hwnas-latency-check.XXXXXX)
if [ -n "${KEEP:-}" ]; then
  echo "(KEEP: the database and every JSON stay in $WORK)"
else
  trap 'rm -rf "$WORK"' EXIT
fi
DB=${1:-}
STUDY=${2:-latency-check}
load() { cut -d' ' -f1-3 /proc/loadavg; }
fail=0

if [ -z "$DB" ]; then
  DB=$WORK/check.db
  echo "== search: 50 trials of the default space, budget 0.2xlenet5 (load $(load))"
  "$HWNAS" search --db "$DB" --study "$STUDY" --data "$DATA" --trials 50 --subset 2000 \
    --latency-target 0.2xlenet5 2>/dev/null | tee "$WORK/search.txt"
fi

measure() { # measure NAME [flags...]: one hwnas measure --json into $WORK/NAME.json
  local name=$1; shift
  "$HWNAS" measure --db "$DB" --study "$STUDY" --json "$@" >"$WORK/$name.json"
}

# compare A B LIMIT: per-trial movement of B against A (figures within
# ±LIMIT% or flagged disturbed in B), rank order up to ties inside the
# intervals, ratio movement; prints the figures and exits 1 on a miss.
compare() {
  python3 - "$WORK/$1.json" "$WORK/$2.json" "$3" "$4" <<'EOF'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
limit, ratio_limit = float(sys.argv[3]) / 100, float(sys.argv[4]) / 100
ta = {t["trial"]: t for t in a["trials"] if not t.get("error")}
tb = {t["trial"]: t for t in b["trials"] if not t.get("error")}
common = sorted(set(ta) & set(tb))
fig = lambda t: t["latency"]["latency_ns"]
lo = lambda t: t["latency"].get("ci_low_ns", fig(t))
hi = lambda t: t["latency"].get("ci_high_ns", fig(t))
moves, rmoves, misses, flagged = [], [], [], 0
for n in common:
    m = fig(tb[n]) / fig(ta[n]) - 1
    r = tb[n]["ratio"]["value"] / ta[n]["ratio"]["value"] - 1
    moves.append(abs(m)); rmoves.append(abs(r))
    if abs(m) > limit:
        if tb[n].get("disturbed"):
            flagged += 1
        else:
            misses.append((n, m))
# Rank order: a pair ordered differently is a tie when the intervals
# overlap in either run.
swaps = untied = 0
for i in common:
    for j in common:
        if i < j and (fig(ta[i]) < fig(ta[j])) != (fig(tb[i]) < fig(tb[j])):
            swaps += 1
            overlap = lambda x, y: lo(x) <= hi(y) and lo(y) <= hi(x)
            if not (overlap(ta[i], ta[j]) or overlap(tb[i], tb[j])):
                untied += 1
moves.sort(); rmoves.sort()
med = lambda v: v[len(v) // 2]
within = sum(1 for m in moves if m <= limit)
print(f"  {len(common)} trials: {within} within ±{100*limit:.0f}% (median move {100*med(moves):.1f}%, worst {100*moves[-1]:.1f}%), "
      f"{flagged} beyond it flagged disturbed, {len(misses)} beyond it unflagged {[(n, round(100*m, 1)) for n, m in misses]}")
print(f"  rank order: {swaps} pair(s) swapped, {untied} of them outside both runs' intervals")
print(f"  ratios to {b['reference']}: median move {100*med(rmoves):.1f}%, worst {100*rmoves[-1]:.1f}% "
      f"({sum(1 for r in rmoves if r <= ratio_limit)} of {len(rmoves)} within ±{100*ratio_limit:.0f}%)")
print(f"  reference {b['reference']}: run 1 {[r['latency_ns'] for r in a['references']]} ns, run 2 {[r['latency_ns'] for r in b['references']]} ns; "
      f"usual {a['usual_ns']} → {b['usual_ns']} ns; load {a['loadavg']} / {b['loadavg']}")
p = b["predictor"]
if p["trials"]:
    print(f"  predictor from the table as it stood: {p['within_10pct']} of {p['trials']} trials within ±10% (mean |error| {p['mean_abs_error_pct']:.1f}%)")
h = b.get("predictor_held_out") or {}
if h.get("trials"):
    print(f"  predictor after these trials, each from the others' op times: {h['within_10pct']} of {h['trials']} within ±10% (mean |error| {h['mean_abs_error_pct']:.1f}%)")
sys.exit(1 if misses or untied else 0)
EOF
}

echo "== 1. hwnas measure twice in a row (load $(load))"
measure run1; measure run2
compare run1 run2 5 3 || fail=1

echo "== 2. hwnas measure with hwnas train on one core beside it"
taskset -c 0 "$HWNAS" train --arch lenet5 --epochs 50 --threads 1 --data "$DATA" >/dev/null 2>&1 &
hog=$!
sleep 3
echo "  (load with the trainer running: $(load))"
measure run3
kill "$hog" 2>/dev/null || true
wait "$hog" 2>/dev/null || true
compare run1 run3 10 3 || fail=1

echo "== 3. onnxruntime as a measured device (load $(load))"
measure ort --runtime onnxruntime
"$HWNAS" best --db "$DB" --device cpu --runtime onnxruntime --study "$STUDY" -n 1000 --json >"$WORK/best.json"
python3 - "$WORK/ort.json" "$WORK/best.json" <<'EOF' || fail=1
import json, sys
m, b = (json.load(open(p)) for p in sys.argv[1:])
ok = [t for t in m["trials"] if not t.get("error")]
res = [r for r in b["results"] if r["latency"]["runtime"] == "onnxruntime"]
print(f"  measure --runtime onnxruntime: {len(ok)} trials measured ({m['disturbed']} disturbed); "
      f"best --runtime onnxruntime --json lists {len(res)} of them")
sys.exit(0 if ok and len(res) == len(ok) else 1)
EOF
"$HWNAS" trials --db "$DB" --study "$STUDY" >"$WORK/trials.txt"
if grep -q "LATENCY (hwnas)" "$WORK/trials.txt" && grep -q "LATENCY (onnxruntime)" "$WORK/trials.txt"; then
  echo "  hwnas trials shows both runtimes:"; head -4 "$WORK/trials.txt" | sed 's/^/    /'
else
  echo "  hwnas trials does not show both runtimes"; fail=1
fi

echo "== 4. a search with --runtime onnxruntime, kill -9, resume (load $(load))"
KDB=$WORK/kill.db
"$HWNAS" search --db "$KDB" --study ort --data "$DATA" --trials 4 --subset 500 --epochs 1 \
  --runtime onnxruntime --latency-target 0.2xlenet5 >/dev/null 2>&1 &
pid=$!
for _ in $(seq 600); do
  n=$("$HWNAS" trials --db "$KDB" --study ort --json 2>/dev/null | python3 -c 'import json,sys; print(sum(t["status"]=="done" for t in json.load(sys.stdin)))' 2>/dev/null || echo 0)
  [ "$n" -ge 2 ] && break
  sleep 0.2
done
kill -9 "$pid"; wait "$pid" 2>/dev/null || true
"$HWNAS" search --db "$KDB" --study ort >/dev/null 2>&1
"$HWNAS" trials --db "$KDB" --study ort --json | python3 -c '
import json, sys
ts = json.load(sys.stdin)
done = [t for t in ts if t["status"] == "done"]
both = [t for t in done if {l["runtime"] for l in t["latencies"]} >= {"hwnas", "onnxruntime"}]
nums, att = [t["number"] for t in ts], [t["attempts"] for t in ts]
print(f"  after kill -9 and resume: {len(ts)} trials numbered {nums}, {len(done)} done, {len(both)} with both runtimes, attempts {att}")
sys.exit(0 if len(ts) == 4 and len(done) == 4 and len(both) == 4 else 1)' || fail=1

echo "== $( [ $fail = 0 ] && echo "every check held" || echo "some checks did not hold" ) (load $(load))"
exit $fail
