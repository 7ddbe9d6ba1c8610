#!/usr/bin/env bash
# Regenerates bindings/ (the wit-bindgen C bindings of the `policy` world) with the
# wit-bindgen CLI, pinned to the workspace's wit-bindgen 0.61:
#     cargo install wit-bindgen-cli --version 0.61.0 --locked
# `--check` only compares. tests/all/polyglot.rs (c_bindings_are_what_wit_bindgen_generates)
# runs the same generator as a library on every `cargo test`, so the checked-in
# files cannot drift from the WIT.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
version="$(wit-bindgen --version)"
[[ "$version" == "wit-bindgen-cli 0.61.0" ]] || {
    echo "error: found \`$version\`, need wit-bindgen-cli 0.61.0" >&2
    echo "help: cargo install wit-bindgen-cli --version 0.61.0 --locked" >&2
    exit 2
}
wit-bindgen c "$here/../../wit/plan@0.1.0" --world policy --rename-world provkey_wit \
    --no-object-file --out-dir "$out/gen" >"$out/log" 2>&1 || { cat "$out/log" >&2; exit 1; }
if [[ "${1:-}" == "--check" ]]; then
    diff -r "$out/gen" "$here/bindings" && echo "bindings are up to date"
else
    cp "$out"/gen/provkey_wit.c "$out"/gen/provkey_wit.h "$here/bindings/"
    echo "regenerated $here/bindings"
fi
