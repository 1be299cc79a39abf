//! The `platform` binary: parse argv, run, print the error, exit with its code.
use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // A step's supervisor is this binary too (hidden, not a CLI command): its environment is
    // the module's, declared secrets included, so it must not go through the capture below.
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == "__supervise")
    {
        return platform::runner::supervisor::main();
    }
    // First, while the process has one thread: secrets move into the store and out of reach.
    platform::secrets::capture_and_scrub();
    let cli = platform::cli::Cli::parse();
    let json = cli.wants_json();
    match platform::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            platform::output::print_error(&err);
            if json {
                platform::output::print_error_json(&err);
            }
            ExitCode::from(err.exit_code())
        }
    }
}
