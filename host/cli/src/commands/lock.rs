//! `provkey lock`: resolve the policy set file (`provkey.toml`) and write
//! `provkey.lock` beside it: the blake3 digest and resolved source of every
//! component, and the version, digest and publisher of every organization set.

use std::path::PathBuf;

use clap::Args;

use crate::exit::{CliError, CliResult, Exit};
use crate::policy_set::{self, PolicySetContext, fetch::ComponentCache, review};

#[derive(Args, Debug)]
pub struct LockArgs {
    /// The policy set file.
    #[arg(long = "policy-set", value_name = "FILE", default_value = policy_set::SET_FILE_NAME)]
    pub policy_set: PathBuf,
    /// The trust root that verifies organization sets (default: `trust = …` of the file).
    #[arg(long, value_name = "TRUST_ROOT")]
    pub trust: Option<PathBuf>,
    /// Where fetched components are cached [default: $PROVKEY_CACHE_DIR or the user cache dir].
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Cache nothing.
    #[arg(long)]
    pub no_cache: bool,
    /// Accept an organization set version lower than the one `provkey.lock` already
    /// records (a deliberate downgrade, to review in the lock file's diff).
    #[arg(long)]
    pub allow_downgrade: bool,
}

pub fn execute(args: LockArgs) -> CliResult<Exit> {
    let ctx = PolicySetContext::load(&args.policy_set)?;
    let cache_dir = if args.no_cache {
        None
    } else {
        args.cache_dir
            .clone()
            .or_else(provkey_runtime::CompileCache::default_dir)
    };
    let resolved = policy_set::resolve(
        &ctx,
        args.trust.as_deref(),
        &ComponentCache::new(cache_dir),
        None,
    )?;
    let lock = resolved.to_lock(&ctx);
    let path = ctx.lock_path();
    // The lock file is the floor: it travels with the repository, so a machine that
    // never saw the newer set (no local record) still refuses to go back.
    if !args.allow_downgrade && path.exists() {
        let previous = policy_set::Lock::read(&path)?;
        for set in &lock.set {
            if let Some(old) = previous.set.iter().find(|old| old.name == set.name)
                && set.version < old.version
            {
                return Err(CliError::bad_input(anyhow::anyhow!(
                    "set `{}` from `{}` is version {}, lower than version {} recorded in `{}`: \
                     refusing a downgrade; nothing was written",
                    set.name,
                    set.source,
                    set.version,
                    old.version,
                    path.display()
                ))
                .with_help(
                    "ask the publisher for the current version, or pass `--allow-downgrade` \
                     to lower it deliberately (and review the lock file's diff)",
                ));
            }
        }
    }
    review::write_atomic(&path, lock.to_text()?.as_bytes())?;
    for set in &lock.set {
        println!(
            "set {} version {} from `{}` (signed by {}, blake3 {})",
            set.name, set.version, set.source, set.publisher, set.blake3
        );
    }
    for policy in &lock.policy {
        println!("  {:<24} {}  {}", policy.id, policy.blake3, policy.source);
    }
    println!(
        "locked {} polic{} into `{}`",
        lock.policy.len(),
        if lock.policy.len() == 1 { "y" } else { "ies" },
        path.display()
    );
    Ok(Exit::Pass)
}
