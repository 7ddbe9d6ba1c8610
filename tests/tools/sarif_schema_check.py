"""Validates SARIF files against the SARIF 2.1.0 JSON schema that ships with the
SARIF Multitool (node_modules/@microsoft/sarif-multitool-linux/sarif-2.1.0.json),
with the `jsonschema` package: prints each error and exits 1 if there is any.

Usage: python sarif_schema_check.py SCHEMA FILE.sarif..."""

import json
import sys

import jsonschema

schema = json.load(open(sys.argv[1], encoding="utf-8"))
validator = jsonschema.validators.validator_for(schema)(schema)
failed = False
for path in sys.argv[2:]:
    log = json.load(open(path, encoding="utf-8"))
    for error in sorted(validator.iter_errors(log), key=lambda e: list(e.absolute_path)):
        failed = True
        where = "/".join(str(p) for p in error.absolute_path)
        print(f"{path}: {where}: {error.message}")
sys.exit(1 if failed else 0)
