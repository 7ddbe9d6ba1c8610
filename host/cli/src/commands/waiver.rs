//! `provkey waiver sign FILE --key APPROVER_KEY`: an approver signs a waivers file
//! (`FILE.minisig`). The file lists exceptions, each scoped to a policy, a rule and a
//! resource address or pattern, with a reason, an owner and an expiry date.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::key::{PasswordArgs, load_secret_key};
use crate::exit::{CliResult, Exit};
use crate::policy_set::review;

#[derive(Subcommand)]
pub enum WaiverCommand {
    /// Sign a waivers file with an approver key (writes `FILE.minisig`).
    Sign(SignArgs),
}

#[derive(Args)]
pub struct SignArgs {
    /// The waivers file (TOML, `[[waiver]]` entries).
    pub file: PathBuf,
    /// The approver's secret key.
    #[arg(long, value_name = "APPROVER_KEY")]
    pub key: PathBuf,
    #[command(flatten)]
    pub password: PasswordArgs,
}

pub fn execute(command: WaiverCommand) -> CliResult<Exit> {
    match command {
        WaiverCommand::Sign(args) => {
            let key = load_secret_key(&args.key, &args.password)?;
            let out = review::sign_waivers(&args.file, &key)?;
            println!(
                "signed `{}` with approver key {}: `{}`",
                args.file.display(),
                key.public().key_id_hex(),
                out.display()
            );
            Ok(Exit::Pass)
        }
    }
}
