#!/usr/bin/env bash
# Mutation testing of the engine's decision files (`make mutants`).
#
# cargo-mutants (installed by scripts/setup-mutants.sh into .cache/) changes one
# operator, condition or return value at a time in the files that
# .cargo/mutants.toml names, and runs the tests it names against each change. A
# mutant the tests catch is a decision they pin; a missed one is a behaviour no
# test notices. Equivalent mutants (no input can tell them apart) are excluded
# there and explained in .cargo/equivalent-mutants.md.
#
# MUTANTS_SHARDS cargo-mutants processes (default 2, one per core) each take
# every n-th mutant, in a copy of the tree, with a target directory of its own
# under .cache/mutants/ that is kept between runs. Prints caught / missed /
# unviable / timeouts and the score caught / (caught + missed), lists what was
# missed, and exits non-zero below MUTANTS_MIN_SCORE percent (default 95) or if
# a shard could not run. Output of the last run: .cache/mutants/shard-N/.
# MUTANTS_SAMPLE=k/n tests only the k-th of n equal slices of the mutants
# (round-robin, so each slice spreads over every file); n consecutive values of
# k cover every mutant once. `make test` (CI) runs one slice, chosen from the
# commit count, so that it fits CI's time budget and successive commits rotate
# through them all; `make mutants` runs them all.
# MUTANTS_ARGS adds cargo-mutants options, e.g. MUTANTS_ARGS='--re=^core/src/error\.rs:'
# to look at one file while working on its tests (the score then covers only it;
# --file would add to the configured files, not narrow them).
set -euo pipefail
cd "$(dirname "$0")/.."
shards="${MUTANTS_SHARDS:-2}"
min_score="${MUTANTS_MIN_SCORE:-95}"
# MUTANTS_WORK: where the shards' trees, target directories and reports go.
work="${MUTANTS_WORK:-$PWD/.cache/mutants}"

bin=$(bash scripts/setup-mutants.sh | tail -n 1)

# Debug info only slows the link of every mutant's test binaries; nothing reads it.
export CARGO_PROFILE_DEV_DEBUG=0 CARGO_PROFILE_TEST_DEBUG=0
export CARGO_TERM_COLOR=never
mkdir -p "$work"

# Build the dependencies once and give every shard a copy (cp -a keeps the
# timestamps cargo's freshness check compares), instead of building them n times.
if [ ! -d "$work/target-0" ]; then
  echo "mutants: building the test dependencies once" >&2
  CARGO_TARGET_DIR="$work/target-0" cargo test -q -p tokenwell --no-run >/dev/null
fi
for ((k = 1; k < shards; k++)); do
  [ -d "$work/target-$k" ] || cp -a "$work/target-0" "$work/target-$k"
done

# The slice of the mutants this run covers: all of them, or the k-th of n.
slice=0 slices=1
if [ -n "${MUTANTS_SAMPLE:-}" ]; then
  if ! [[ $MUTANTS_SAMPLE =~ ^([0-9]+)/([1-9][0-9]*)$ ]] || [ "${BASH_REMATCH[1]}" -ge "${BASH_REMATCH[2]}" ]; then
    echo "mutants: MUTANTS_SAMPLE must be k/n with 0 <= k < n (got '$MUTANTS_SAMPLE')" >&2
    exit 2
  fi
  slice=${BASH_REMATCH[1]} slices=${BASH_REMATCH[2]}
  echo "mutants: slice $slice of $slices (every mutant is in exactly one slice)" >&2
fi

start=$(date +%s)
pids=()
for ((k = 0; k < shards; k++)); do
  rm -rf "$work/shard-$k"
  CARGO_TARGET_DIR="$work/target-$k" "$bin" mutants --package tokenwell --jobs 1 \
    --shard "$((slice * shards + k))/$((slices * shards))" --sharding round-robin --output "$work/shard-$k" --colors never --no-times \
    ${MUTANTS_ARGS:-} >"$work/shard-$k.log" 2>&1 &
  pids+=($!)
done
failed=0
for ((k = 0; k < shards; k++)); do
  # cargo-mutants exits 2 when mutants were missed and 3 on timeouts: judged
  # below by the score. Anything else (a failing baseline, bad options) is fatal.
  status=0
  wait "${pids[$k]}" || status=$?
  case "$status" in
    0 | 2 | 3) ;;
    *)
      echo "mutants: shard $k/$shards failed (exit $status); last lines of $work/shard-$k.log:" >&2
      tail -n 20 "$work/shard-$k.log" >&2
      failed=1
      ;;
  esac
done
[ "$failed" = 0 ] || exit 1

count() { cat "$work"/shard-*/mutants.out/"$1".txt 2>/dev/null | grep -c . || true; }
caught=$(count caught)
missed=$(count missed)
unviable=$(count unviable)
timeouts=$(count timeout)
elapsed=$(($(date +%s) - start))
if [ "$missed" -gt 0 ]; then
  echo "missed mutants (a behaviour no test pins):"
  cat "$work"/shard-*/mutants.out/missed.txt | sort -t: -k1,1 -k2,2n | sed 's/^/  /'
fi
if [ "$timeouts" -gt 0 ]; then
  echo "mutants that made the tests time out (counted neither caught nor missed):"
  cat "$work"/shard-*/mutants.out/timeout.txt | sort -t: -k1,1 -k2,2n | sed 's/^/  /'
fi
python3 - "$caught" "$missed" "$unviable" "$timeouts" "$min_score" "$elapsed" <<'PY'
import sys
caught, missed, unviable, timeouts, elapsed = (int(a) for a in sys.argv[1:5] + sys.argv[6:7])
minimum = float(sys.argv[5])
viable = caught + missed
score = 100.0 * caught / viable if viable else 0.0
print(f"mutants: {caught} caught, {missed} missed, {unviable} unviable, {timeouts} timeouts in {elapsed} s")
print(f"mutants: score {score:.1f} % of viable, non-equivalent mutants caught (minimum {minimum:g} %)")
sys.exit(0 if viable and score >= minimum else 1)
PY
