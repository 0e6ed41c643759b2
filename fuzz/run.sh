#!/usr/bin/env bash
# Builds every cargo-fuzz target and runs each for a bounded time; prints the number
# of executions per target; exits non-zero when a target finds a crash (the input is
# left in fuzz/artifacts/<target>/).
#
#   fuzz/run.sh                      # every target, 60 s each
#   FUZZ_SECONDS=180 fuzz/run.sh     # 3 minutes each
#   fuzz/run.sh torrent sixpan_identity
#
# Settings (environment):
#   FUZZ_SECONDS    seconds per target (default 60), libFuzzer's -max_total_time
#   FUZZ_SANITIZER  cargo fuzz's -s: none (default), address, ...
#   FUZZ_JOBS       targets run at once (default 1)
#   FUZZ_ARGS       more libFuzzer flags, e.g. "-max_len=65536"
#
# Toolchain: no nightly needed. With a sanitizer, cargo-fuzz (`cargo install cargo-fuzz
# --locked`) passes `-Zsanitizer=...`, which only nightly rustc accepts: RUSTC_BOOTSTRAP=1
# below lets the stable toolchain accept it (checked with `address` on stable 1.95).
# The default sanitizer is `none`, which builds on plain stable: the crates forbid
# unsafe code, so AddressSanitizer costs about 5x the speed and adds little; the
# targets run with debug assertions (-a), so integer overflows are found as panics.
#
# Corpora: fuzz/corpus/<target>/ (not committed) is seeded from fixtures/ and
# fuzz/seeds/<target>/ on every run; what libFuzzer learns stays there between runs.
set -euo pipefail
cd "$(dirname "$0")"
root="$(cd .. && pwd)"

export RUSTC_BOOTSTRAP=1
seconds="${FUZZ_SECONDS:-60}"
sanitizer="${FUZZ_SANITIZER:-none}"
jobs="${FUZZ_JOBS:-1}"
read -r -a extra <<<"${FUZZ_ARGS:-}"

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "cargo-fuzz is missing: cargo install cargo-fuzz --locked" >&2
  exit 2
fi

if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo fuzz list)
fi

# Copies files into a target's corpus (names kept; existing entries left alone).
seed() {
  local target="$1"
  shift
  mkdir -p "corpus/$target"
  local f
  for f in "$@"; do
    [ -f "$f" ] || continue
    cp -n "$f" "corpus/$target/$(basename "$(dirname "$f")")-$(basename "$f")" 2>/dev/null || true
  done
}

seed_all() {
  local fx="$root/fixtures"
  seed pan123_envelope "$fx"/123pan/*/response_*
  seed pan123_oauth_token "$fx"/123pan/oauth_access_token/* "$fx"/123pan/access_token/response_*
  seed pan123_callback "$fx"/123pan/callback/*.json
  seed sixpan_envelope "$fx"/6pan/{add_tasks,delete_tasks,list_tasks,login,parse_torrent,parse_url,store_token,user_info}/*
  seed sixpan_storage "$fx"/6pan/{upload,make_block,make_file,put_chunk}/*
  seed sixpan_identity "$fx"/6pan/identity/*.txt
  seed torrent "$fx"/torrents/*.torrent
  seed emulator_request "$fx"/123pan/*/request_*.http
  # The upload tokens inside the store_token answers, one per file.
  mkdir -p corpus/sixpan_upload_token
  local n=0 token
  while read -r token; do
    n=$((n + 1))
    printf '%s' "$token" >"corpus/sixpan_upload_token/fixture-$n"
  done < <(grep -ho '"token": *"[^"]*:[^"]*"' "$fx"/6pan/store_token/* | sed 's/.*"token": *"\([^"]*\)"/\1/')
  local t
  for t in seeds/*/; do
    t="$(basename "$t")"
    seed "$t" seeds/"$t"/*
  done
}

echo "== building ${#targets[@]} target(s) (sanitizer: $sanitizer, debug assertions on)"
cargo fuzz build -s "$sanitizer" -a
seed_all
mkdir -p artifacts logs

# Runs one target; writes logs/<target>.log and logs/<target>.result
# (`<executions> <seconds fuzzed> <ok|CRASH>`, from libFuzzer's own final figures).
run_one() {
  local target="$1"
  local log="logs/$target.log"
  local status=ok
  mkdir -p "artifacts/$target"
  if ! cargo fuzz run -s "$sanitizer" -a "$target" "corpus/$target" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="artifacts/$target/" "${extra[@]}" >"$log" 2>&1; then
    status=CRASH
  fi
  local execs secs
  execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
  # `Done N runs in S second(s)`; after a crash, the last status line's `#N` and the
  # time of the crash are not printed that way, so fall back to `#N` and 0.
  secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -n 1)
  if [ -z "$execs" ]; then
    execs=$(grep -o '^#[0-9]*' "$log" | tail -n 1 | tr -d '#')
  fi
  echo "${execs:-0} ${secs:-0} $status" >"logs/$target.result"
}

echo "== running each target for ${seconds}s, $jobs at a time"
running=0
for target in "${targets[@]}"; do
  run_one "$target" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n || true
    running=$((running - 1))
  fi
done
wait || true

crashes=0
total=0
printf '%-22s %12s %8s %10s  %s\n' target executions seconds exec/s result
for target in "${targets[@]}"; do
  read -r execs secs status <"logs/$target.result"
  total=$((total + execs))
  rate=$((execs / (secs > 0 ? secs : 1)))
  printf '%-22s %12s %8s %10s  %s\n' "$target" "$execs" "$secs" "$rate" "$status"
  if [ "$status" != ok ]; then
    crashes=$((crashes + 1))
    echo "   log: fuzz/logs/$target.log; input(s):"
    ls -1 "artifacts/$target/" | sed 's/^/     fuzz\/artifacts\/'"$target"'\//'
    grep -m 5 -E 'panicked at|ERROR: libFuzzer|SUMMARY' "logs/$target.log" | sed 's/^/     /' || true
  fi
done
echo "total executions: $total; targets with a crash: $crashes"
[ "$crashes" -eq 0 ]
