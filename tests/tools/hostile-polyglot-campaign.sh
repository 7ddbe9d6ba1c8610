#!/usr/bin/env bash
# The hostile campaign for the Python, JavaScript and C hostile policies
# (tests/polyglot/hostile/{python,js,c}): builds each once with `provkey build`,
# then runs the stock `immutable` policy beside every behaviour of every language
# ROUNDS times (default 5) and counts the outcomes per language: the hostile
# policy's status or failure kind, any crash (an exit other than 0, 1 or 3), any
# run where `immutable`'s finding went missing, any leak of a sensitive value, and
# the longest wall time against the deadline. JOBS runs go at once (default 2).
#   tests/tools/hostile-polyglot-campaign.sh PROVKEY_BINARY [ROUNDS] [JOBS]
# The JavaScript build needs `npm ci --prefix guest-sdk/js` first.
set -euo pipefail
provkey="$1"
rounds="${2:-5}"
jobs="${3:-2}"
deadline_ms=1000
root="$(cd "$(dirname "$0")/../.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cat > "$work/plan.json" <<'PLAN'
{"format_version": "1.2", "resource_changes": [
 {"address": "aws_instance.web", "mode": "managed", "type": "aws_instance", "name": "web",
  "provider_name": "registry.terraform.io/hashicorp/aws",
  "change": {"actions": ["update"], "before": {"ami": "ami-1", "password": "hunter2"},
             "after": {"ami": "ami-2", "password": "hunter3"},
             "before_sensitive": {"password": true}, "after_sensitive": {"password": true}}}]}
PLAN
languages="python js c"
modes="loop memory recursion trap oversized many undeclared-rule unknown-address error
leak-sensitive sleep chatty pass"
for language in $languages; do
    "$provkey" build "$root/tests/polyglot/hostile/$language" >&2
done
# One evaluation: prints `language<TAB>mode<TAB>outcome<TAB>milliseconds`.
evaluate() {
    local language="$1" mode="$2" run="$3"
    local dir="$work/run-$run"
    mkdir -p "$dir"
    printf '{"mode": "%s"}' "$mode" > "$dir/mode.json"
    local start code policy_id
    case "$language" in python) policy_id=hostile-py ;; *) policy_id="hostile-$language" ;; esac
    start=$(date +%s%N)
    set +e
    timeout 60 "$provkey" check --plan "$work/plan.json" --policy immutable \
        --policy "$root/tests/polyglot/hostile/$language/build/policy.wasm" \
        --config "$policy_id=$dir/mode.json" \
        --format json --deadline-ms "$deadline_ms" --memory-mib 64 \
        > "$dir/out.json" 2> "$dir/err.txt"
    code=$?
    set -e
    local elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))
    python3 - "$dir/out.json" "$code" "$elapsed_ms" "$language" "$mode" <<'PY'
import json, sys
path, code, elapsed, language, name = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
if code not in (0, 1, 3):
    print(f"{language}\t{name}\tcrash-exit-{code}\t{elapsed}")
    sys.exit()
text = open(path).read()
report = json.loads(text)
others = [p for p in report["policies"] if p["id"] != "immutable" or p.get("origin") != "stock"]
kept = any(f["policy"] == "immutable" for f in report["findings"])
outcome = ",".join(p["failure"]["kind"] if p["status"] == "failed" else "ok" for p in others)
if not kept:
    outcome += ",IMMUTABLE-LOST"
if "hunter2" in text or "hunter3" in text:
    outcome += ",LEAK"
print(f"{language}\t{name}\t{outcome}\t{elapsed}")
PY
    rm -rf "$dir"
}
export -f evaluate
export provkey work root deadline_ms
run=0
for round in $(seq "$rounds"); do
    for language in $languages; do
        for mode in $modes; do
            run=$((run + 1))
            printf '%s %s %s\n' "$language" "$mode" "$run"
        done
    done
done | xargs -P "$jobs" -L 1 bash -c 'evaluate "$@"' _ > "$work/outcomes"
total=$(wc -l < "$work/outcomes")
echo "evaluations: $total (rounds: $rounds, languages: $languages, deadline: ${deadline_ms} ms)"
for language in $languages; do
    echo "== $language: $(grep -c "^$language	" "$work/outcomes") evaluations, longest wall time" \
        "$(grep "^$language	" "$work/outcomes" | cut -f4 | sort -n | tail -1) ms"
    grep "^$language	" "$work/outcomes" | cut -f2,3 | sort | uniq -c | sort -k2
done
bad=$(grep -c -E 'crash|IMMUTABLE-LOST|LEAK' "$work/outcomes" || true)
echo "crashes, lost findings or leaks: $bad"
[ "$bad" -eq 0 ]
