//! The `platform` binary: parse argv, run, print the error, exit with its code.
use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
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
