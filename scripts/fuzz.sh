#!/usr/bin/env bash
# Runs every fuzz target in the module for the given budget each (a -fuzztime:
# default 100000x, that many inputs). The seed corpora under testdata/fuzz also
# run in plain `go test`.
#
# Budgets are counts, not durations: up to Go 1.26 the fuzz coordinator can
# fail a target with a bare "context deadline exceeded" when a duration ends
# while a worker is mid-input (go.dev/issue/75804, fixed in Go 1.27), which
# on a loaded machine turned a clean pass into a red CI run. A count has no
# deadline to race.
#
# Each new interesting input is minimised, by default for up to 60 s of
# re-runs; for a target that opens a connection per input (FuzzTLSListener,
# a few hundred inputs/s) that stalled the pass for minutes. A budget of
# 200 re-runs keeps minimising cheap; a failing input is still written
# whole, and can be minimised at leisure with -fuzzminimizetime.
set -euo pipefail
fuzztime=${1:-100000x}
cd "$(dirname "$0")/.."
for pkg in $(go list ./...); do
  for target in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
    echo "== fuzz $pkg $target ($fuzztime)"
    go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" -fuzzminimizetime 200x "$pkg"
  done
done
