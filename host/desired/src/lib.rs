//! Desired state as code, and the target's recorded state.
//!
//! - [`Desired`]: a desired-state TOML file, parsed, checked and resolved into the
//!   `desired` JSON a planner receives (artifact digests computed from build
//!   outputs, dependencies inferred, configuration digests computed). Errors name
//!   the file, the line and the field.
//! - [`State`]: what the executor records after each apply (lineage, serial,
//!   deployed resources with their artifact and configuration digests); serialized,
//!   the `current` JSON a planner receives.
//! - [`digest`]: the artifact tree digest and the configuration digest, documented
//!   byte for byte so that the executor can reproduce them.
//!
//! # The desired-state file
//!
//! ```toml
//! target = "demo"                    # optional, default "default"
//!
//! [artifact.app]
//! path = "app/v1"                    # a build output, relative to this file:
//!                                    # provkey computes its digest
//! # digest = "blake3:…"              # or pin it (checked against `path` if both)
//! # uri = "registry.example/app:1.2"  # a name only: representable, refused by the
//!                                    # `pinned-artifacts` policy
//!
//! [instance.api]
//! artifact = "app"                   # inferred dependency on artifact.app
//! replace = "destroy-before-create"  # default "create-before-destroy"
//! [instance.api.config]
//! port = 8081
//!
//! [instance.web]
//! artifact = "app"
//! depends_on = ["instance.api"]      # explicit dependencies, by address
//! [instance.web.config]
//! port = 8080
//! [instance.web.files]
//! "etc/web.conf" = "upstream = 127.0.0.1:8081\n"
//! ```
//!
//! # What a plan's `after` holds (provkey's own plans)
//!
//! - an artifact (type `artifact`): `{"name", "digest"?, "uri"?, "path"?}`;
//! - an instance (type `instance`): `{"artifact": {"name", "digest"?, "uri"?},
//!   "config": {…}, "files": {…}, "config_digest": "blake3:…"}`.
//!
//! An artifact's digest is at `/digest`, the artifact an instance runs at
//! `/artifact/digest`; both are absent for a reference by mutable name.
//!
//! This crate links no wasmtime: the executor reads the same formats.

pub mod desired;
pub mod digest;
pub mod state;
pub mod tree;

pub use desired::{
    DESIRED_FORMAT, DESIRED_FORMAT_VERSION, Desired, DesiredError, DesiredResource, Kind,
};
pub use digest::{DigestError, config_digest, is_digest, tree_digest};
pub use state::{STATE_FORMAT, STATE_FORMAT_VERSION, State, StateError, StateResource};
pub use tree::{EntryKind, TreeEntry, TreeListing};
