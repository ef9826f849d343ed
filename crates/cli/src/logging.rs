//! Logs to stderr; `RUST_LOG` chooses what (default: info for drover, warn for the rest).

/// Installs the global log subscriber once.
pub fn init() {
    init_with("warn,master=info,state=info,agent=info,drover=info,lb=info");
}

/// As [`init`], but agents log only warnings by default: `drover hollow-agents` runs
/// thousands of them, whose every task start would otherwise be a line.
pub fn init_quiet_agents() {
    init_with("warn,drover=info");
}

fn init_with(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}
