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
    let cli = platform::cli::Cli::parse();
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
