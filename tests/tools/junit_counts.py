"""Reads a JUnit XML file with junitparser (independently of provkey) and prints
its counts as JSON: totals and, per suite, tests/failures/errors/skipped and the
names of the failing and erroring cases; and each failing case's message, by name."""

import json
import sys

from junitparser import Error, Failure, JUnitXml, Skipped

xml = JUnitXml.fromfile(sys.argv[1])
out = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0, "suites": {}, "messages": {}}
for suite in xml:
    entry = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0, "failed": [], "errored": []}
    for case in suite:
        entry["tests"] += 1
        for result in case.result:
            name = f"{case.classname}/{case.name}"
            if isinstance(result, Failure):
                entry["failures"] += 1
                entry["failed"].append(name)
                out["messages"][name] = result.message
            elif isinstance(result, Error):
                entry["errors"] += 1
                entry["errored"].append(name)
            elif isinstance(result, Skipped):
                entry["skipped"] += 1
    out["suites"][suite.name] = entry
    for key in ("tests", "failures", "errors", "skipped"):
        out[key] += entry[key]
json.dump(out, sys.stdout, sort_keys=True)
