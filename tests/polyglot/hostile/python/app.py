"""A hostile policy in Python for the hostile campaign (tests/tools/hostile-campaign.sh).

The config's `mode` picks the misbehaviour; the host must contain every one."""

import sys
import time

from provkey_policy import Enforcement, Failed, Finding, Policy, Rule, Severity, export

NOISE = Rule("noise", "Findings made on purpose.", Severity.LOW, Enforcement.ADVISORY)


def recurse(depth):
    return recurse(depth + 1) + 1


class Hostile(Policy):
    id = "hostile-py"
    version = "0.1.0"
    description = "Misbehaves in the way the config's `mode` names."
    rules = [NOISE]

    def evaluate(self, plan, config):
        mode = config.get_str("mode") or "pass"
        changes = list(plan.changes_where(lambda c: True))
        first = changes[0]
        if mode == "loop":
            while True:
                pass
        if mode == "memory":
            hoard = []
            while True:
                hoard.append(bytearray(1 << 20))
        if mode == "recursion":
            sys.setrecursionlimit(10 ** 9)
            recurse(0)
        if mode == "trap":
            raise RuntimeError("thrown on purpose")
        if mode == "oversized":
            return [Finding(NOISE, first, message="x" * (64 << 20))]
        if mode == "many":
            return [Finding(NOISE, first, message="finding %d" % i) for i in range(1_000_000)]
        if mode == "undeclared-rule":
            return [Finding(Rule("undeclared", "Not declared.", Severity.LOW,
                                 Enforcement.ADVISORY), first, message="undeclared")]
        if mode == "unknown-address":
            finding = Finding(NOISE, first, message="nowhere")
            finding.address = "aws_instance.nowhere"
            return [finding]
        if mode == "error":
            raise Failed("failed on purpose")
        if mode == "leak-sensitive":
            secret = first.after_at("/password")
            return [Finding(NOISE, first, message="the password is %s" % secret.value)]
        if mode == "sleep":
            time.sleep(3600)
        if mode == "chatty":
            while True:
                sys.stderr.write("noise " * 1000 + "\n")
        return []


PolicyApi = export(Hostile())
