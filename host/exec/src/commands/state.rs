//! `provkey-exec state`: print the target's state (what `provkey plan --state` and
//! `provkey seal --state` read), never deployed is exit 1.

use std::path::PathBuf;

use provkey_exec::{Exit, read_state, state_json};

use super::Failure;
use super::out;

#[derive(clap::Args)]
pub struct StateArgs {
    /// The target directory.
    #[arg(long, value_name = "DIR")]
    pub target_dir: PathBuf,
}

pub fn run(args: &StateArgs) -> Result<Exit, Failure> {
    match read_state(&args.target_dir)? {
        Some(state) => {
            out!("{}", state_json(&state.state));
            Ok(Exit::Ok)
        }
        None => Err(Failure {
            code: Exit::Refused,
            message: format!(
                "target `{}` was never deployed: it has no state",
                args.target_dir.display()
            ),
            help: "plan its first deployment with `provkey plan --state none`".into(),
        }),
    }
}
