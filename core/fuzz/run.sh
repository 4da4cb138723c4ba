#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each, one after the other, each as a single
# libFuzzer process (no -jobs/-workers: the machines have 2 cores), and prints
# per target the runs executed, exec/s, the final cov:/ft: line, the corpus size
# and whether it crashed. Exits non-zero if any target crashed or failed to run.
#
#   bash core/fuzz/run.sh SECONDS [TARGET...]      (make fuzz / make fuzz-smoke)
#
# Needs nightly Rust and cargo-fuzz: scripts/setup-fuzz.sh installs both.
# FUZZ_ARGS adds libFuzzer flags: FUZZ_ARGS=-seed=1, or
# FUZZ_ARGS="-fork=1 -ignore_crashes=1" to keep fuzzing past a crash (still one
# fuzzing process at a time) and collect every distinct one in artifacts/.
#
# The targets are built without AddressSanitizer (-s none): the engine forbids
# unsafe code, so ASan finds nothing the Rust checks would not, and a plain
# build is faster to compile and runs about twice as many inputs a second.
# Debug assertions (and so integer-overflow checks) stay on.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
seconds="${1:?usage: run.sh SECONDS [TARGET...]}"
shift
if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
  # shellcheck disable=SC1091
  . "$HOME/.cargo/env"
fi
export PATH="${TOKENWELL_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/tokenwell-tools}/cargo-fuzz/bin:$PATH"
# The workspace's CARGO_TARGET_DIR (set by the Makefile) would mix instrumented
# nightly builds into target/; the fuzz crate keeps its own (ignored) target/.
unset CARGO_TARGET_DIR
cd "$here"

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo +nightly fuzz list)
fi

bash "$here/seed.sh"

echo "fuzz: building ${targets[*]} (nightly, cargo-fuzz, no sanitizer)"
mkdir -p "$here/target"
if ! cargo +nightly fuzz build -s none >"$here/target/fuzz-build.log" 2>&1; then
  tail -40 "$here/target/fuzz-build.log"
  echo "fuzz: build failed"
  exit 1
fi

logs="$here/target/fuzz-logs"
mkdir -p "$logs"
failed=()
summary=()
for target in "${targets[@]}"; do
  log="$logs/$target.log"
  mkdir -p "corpus/$target" "artifacts/$target"
  # Reproducers of engine bugs found earlier (regressions/<target>-<what>.b64)
  # are replayed one by one first: each says whether its bug is still there.
  for file in regressions/"$target"-*.b64; do
    [ -e "$file" ] || continue
    name=$(basename "$file" .b64)
    base64 -d "$file" >"target/regression-$name"
    if cargo +nightly fuzz run -s none "$target" "target/regression-$name" >"$logs/$name.log" 2>&1; then
      echo "fuzz: regression $name: passes"
    else
      failed+=("$name")
      echo "fuzz: regression $name: STILL FAILS: $(grep -a -A1 'panicked at' "$logs/$name.log" | tail -1 | cut -c1-200)"
    fi
  done
  before=$(find "artifacts/$target" -type f | sort)
  echo "fuzz: $target for ${seconds}s (log: ${log#"$repo/"})"
  # shellcheck disable=SC2086
  cargo +nightly fuzz run -s none "$target" -- \
    -max_total_time="$seconds" -timeout=10 -print_final_stats=1 ${FUZZ_ARGS:-} >"$log" 2>&1
  status=$?
  # The last status line: "#N DONE cov: .. ft: .. corp: .. exec/s: .." (or, with
  # FUZZ_ARGS=-fork=1, "#N: cov: .. ft: .. corp: .. exec/s: .. oom/timeout/crash: ..").
  final=$(grep -aE '^#[0-9]+:?[[:space:]]+(DONE|NEW|REDUCE|pulse|INITED|cov:)' "$log" | tail -1)
  runs=$(sed -n 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\1 runs in \2 s/p' "$log" | tail -1)
  if [ -z "$runs" ]; then
    # A crash (or fork mode) ends without the "Done" line: the last status line counts.
    runs="$(sed -n 's/^#\([0-9]*\).*/\1/p' <<<"$final") runs"
  fi
  execs=$(sed -n 's/^stat::average_exec_per_sec:[[:space:]]*//p' "$log" | tail -1)
  [ -n "$execs" ] || execs=$(sed -n 's/.*exec\/s: \([0-9]*\).*/\1/p' <<<"$final")
  corpus=$(find "corpus/$target" -type f | wc -l)
  new_artifacts=$(comm -13 <(echo "$before") <(find "artifacts/$target" -type f | sort) | grep -v '^$' || true)
  echo "  runs:    ${runs:-none recorded}"
  echo "  exec/s:  ${execs:-?}"
  echo "  final:   ${final:-no libFuzzer status line}"
  echo "  corpus:  $corpus inputs"
  crashed=0
  if [ "$status" -ne 0 ] || [ -n "$new_artifacts" ]; then
    crashed=1
    failed+=("$target")
    echo "  CRASH or failure (exit $status); new artifacts:"
    sed 's/^/    /' <<<"${new_artifacts:-    (none)}"
    grep -aE "panicked at|SUMMARY|deadly signal|timeout after|out-of-memory" "$log" | sort | uniq -c | head -8 | sed 's/^/    /'
    grep -a -A2 "panicked at" "$log" | grep -v "panicked at\|^--\|stack backtrace" | sort | uniq -c | head -6 | sed 's/^/    /'
  else
    echo "  crashes: none"
  fi
  cov=$(sed -n 's/.*cov: \([0-9]*\).*/\1/p' <<<"$final")
  ft=$(sed -n 's/.*ft: \([0-9]*\).*/\1/p' <<<"$final")
  summary+=("$(printf '%-16s %-22s exec/s %-6s cov %-5s ft %-6s corpus %-5s %s' "$target" "${runs:-?}" "${execs:-?}" \
    "${cov:-?}" "${ft:-?}" "$corpus" "$([ "$crashed" -eq 0 ] && echo ok || echo CRASH)")")
done

echo
echo "fuzz summary (${seconds}s per target):"
printf '  %s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: crashed or failed: ${failed[*]} (reproducers in core/fuzz/artifacts/<target>/;" \
    "replay with: cd core/fuzz && cargo +nightly fuzz run -s none <target> <file>)"
  exit 1
fi
echo "fuzz: ${#targets[@]} targets, no crash"
