//! `drover agent`: run an agent (being written; see crates/agent).

use std::process::ExitCode;

use clap::Args;

/// Arguments of `drover agent`.
#[derive(Args)]
pub struct AgentArgs {}

/// Runs `drover agent`.
pub fn run(_args: AgentArgs) -> ExitCode {
    eprintln!("error: drover agent is not built yet");
    ExitCode::from(2)
}
