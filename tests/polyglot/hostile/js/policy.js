// A hostile policy in JavaScript for the hostile campaign
// (tests/tools/hostile-campaign.sh). The config's `mode` picks the
// misbehaviour; the host must contain every one.
import { Enforcement, InvalidInput, Severity, exportPolicy, finding, rule } from "./provkey.js";

const NOISE = rule("noise", "Findings made on purpose.", Severity.LOW, Enforcement.ADVISORY);
const UNDECLARED = rule("undeclared", "Not declared.", Severity.LOW, Enforcement.ADVISORY);

function recurse(depth) {
  return recurse(depth + 1) + 1;
}

export const hostile = {
  id: "hostile-js",
  version: "0.1.0",
  description: "Misbehaves in the way the config's `mode` names.",
  rules: [NOISE],
  evaluate(plan, config) {
    const mode = config.getStr("mode") ?? "pass";
    const first = plan.changes[0];
    switch (mode) {
      case "loop":
        for (;;) { /* spin */ }
      case "memory": {
        const hoard = [];
        for (;;) hoard.push(new Uint8Array(1 << 20).fill(1));
      }
      case "recursion":
        return [recurse(0)];
      case "trap":
        throw new Error("thrown on purpose");
      case "oversized":
        return [finding(NOISE, first, { message: "x".repeat(64 << 20) })];
      case "many":
        return Array.from({ length: 1000000 }, (_, i) => finding(NOISE, first, { message: `finding ${i}` }));
      case "undeclared-rule":
        return [finding(UNDECLARED, first, { message: "undeclared" })];
      case "unknown-address":
        return [{ ...finding(NOISE, first, { message: "nowhere" }), address: "aws_instance.nowhere" }];
      case "error":
        throw new InvalidInput("failed on purpose");
      case "leak-sensitive":
        return [finding(NOISE, first, { message: `the password is ${first.afterAt("/password").value}` })];
      case "sleep": {
        // JavaScript has no blocking sleep: wait on the clock instead.
        const end = Date.now() + 3600 * 1000;
        while (Date.now() < end) { /* wait */ }
        return [];
      }
      case "chatty":
        for (;;) console.error("noise ".repeat(1000));
      default:
        return [];
    }
  },
};

export const policyApi = exportPolicy(hostile);
