//! The only place that writes to stdout and stderr: command reports, errors, progress lines.
use crate::error::Error;
use std::io::Write;

/// What a command produced: the same data rendered for people (`text`) and machines (`json`).
#[derive(Debug, Clone)]
pub struct Report {
    pub exit_code: u8,
    pub text: String,
    pub json: serde_json::Value,
    /// Lines for stderr (warnings, notes) printed before the report.
    pub notes: Vec<String>,
}

impl Report {
    pub fn new(text: impl Into<String>, json: serde_json::Value) -> Self {
        Report {
            exit_code: 0,
            text: text.into(),
            json,
            notes: Vec::new(),
        }
    }
    pub fn exit(mut self, code: u8) -> Self {
        self.exit_code = code;
        self
    }
    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }
}

/// Print a report as JSON (one document) or as text.
pub fn print_report(report: &Report, json: bool) {
    for note in &report.notes {
        eprintln!("{note}");
    }
    let mut out = std::io::stdout().lock();
    let body = if json {
        serde_json::to_string_pretty(&report.json).unwrap_or_else(|_| "null".into())
    } else {
        report.text.clone()
    };
    if !body.is_empty() {
        let _ = writeln!(out, "{}", body.trim_end_matches('\n'));
    }
    let _ = out.flush();
}

/// Print an error to stderr in the `error: / --> / help:` shape.
pub fn print_error(err: &Error) {
    eprintln!("{err}");
}

/// An error as the one JSON document a `--json` caller expects on stdout.
pub fn print_error_json(err: &Error) {
    let doc = serde_json::json!({
        "error": {
            "message": err.message,
            "location": err.location,
            "help": err.help,
            "exit_code": err.exit_code(),
        }
    });
    println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
}

/// One progress line on stderr (long-running commands).
pub fn progress(line: &str) {
    eprintln!("{line}");
}

/// Progress for a long pass: one line per event on stderr, and a spinner with a count when
/// stderr is a terminal (never in CI logs or when redirected).
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    pub fn new(what: &str) -> Self {
        use std::io::IsTerminal;
        let bar = std::io::stderr().is_terminal().then(|| {
            let pb = indicatif::ProgressBar::new_spinner();
            pb.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} {prefix} {pos} done  {elapsed}  {wide_msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            pb.set_prefix(what.to_string());
            pb.enable_steady_tick(std::time::Duration::from_millis(120));
            pb
        });
        Progress { bar }
    }
    /// Print a line (above the spinner when there is one) and count it.
    pub fn line(&self, line: &str) {
        match &self.bar {
            Some(pb) => {
                pb.println(line);
                pb.inc(1);
                pb.set_message(line.to_string());
            }
            None => eprintln!("{line}"),
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(pb) = &self.bar {
            pb.finish_and_clear();
        }
    }
}

/// Untrusted text made safe for one line of terminal or log output: every control character
/// (newline, carriage return, escape sequences, C1 controls) is shown as an escape such as
/// `\n` or `\u{1b}`, so no field can start a new row or line, or drive the terminal.
pub fn escape_control(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::escape_control;

    #[test]
    fn control_characters_are_shown_not_obeyed() {
        assert_eq!(escape_control("INV-1"), "INV-1");
        assert_eq!(
            escape_control("a\r\n9999  TOPUP\u{1b}[2J\u{85}é"),
            "a\\r\\n9999  TOPUP\\u{1b}[2J\\u{85}é"
        );
    }
}
