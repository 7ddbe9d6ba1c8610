//! `provkey plan`: compute a plan from a desired state and the target's current
//! state with a Wasm planner, check it, write it and summarize it.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::anyhow;
use clap::Args;
use provkey_desired::{Desired, State, StateError};
use provkey_plan::{Action, Plan, ReplaceOrder};
use provkey_runtime::{LoadedPlanner, PolicyOrigin, Runtime, RuntimeError};

use crate::commands::check::RuntimeArgs;
use crate::exit::{CliError, CliResult, Exit};

#[derive(Args, Debug)]
pub struct PlanArgs {
    /// The desired state: a TOML file (see the README).
    #[arg(long, value_name = "FILE")]
    pub desired: PathBuf,
    /// The target's current state, as the executor recorded it, or `none` for a
    /// target never deployed. A missing file is an error, never an empty state.
    #[arg(long, value_name = "STATE.json|none")]
    pub state: StateArg,
    /// Where to write the plan (provkey plan JSON). Written atomically.
    #[arg(long, value_name = "PLAN")]
    pub out: PathBuf,
    /// The planner: a component file, or the id of a stock planner
    /// [default: the embedded `provkey-planner`].
    #[arg(long, value_name = "PATH.wasm|ID")]
    pub planner: Option<PathBuf>,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

/// `--state`: a file, or `none`.
#[derive(Debug, Clone)]
pub enum StateArg {
    None,
    File(PathBuf),
}

impl std::str::FromStr for StateArg {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(if s == "none" {
            StateArg::None
        } else {
            StateArg::File(PathBuf::from(s))
        })
    }
}

/// Everything a plan run produced, for commands that go on with the plan.
#[allow(dead_code, reason = "the demo and rollback commands read the rest")]
pub struct PlanRun {
    pub desired: Desired,
    pub state: State,
    pub planner: LoadedPlanner,
    pub plan: Plan,
}

pub fn execute(args: PlanArgs) -> CliResult<Exit> {
    let run = run_plan(
        &args.desired,
        &args.state,
        args.planner.as_deref(),
        &args.runtime,
    )?;
    write_atomically(&args.out, &run.plan)?;
    print_summary(&run, &args.out)
        .map_err(|err| CliError::bad_input(anyhow!("cannot write the summary: {err}")))?;
    Ok(Exit::Pass)
}

/// Reads the desired and current states, runs the planner and checks its plan.
pub fn run_plan(
    desired_path: &Path,
    state_arg: &StateArg,
    planner_arg: Option<&Path>,
    runtime_args: &RuntimeArgs,
) -> CliResult<PlanRun> {
    let desired = Desired::load(desired_path).map_err(|err| {
        let help = err.help().map(str::to_string);
        let mut cli = CliError::bad_input(err);
        cli.help = help;
        cli
    })?;
    let state = read_state(state_arg)?;
    let runtime = runtime_args.build()?;
    let planner = load_planner(&runtime, planner_arg)?;
    let planned = runtime
        .compute_plan(&planner, &desired.to_json(), &state.to_json())
        .map_err(|err| CliError {
            exit: Exit::PolicyFailed,
            error: err.into(),
            help: Some(
                "the planner's plan was refused before anything else saw it: fix the \
                 planner, or run the stock one (omit `--planner`)"
                    .to_string(),
            ),
        })?;
    provkey_exec::work::check_plan_paths(&planned.plan).map_err(|why| CliError {
        exit: Exit::PolicyFailed,
        error: anyhow::anyhow!("the planner's plan cannot be deployed: {why}"),
        help: Some(
            "shorten the instance's file paths (at most 255 bytes a part, 1024 bytes in all)"
                .to_string(),
        ),
    })?;
    tracing::info!(
        planner = %planner.metadata.id,
        elapsed_ms = planned.elapsed.as_millis(),
        "planned {} change(s)",
        planned.plan.changes.len()
    );
    Ok(PlanRun {
        desired,
        state,
        planner,
        plan: planned.plan,
    })
}

fn read_state(arg: &StateArg) -> CliResult<State> {
    let path = match arg {
        StateArg::None => return Ok(State::empty()),
        StateArg::File(path) => path,
    };
    State::load(path).map_err(|err| {
        let help = match &err {
            StateError::Missing { .. } => {
                "for a target never deployed, pass `--state none`; otherwise give the state \
                 file the executor wrote"
            }
            StateError::Empty { .. } | StateError::Syntax { .. } => {
                "the state file is damaged: restore it from the target (an empty or \
                 truncated file is never taken as \"nothing deployed\")"
            }
            _ => "give the state file the executor wrote, or `--state none` for a new target",
        };
        CliError::bad_input(err).with_help(help)
    })
}

