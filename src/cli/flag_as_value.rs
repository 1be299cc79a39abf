//! A flag's own name given where a value goes (`--tenant-id --json`) is refused, not taken as the value.
use clap::CommandFactory;
use std::ffi::OsString;

/// The value flags take values that start with `-` (`--note "-5 credits"`, SPEC §3), so
/// the parser alone would take `--json` in `balance --tenant-id --json` as the tenant and
/// fail on "unknown tenant --json", or record a note "--quiet". A word that is one of the
/// command's own flags is almost surely a forgotten value: say so. `--flag=--json` still
/// gives such a value on purpose.
pub fn check(args: &[OsString]) -> Result<(), crate::error::Error> {
    let mut cmd = super::Cli::command();
    cmd.build();
    let mut current = &cmd;
    let words: Vec<String> = args
        .iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut i = 0;
    while i < words.len() {
        let word = &words[i];
        if word == "--" {
            break;
        }
        if let Some(sub) = current.find_subcommand(word) {
            current = sub;
        } else if let Some(arg) = long_arg(current, word) {
            // `--flag=value` holds its value; `--flag value` takes the next word.
            if arg.get_action().takes_values() && !word.contains('=') {
                let next = words.get(i + 1);
                let is_flag = |n: &&String| long_arg(current, n).is_some() || short_arg(current, n);
                if let Some(next) = next.filter(|n| arg.is_allow_hyphen_values_set() && is_flag(n))
                {
                    return Err(refusal(word, next));
                }
                i += 1; // the value, whatever it is
            }
        }
        i += 1;
    }
    Ok(())
}

/// The argument of `cmd` that `word` names in its long form (`--name` or `--name=value`).
fn long_arg<'a>(cmd: &'a clap::Command, word: &str) -> Option<&'a clap::Arg> {
    let name = word.strip_prefix("--")?;
    let name = name.split_once('=').map_or(name, |(n, _)| n);
    if name.is_empty() {
        return None;
    }
    cmd.get_arguments().find(|a| a.get_long() == Some(name))
}

/// Whether `word` is one of `cmd`'s short flags (`-q`, `-v`).
fn short_arg(cmd: &clap::Command, word: &str) -> bool {
    let mut chars = word.chars();
    match (chars.next(), chars.next(), chars.next()) {
        (Some('-'), Some(c), None) => cmd.get_arguments().any(|a| a.get_short() == Some(c)),
        _ => false,
    }
}

fn refusal(flag: &str, next: &str) -> crate::error::Error {
    crate::error::Error::input(format!(
        "{flag} takes a value, but the word after it, `{next}`, is one of this command's flags"
    ))
    .help(format!(
        "give the value right after {flag} (for example `{flag} VALUE {next}`); a value that \
         really starts with `--` is written `{flag}={next}`"
    ))
}
