;; A core wasm module, not a component: provkey must refuse it as a policy.
(module
  (func (export "evaluate") (result i32)
    i32.const 0))
