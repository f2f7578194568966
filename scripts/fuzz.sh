#!/usr/bin/env bash
# Runs the cargo-fuzz targets of fuzz/ for a bounded time each and prints a summary table
# (executions, corpus size, outcome per target).
#
#   scripts/fuzz.sh [target ...]          all targets when none are given
#   FUZZ_SECONDS=50   seconds per target (make fuzz: 11 targets x 50 s ~ 10 min)
#   FUZZ_RESULTS=file also write the table there as Markdown (make fuzz: fuzz/results.md)
#   FUZZ_RSS_MB=2048  libFuzzer -rss_limit_mb (out-of-memory is a finding); FUZZ_TIMEOUT=10 s per input
#   CARGO_TARGET_DIR  where the instrumented build goes (default fuzz/target)
#
# Needs cargo-fuzz (installed from crates.io when missing) and a nightly toolchain; with only a
# stable one it builds with RUSTC_BOOTSTRAP=1 (sanitizer flags are nightly-only otherwise).
# New inputs go to fuzz/corpus/<target> (not committed), seeds are read from fuzz/seeds/<target>,
# crashes land in fuzz/artifacts/<target>/ and the logs in fuzz/logs/. Exits 1 when a target
# crashed, timed out or ran out of memory.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT/fuzz"

SECONDS_PER="${FUZZ_SECONDS:-50}"
RSS_MB="${FUZZ_RSS_MB:-2048}"
TIMEOUT="${FUZZ_TIMEOUT:-10}"
ALL=(request embed_response resp sse capture policy headers entry verify tokenizer flow)
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=("${ALL[@]}")

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz from crates.io" >&2
    cargo install cargo-fuzz --locked >&2 || { echo "fuzz: cargo install cargo-fuzz failed" >&2; exit 2; }
fi
# FUZZ_STABLE=1 forces the stable fallback (to check it where a nightly exists).
if [ "${FUZZ_STABLE:-0}" != 1 ] && rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    TOOLCHAIN=nightly
    FUZZ=(cargo +nightly fuzz)
else
    echo "fuzz: no nightly toolchain (or FUZZ_STABLE=1); using stable with RUSTC_BOOTSTRAP=1" >&2
    export RUSTC_BOOTSTRAP=1
    TOOLCHAIN=stable
    FUZZ=(cargo +stable fuzz)
fi

# -O: optimised; -a: debug assertions (integer overflow is reported, not wrapped).
BUILD=(-O -a)
echo "fuzz: building ${#TARGETS[@]} target(s) with ${FUZZ[*]}" >&2
"${FUZZ[@]}" build "${BUILD[@]}" >&2 || { echo "fuzz: build failed" >&2; exit 2; }

mkdir -p logs
rows=()
failed=0
for t in "${TARGETS[@]}"; do
    mkdir -p "corpus/$t" "seeds/$t" "artifacts/$t"
    max_len=16384
    case "$t" in verify | tokenizer) max_len=65536 ;; esac
    log="logs/$t.log"
    echo "fuzz: $t for ${SECONDS_PER}s" >&2
    timeout --kill-after=10 $((SECONDS_PER + 120)) "${FUZZ[@]}" run "${BUILD[@]}" "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$SECONDS_PER" -rss_limit_mb="$RSS_MB" -malloc_limit_mb="$RSS_MB" \
        -timeout="$TIMEOUT" -report_slow_units=1 -max_len="$max_len" -print_final_stats=1 \
        -artifact_prefix="artifacts/$t/" >"$log" 2>&1
    rc=$?
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$')
    [ -z "$execs" ] && execs=$(grep -oE '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 | grep -oE '[0-9]+')
    rate=$(grep -oE 'exec/s: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+')
    cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+')
    slow=$(grep -oE 'Slowest unit: [0-9]+ s' "$log" | grep -oE '[0-9]+' | sort -n | tail -1)
    rss=$(grep -oE 'stat::peak_rss_mb: *[0-9]+' "$log" | tail -1 | grep -oE '[0-9]+$')
    corpus=$(find "corpus/$t" -type f | wc -l)
    outcome=ok
    if grep -q 'ERROR: libFuzzer: out-of-memory\|malloc(.*) exceeds limit\|ERROR: libFuzzer: malloc limit' "$log"; then
        outcome="OOM"
    elif grep -q 'ERROR: libFuzzer: timeout' "$log"; then
        outcome="TIMEOUT"
    elif grep -q 'ERROR: libFuzzer: deadly signal\|panicked at\|ERROR: AddressSanitizer' "$log"; then
        outcome="CRASH"
    elif [ "$rc" -ne 0 ]; then
        outcome="exit $rc"
    fi
    if [ "$outcome" != ok ]; then
        failed=1
        outcome="$outcome (artifacts/$t, logs/$t.log)"
    fi
    rows+=("| $t | ${execs:-?} | ${rate:-?} | ${cov:-?} | $corpus | ${slow:-<1} | ${rss:-?} | $outcome |")
done

table=$(
    echo "| target | executions | exec/s (last) | coverage | corpus | slowest input (s) | peak RSS (MB) | outcome |"
    echo "|---|---:|---:|---:|---:|---:|---:|---|"
    printf '%s\n' "${rows[@]}"
)
echo
echo "$table"
if [ -n "${FUZZ_RESULTS:-}" ]; then
    {
        echo "# Fuzzing results"
        echo
        echo "\`make fuzz\` on $(date -u '+%Y-%m-%d %H:%M UTC'), ${SECONDS_PER} s per target, $(nproc) CPU(s),"
        echo "$(rustc "+$TOOLCHAIN" --version)${RUSTC_BOOTSTRAP:+ (RUSTC_BOOTSTRAP=1)}, -rss_limit_mb=$RSS_MB, -timeout=$TIMEOUT s."
        echo "Executions: libFuzzer's final \`stat::number_of_executed_units\` per target."
        echo
        echo "$table"
    } >"$(cd "$ROOT" && realpath -m "$FUZZ_RESULTS")"
    echo "fuzz: wrote $FUZZ_RESULTS" >&2
fi
exit $failed