fn load_planner(runtime: &Runtime, arg: Option<&Path>) -> CliResult<LoadedPlanner> {
    let stock_id = match arg {
        None => Some(provkey_stock::DEFAULT_PLANNER),
        Some(path) if !path.exists() => path
            .to_str()
            .filter(|id| provkey_stock::find_planner(id).is_some()),
        Some(_) => None,
    };
    let loaded = match (stock_id.and_then(provkey_stock::find_planner), arg) {
        (Some(stock), _) => runtime.load_planner(stock.id, PolicyOrigin::Stock, stock.bytes),
        (None, Some(path)) => runtime.load_planner_file(path),
        (None, None) => {
            return Err(CliError {
                exit: Exit::PolicyFailed,
                error: anyhow!(
                    "the stock planner `{}` is not embedded in this build",
                    provkey_stock::DEFAULT_PLANNER
                ),
                help: None,
            });
        }
    };
    loaded.map_err(|err| match err {
        RuntimeError::Read { path, source } => CliError::bad_input(
            anyhow::Error::new(source).context(format!("cannot read planner `{}`", path.display())),
        )
        .with_help("check the path given to `--planner`"),
        RuntimeError::TooLarge { .. } => CliError::bad_input(err),
        other => CliError {
            exit: Exit::PolicyFailed,
            error: other.into(),
            help: Some(
                "`--planner` takes a component exporting `provkey:plan/planner@0.1.0`".to_string(),
            ),
        },
    })
}

/// Writes the plan beside its destination, syncs it, then renames it into place:
/// a reader sees the old file or the whole new one, never half a plan.
pub fn write_atomically(out: &Path, plan: &Plan) -> CliResult<()> {
    let shown = out.display();
    let json = plan
        .to_json()
        .map_err(|err| CliError::bad_input(anyhow!("cannot serialize the plan: {err}")))?;
    crate::output_file::write(out, format!("{json}\n").as_bytes()).map_err(|err| {
        CliError::bad_input(anyhow::Error::new(err).context(format!("cannot write plan `{shown}`")))
            .with_help("check that the directory of `--out` exists and is writable")
    })
}

fn print_summary(run: &PlanRun, out: &Path) -> std::io::Result<()> {
    let plan = &run.plan;
    let count = |name: &str| {
        plan.changes
            .iter()
            .filter(|c| c.action.name() == name)
            .count()
    };
    let mut stdout = anstream::stdout().lock();
    writeln!(
        stdout,
        "plan for target `{}` by planner `{}` {}: {} to create, {} to replace, {} to destroy, {} unchanged",
        run.desired.target,
        run.planner.metadata.id,
        run.planner.metadata.version,
        count("create"),
        count("replace"),
        count("destroy"),
        count("no-op"),
    )?;
    match run.state.lineage {
        Some(lineage) => writeln!(
            stdout,
            "current state: lineage {lineage}, serial {}",
            run.state.serial
        )?,
        None => writeln!(stdout, "current state: none (a new target)")?,
    }
    let mut step = 0;
    for change in &plan.changes {
        let (sign, detail) = match &change.action {
            Action::NoOp => continue,
            Action::Create => ("+", String::new()),
            Action::Destroy => ("-", String::new()),
            Action::Replace(r) => (
                "±",
                format!(
                    " ({}, {})",
                    r.reason.as_deref().unwrap_or("replace"),
                    match r.order {
                        ReplaceOrder::CreateBeforeDestroy => "create before destroy",
                        ReplaceOrder::DestroyBeforeCreate => "destroy before create",
                    }
                ),
            ),
            other => ("?", format!(" ({})", other.name())),
        };
        step += 1;
        let after = if change.depends_on.is_empty() {
            String::new()
        } else {
            format!("  after {}", change.depends_on.join(", "))
        };
        writeln!(
            stdout,
            "  {step:>3}. {sign} {:<8} {}{detail}{after}",
            change.action.name(),
            change.address
        )?;
    }
    if step == 0 {
        writeln!(stdout, "  nothing to do: the target is as desired")?;
    }
    writeln!(
        stdout,
        "wrote `{}`; next: provkey check --plan {}",
        out.display(),
        out.display()
    )?;
    Ok(())
}
