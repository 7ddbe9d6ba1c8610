#!/usr/bin/env bash
# Runs the stock `immutable` policy beside each hostile guest behaviour ROUNDS times
# (default 20) and counts the outcomes: the hostile policy's status or failure kind,
# any run that crashed (an exit other than 0, 1 or 3), any run where `immutable`'s
# finding went missing, and the longest wall time against the deadline.
#   tests/tools/hostile-campaign.sh PROVKEY_BINARY GUEST_DIR [ROUNDS]
# GUEST_DIR holds the test guests built by tests/build.rs (hostile.wasm, many_rules.wasm, ...).
set -euo pipefail
provkey="$1"
guests="$2"
rounds="${3:-20}"
deadline_ms=1000
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
modes="loop memory recursion shadow-recursion trap oversized many undeclared-rule
unknown-address escape error leak-sensitive leak-sensitive-error sleep sleep-forever
sleep-loop wait-duration wait-instant poll-clocks read-stdin chatty pass observe"
runs=()
for mode in $modes; do runs+=("hostile.wasm:$mode"); done
for component in many_rules bad_schema claims_immutable; do runs+=("$component.wasm:"); done
: > "$work/outcomes"
for round in $(seq "$rounds"); do
    for entry in "${runs[@]}"; do
        component="${entry%%:*}"
        mode="${entry#*:}"
        args=(check --plan "$work/plan.json" --policy immutable --policy "$guests/$component"
              --format json --deadline-ms "$deadline_ms" --memory-mib 64)
        if [ -n "$mode" ]; then
            printf '{"mode": "%s"}' "$mode" > "$work/mode.json"
            args+=(--config "hostile=$work/mode.json")
        fi
        start=$(date +%s%N)
        set +e
        timeout 60 "$provkey" "${args[@]}" > "$work/out.json" 2> "$work/err.txt"
        code=$?
        set -e
        elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))
        python3 - "$work/out.json" "$code" "$elapsed_ms" "${mode:-$component}" >> "$work/outcomes" <<'PY'
import json, sys
path, code, elapsed, name = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
if code not in (0, 1, 3):
    print(f"{name}\tcrash-exit-{code}\t{elapsed}")
    sys.exit()
report = json.load(open(path))
others = [p for p in report["policies"] if p["id"] != "immutable" or p.get("origin") != "stock"]
kept = any(f["policy"] == "immutable" for f in report["findings"])
leak = "hunter2" in open(path).read() or "hunter3" in open(path).read()
outcome = ",".join(p["failure"]["kind"] if p["status"] == "failed" else "ok" for p in others)
if not kept:
    outcome += ",IMMUTABLE-LOST"
if leak:
    outcome += ",LEAK"
print(f"{name}\t{outcome}\t{elapsed}")
PY
    done
done
total=$(wc -l < "$work/outcomes")
echo "evaluations: $total (rounds: $rounds, behaviours: ${#runs[@]}, deadline: ${deadline_ms} ms)"
echo "outcomes (count, behaviour, hostile policy's status or failure kind):"
cut -f1,2 "$work/outcomes" | sort | uniq -c | sort -k2
echo "longest wall time: $(cut -f3 "$work/outcomes" | sort -n | tail -1) ms"
bad=$(grep -c -E 'crash|IMMUTABLE-LOST|LEAK' "$work/outcomes" || true)
echo "crashes, lost findings or leaks: $bad"
[ "$bad" -eq 0 ]
