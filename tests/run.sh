#!/usr/bin/env bash
# The test command: installs what the tests need when it is missing (the guest
# toolchains, the report validators, the reference minisign CLI), then runs every
# test. Safe to run again: each step is skipped when its tool is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: Node.js and npm (JavaScript policies, the SARIF Multitool),
# minisign (signature interop both ways), b3sum (the seal benchmark's comparison).
missing=()
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
command -v minisign >/dev/null || missing+=(minisign)
command -v b3sum >/dev/null || missing+=(b3sum)
# C policies (tests/all/conformance.rs, tests/all/polyglot.rs): clang, wasm-ld,
# wasi-libc and compiler-rt's wasm32 builtins, by their Debian 12 package names
# (clang 14; checked with `apt-cache policy`). Checked per package: a machine with
# clang but without wasi-libc must still get it.
for pkg in clang lld wasi-libc libclang-rt-dev-wasm32; do
    [[ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" == *"ok installed" ]] || missing+=("$pkg")
done
if ((${#missing[@]})); then
    echo "== installing ${missing[*]} (Debian)"
    apt-get update && apt-get install -y --no-install-recommends "${missing[@]}"
fi

echo "== report validators (tests/all/reports.rs)"
# The SARIF Multitool (npm, a self-contained binary: no .NET runtime needed) and a
# Python venv with junitparser and jsonschema, all under tests/tools/. npm does not
# run the package's postinstall (which only marks the binary executable).
npm ci --prefix tests/tools --no-audit --no-fund
chmod u+x tests/tools/node_modules/@microsoft/sarif-multitool-linux/Sarif.Multitool
[ -x tests/tools/.venv/bin/python ] || python3 -m venv tests/tools/.venv
tests/tools/.venv/bin/pip install --quiet -r tests/tools/requirements.txt

echo "== guest toolchains (tests/all/conformance.rs, tests/all/polyglot.rs)"
# Python policies: componentize-py (PyPI). JavaScript policies: componentize-js
# (npm, pinned by guest-sdk/js/package-lock.json, in guest-sdk/js/node_modules,
# where `provkey build` finds it). C policies: the Debian packages above; no
# wit-bindgen or wasm-tools CLI (the bindings are checked in, the component is
# made in-process).
command -v componentize-py >/dev/null || python3 -m pip install --quiet componentize-py==0.25.1
npm ci --prefix guest-sdk/js --no-audit --no-fund

echo "== tests"
cargo test --workspace --locked
cargo test --manifest-path policies/Cargo.toml --locked
