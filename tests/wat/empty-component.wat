;; A valid component that exports nothing: it does not implement the policy world.
(component)
