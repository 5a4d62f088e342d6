#!/usr/bin/env bash
# Runs every fuzz target for a bounded time (default 60 s each) from the kept corpus.
# cargo-fuzz needs unstable compiler flags; RUSTC_BOOTSTRAP lets the stable toolchain
# accept them. Usage: fuzz/run.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-60}"
command -v cargo-fuzz >/dev/null || { echo "install cargo-fuzz: cargo install cargo-fuzz --locked" >&2; exit 1; }
for target in token name webdav_request collab_message; do
    mkdir -p "corpus/$target"
    # A scratch copy of the corpus, so that a run does not grow the kept one.
    scratch=$(mktemp -d)
    cp -r "corpus/$target/." "$scratch/"
    log="$scratch.log"
    status=0
    # yrs reserves room for the counts an update announces (try_reserve), which fails
    # cleanly on an absurd count and, when it succeeds, reserves address space it never
    # touches. AddressSanitizer is told to let such allocations fail as the system allocator
    # does, and libFuzzer to judge memory by what is used (-rss_limit_mb), not reserved.
    # -O builds as the server ships, without debug assertions: yrs asserts in debug builds
    # only that a client id fits in 53 bits, and masks it in release builds.
    ASAN_OPTIONS=allocator_may_return_null=1 RUSTC_BOOTSTRAP=1 cargo fuzz run -O "$target" "$scratch" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -malloc_limit_mb=100000 \
        -print_final_stats=1 >"$log" 2>&1 ||
        status=$?
    echo "$target:"
    grep -E "stat::number_of_executed_units|Done|ERROR|panicked" "$log" || true
    [ "$status" -eq 0 ] || tail -n 60 "$log" >&2
    rm -f "$log"
    rm -rf "$scratch"
    [ "$status" -eq 0 ] || { echo "fuzz target $target failed" >&2; exit 1; }
done
