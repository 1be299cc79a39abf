//! The `platform` binary: parse argv, run, print the error, exit with its code.
use clap::Parser;
use std::process::ExitCode;

/// musl's allocator made the static release binaries' passes 1.2-1.3x slower than a glibc
/// build (their workers allocate on every step); jemalloc brings them level
/// (docs/performance.md, "The release binaries' allocator").
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    // The zygote that forks each step's supervisor is this binary too (hidden, not a CLI
    // command), started with an empty environment: nothing to capture, no CLI to parse.
    #[cfg(target_os = "linux")]
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == platform::runner::zygote::ARG)
    {
        return platform::runner::zygote::main();
    }
    // First, while the process has one thread: secrets move into the store and out of reach.
    platform::secrets::capture_and_scrub();
    // glibc gives each thread an arena of its own by default, and memory freed in one is not
    // reused by another: with `--jobs` workers that was 15 MiB more peak RSS at W = 10,000.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt sets an allocator parameter; no thread allocates concurrently yet.
    #[allow(unsafe_code)]
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
    let cli = match platform::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return parse_error(e),
    };
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Err(err) = platform::cli::flag_as_value::check(&args) {
        platform::output::print_error(&err);
        if asks_for_json() {
            platform::output::print_error_json(&err);
        }
        return ExitCode::from(err.exit_code());
    }
    let json = cli.wants_json();
    let result = platform::run(cli);
    #[cfg(target_os = "linux")]
    platform::runner::stop();
    match result {
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

/// An argument the parser refused (exit 2): printed by clap on stderr, and, when the command
/// line asks for `--json` (or `--format json`), also as the one JSON document on stdout that
/// scripts read (SPEC §3). Help and version requests print and exit 0 as usual.
fn parse_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        e.exit();
    }
    let _ = e.print();
    let rendered = e.render().to_string();
    let message = rendered
        .lines()
        .next()
        .unwrap_or_default()
        .trim_start_matches("error: ")
        .to_string();
    let err = platform::error::Error::input(message)
        .help("run the command with --help for its flags and values");
    // SPEC §10: an error's help names its topic, the parser's too (clap printed the rest).
    platform::output::print_help_line(&format!(
        "`platform explain {}` says more",
        err.explain_topic()
    ));
    if asks_for_json() {
        platform::output::print_error_json(&err);
    }
    ExitCode::from(2)
}

/// Whether the command line, as typed, asks for `--json` (or `--format json`): for errors
/// found before (or instead of) a parsed command says so.
fn asks_for_json() -> bool {
    // `std::env::args` panics on an argument that is not UTF-8 (often the one clap refused);
    // only the ASCII `--json`/`--format json` spellings are looked for, so lossy is exact.
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    args.iter().enumerate().any(|(i, a)| {
        a == "--json"
            || a == "--format=json"
            || (a == "--format" && args.get(i + 1).is_some_and(|v| v == "json"))
    })
}
