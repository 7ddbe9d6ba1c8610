// Native tests: `node --test` (no Wasm involved).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { InvalidConfig, run, testPlan } from "./provkey.js";
import { myPolicy } from "./policy.js";

const plan = testPlan(readFileSync(new URL("./fixtures/plan.json", import.meta.url), "utf8"));

test("public and unknown ACLs are reported", () => {
  const findings = run(myPolicy, plan);
  assert.deepEqual(findings.map((f) => f.address), ["aws_s3_bucket.public", "aws_s3_bucket.later"]);
  assert.equal(findings[0].enforcement, "hard-mandatory");
  assert.equal(findings[0].message, "`aws_s3_bucket.public` would be public (ACL `public-read`)");
  assert.equal(findings[1].enforcement, "advisory");
});

test("unknown configuration fields are refused", () => {
  assert.throws(() => run(myPolicy, plan, '{"typo": 1}'), InvalidConfig);
});
