#!/usr/bin/env bash
# A short fuzzing run of each target (default 60 s each; FUZZ_SECONDS to change).
# Needs cargo-fuzz (installed here when missing). libFuzzer's instrumentation needs
# nightly flags: with no nightly toolchain, the pinned stable one is used with
# RUSTC_BOOTSTRAP=1 (fine for a fuzzing build; never for a release).
# Targets: minisig (the strict .minisig parser and trusted-comment grammar), manifest
# (canonical JSON + manifest schema), trust_root. Invariant: no panic, and whatever is
# accepted re-serializes byte for byte; kubernetes (manifests, lists, admission
# requests: no panic, accepted objects are well-formed changes); terraform_address
# (the source mapping's address parser). Seeds come from a sealed bundle when one is given:
#   fuzz/run.sh [BUNDLE_DIR [TRUST_ROOT]]
set -euo pipefail
cd "$(dirname "$0")"
seconds="${FUZZ_SECONDS:-60}"
mkdir -p corpus/minisig corpus/manifest corpus/trust_root corpus/plan corpus/kubernetes corpus/terraform_address
cp ../examples/plans/*.json corpus/plan/ 2>/dev/null || true
cp ../tests/fixtures/kubernetes/*.yaml corpus/kubernetes/ 2>/dev/null || true
if [ -n "${1:-}" ]; then
    cp "$1"/manifest.json corpus/manifest/ 2>/dev/null || true
    cp "$1"/*.minisig corpus/minisig/ 2>/dev/null || true
fi
if [ -n "${2:-}" ]; then
    cp "$2" corpus/trust_root/ 2>/dev/null || true
fi
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --version 0.13.2
if rustup toolchain list | grep -q '^nightly'; then
    fuzz=(cargo +nightly fuzz)
else
    export RUSTC_BOOTSTRAP=1
    fuzz=(cargo fuzz)
fi
for target in minisig manifest trust_root plan kubernetes terraform_address; do
    echo "== fuzz $target for ${seconds}s"
    "${fuzz[@]}" run -O "$target" "corpus/$target" -- -max_total_time="$seconds" -max_len=65536
done
