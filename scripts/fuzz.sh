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
set -euo pipefail
fuzztime=${1:-100000x}
cd "$(dirname "$0")/.."
for pkg in $(go list ./...); do
  for target in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
    echo "== fuzz $pkg $target ($fuzztime)"
    go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg"
  done
done
