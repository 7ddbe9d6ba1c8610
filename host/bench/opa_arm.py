"""The OPA arm of `provkey-bench compare`: OPA's Go engine (v1.20.2, topdown) from
the PyPI wheel `opa-golib-python-bindings`, whose `libopabridge.so` is a c-shared
build of OPA, loaded with ctypes. No `opa` binary is obtainable here (see
../shared/design/performance.md, section 3).

Evaluates `data.tf.deny` of the benchmark's Rego ($PROVKEY_BENCH_REGO) over the
plan's bytes as given (OPA converts the JSON input to its own values on every
evaluation: that is part of the time, as parsing is for every other arm), and
prints one JSON line like `provkey-bench arm`: median, peak RSS, findings digest.
"""

import argparse
import ctypes
import hashlib
import json
import os
import resource
import statistics
import sys
import time


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--lib", required=True)
    parser.add_argument("--plan", required=True)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--iters", type=int, default=5)
    args = parser.parse_args()

    lib = ctypes.CDLL(args.lib)
    lib.OpaNew.restype = ctypes.c_uint64
    lib.OpaNew.argtypes = []
    lib.OpaFreeString.restype = None
    lib.OpaFreeString.argtypes = [ctypes.c_void_p]
    lib.OpaAddPolicy.restype = ctypes.c_void_p
    lib.OpaAddPolicy.argtypes = [ctypes.c_uint64, ctypes.c_char_p, ctypes.c_char_p]
    lib.OpaEvalDocument.restype = ctypes.c_void_p
    lib.OpaEvalDocument.argtypes = [
        ctypes.c_uint64, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_int,
    ]

    def call(fn, *a):
        ptr = fn(*a)
        if not ptr:
            raise SystemExit("error: the OPA library returned NULL")
        try:
            raw = ctypes.string_at(ptr)
        finally:
            lib.OpaFreeString(ptr)
        envelope = json.loads(raw)
        if envelope.get("error"):
            raise SystemExit(f"error: OPA: {envelope['error']}")
        return envelope

    started = time.perf_counter()
    handle = lib.OpaNew()
    with open(os.environ["PROVKEY_BENCH_REGO"], "rb") as f:
        call(lib.OpaAddPolicy, handle, b"stock.rego", f.read())
    with open(args.plan, "rb") as f:
        plan = f.read()
    setup = time.perf_counter() - started

    times = []
    findings = []
    for i in range(args.warmup + max(args.iters, 1)):
        t = time.perf_counter()
        envelope = call(lib.OpaEvalDocument, handle, b"tf.deny", plan, 0, 0)
        result = envelope.get("result") or []
        deny = result[0]["expressions"][0]["value"] if result else []
        findings = [(f["rule"], f["address"]) for f in deny]
        elapsed = time.perf_counter() - t
        if i >= args.warmup:
            times.append(elapsed * 1e3)

    findings.sort()
    h = hashlib.sha256()
    for rule, address in findings:
        h.update(rule.encode() + b"\0" + address.encode() + b"\xff")
    per_rule = {}
    for rule, _ in findings:
        per_rule[rule] = per_rule.get(rule, 0) + 1
    print(json.dumps({
        "arm": "opa",
        "median_ms": statistics.median(times),
        "times_ms": sorted(times),
        "setup_ms": setup * 1e3,
        "count": len(findings),
        "digest": h.hexdigest()[:16],
        "per_rule": sorted(per_rule.items()),
        "rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }))


if __name__ == "__main__":
    sys.exit(main())
