"""Native tests: `python -m unittest` (no Wasm involved)."""

import pathlib
import unittest

from provkey_policy import InvalidConfig, test_plan

from app import MyPolicy

PLAN = test_plan((pathlib.Path(__file__).parent / "fixtures" / "plan.json").read_text())


class MyPolicyTest(unittest.TestCase):
    def test_public_and_unknown_acls_are_reported(self):
        findings = MyPolicy().run(PLAN)
        self.assertEqual([f.address for f in findings],
                         ["aws_s3_bucket.public", "aws_s3_bucket.later"])
        self.assertEqual(findings[0].enforcement, "hard-mandatory")
        self.assertEqual(findings[0].message,
                         "`aws_s3_bucket.public` would be public (ACL `public-read`)")
        self.assertEqual(findings[1].enforcement, "advisory")

    def test_unknown_configuration_fields_are_refused(self):
        with self.assertRaises(InvalidConfig):
            MyPolicy().run(PLAN, '{"typo": 1}')


if __name__ == "__main__":
    unittest.main()
