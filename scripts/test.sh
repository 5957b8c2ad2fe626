#!/usr/bin/env bash
# Runs the tests of the packages given (go test -count=1 -p 1). A package that fails is run
# once more on its own, and the log says so loudly: the end-to-end tests time real servers,
# proxies and a Docker engine on two cores, and two of them (integration TestHaproxyConsul,
# integration/watch TestOutage/etcd) failed once each in recent clean-clone runs while passing
# alone. A package that fails twice fails the run. A flaky test is a bug to fix, not to retry:
# every retry is printed as "RETRY" so that it is seen.
set -uo pipefail
go=${GO:-go}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
"$go" test -count=1 -p 1 -timeout 40m "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
((rc == 0)) && exit 0
mapfile -t failed < <(grep -E '^FAIL[[:space:]]+[^[:space:]]+[[:space:]]' "$log" | awk '{print $2}' | sort -u)
if ((${#failed[@]} == 0)); then
  exit "$rc"
fi
echo "=== RETRY: failed once, run again on their own (a flake to fix): ${failed[*]}"
"$go" test -count=1 -p 1 -timeout 40m "${failed[@]}"
