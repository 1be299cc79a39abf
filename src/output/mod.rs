//! The only place that writes to stdout and stderr: command reports, errors, progress lines.
//! Every line it prints passes [`guard_line`]: no raw control character and no line that
//! GitHub's runner would take as a workflow command (`::` at its start, `##[` anywhere), and
//! every JSON document passes [`legacy_commands::JsonGuard`], whatever a tenant or module wrote.
use crate::error::Error;
use std::borrow::Cow;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

mod json;
mod legacy_commands;

/// The version of every JSON object a command prints (`schema_version`): raised when a
/// document changes incompatibly (a field removed or changing meaning), never for additions.
pub const JSON_SCHEMA_VERSION: u64 = 1;

/// How much goes to stderr besides the result and errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    /// `-q`: nothing but errors.
    Quiet = 0,
    /// Progress lines and notes.
    Normal = 1,
    /// `-v` or `PLATFORM_LOG=debug`: debug lines too.
    Debug = 2,
}

static VERBOSITY: AtomicU8 = AtomicU8::new(Verbosity::Normal as u8);

/// `--json` was asked for: [`Report::of`] renders only the view that will be printed.
static JSON: AtomicBool = AtomicBool::new(false);
/// A job summary will be written (`$GITHUB_STEP_SUMMARY` names a file).
static SUMMARY: AtomicBool = AtomicBool::new(false);

/// Which views will be shown: set once by the dispatcher, before the command runs.
pub fn set_views(json: bool, job_summary: bool) {
    JSON.store(json, Ordering::Relaxed);
    SUMMARY.store(job_summary, Ordering::Relaxed);
}

fn wants_json() -> bool {
    JSON.load(Ordering::Relaxed)
}

impl Verbosity {
    /// From the flags, else `PLATFORM_LOG` (`debug`, `info`, `quiet`; anything else is the
    /// default, with a warning, so a typo never silences errors).
    pub fn from_flags(
        quiet: bool,
        verbose: bool,
        env: Option<&str>,
    ) -> (Verbosity, Option<String>) {
        if quiet {
            return (Verbosity::Quiet, None);
        }
        if verbose {
            return (Verbosity::Debug, None);
        }
        match env.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            None | Some("") | Some("info") => (Verbosity::Normal, None),
            Some("debug") | Some("trace") => (Verbosity::Debug, None),
            Some("quiet") | Some("error") | Some("off") => (Verbosity::Quiet, None),
            Some(other) => (
                Verbosity::Normal,
                Some(format!(
                    "warning: PLATFORM_LOG={} is not one of debug, info, quiet; using info",
                    untrusted(other)
                )),
            ),
        }
    }
}

/// Set once by the dispatcher, before the command runs.
pub fn set_verbosity(v: Verbosity) {
    VERBOSITY.store(v as u8, Ordering::Relaxed);
}

fn verbosity_at_least(v: Verbosity) -> bool {
    VERBOSITY.load(Ordering::Relaxed) >= v as u8
}

/// A debug line on stderr (`debug: ...`), when `-v` or `PLATFORM_LOG=debug` asked for them.
/// Takes a closure so a line nobody reads costs nothing to format.
pub fn debug(line: impl FnOnce() -> String) {
    if verbosity_at_least(Verbosity::Debug) {
        to_stderr(&guard_text(&format!("debug: {}", line()), false));
    }
}

/// A JSON object as a command prints it: with `schema_version` (arrays and scalars as they are).
pub fn versioned(mut value: serde_json::Value) -> serde_json::Value {
    if let Some(obj) = value.as_object_mut() {
        obj.entry("schema_version")
            .or_insert(serde_json::Value::from(JSON_SCHEMA_VERSION));
    }
    value
}

/// Escape an untrusted string (a tenant's value, a module's message) for one line of text:
/// every control character, including newlines, and the bidirectional-override characters
/// that reorder what a terminal shows, become visible escapes (`\n`, `\u{1b}`).
pub fn untrusted(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        push_escaped(&mut out, c);
    }
    Cow::Owned(out)
}

/// A control character, a bidirectional override, isolate or mark (U+202A–U+202E,
/// U+2066–U+2069, U+200E, U+200F, U+061C), or a Unicode line or paragraph separator (U+2028,
/// U+2029: a browser, GitHub's log view or a line splitter breaks the line there, so a
/// module's message could show a row of its own): what reorders, rewrites or splits what a
/// reader sees.
pub(crate) fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{061c}'
                | '\u{2028}'
                | '\u{2029}'
        )
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if needs_escape(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
        c => out.push(c),
    }
}

/// One line as it may be printed: control characters (but tabs) escaped, and a line that
/// would start a GitHub workflow command (`::` after optional whitespace) prefixed with `\`
/// so the runner shows it instead of running it. `commands` allows `::` for the annotations
/// the platform itself writes (their data is escaped by GitHub's own rules).
pub fn guard_line(line: &str, commands: bool) -> Cow<'_, str> {
    match legacy_commands::escape_text(line) {
        Cow::Borrowed(line) => guard_plain(line, commands),
        Cow::Owned(line) => Cow::Owned(guard_plain(&line, commands).into_owned()),
    }
}

/// [`guard_line`] of a line without `##[`.
fn guard_plain(line: &str, commands: bool) -> Cow<'_, str> {
    let starts_command = !commands && line.trim_start().starts_with("::");
    if !starts_command && !line.chars().any(|c| c != '\t' && needs_escape(c)) {
        return Cow::Borrowed(line);
    }
    let mut out = String::with_capacity(line.len() + 8);
    if starts_command {
        out.push('\\');
    }
    for c in line.chars() {
        if c == '\t' {
            out.push(c);
        } else {
            push_escaped(&mut out, c);
        }
    }
    Cow::Owned(out)
}

/// Every line of `text` through [`guard_line`], joined with newlines again.
pub fn guard_text(text: &str, commands: bool) -> String {
    text.split('\n')
        .map(|l| guard_line(l, commands))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A command's outcome, one value for every view: `--json` is its serde form, and the text
/// and the job summary are rendered from that same value, never from a second computation.
pub trait View: serde::Serialize {
    /// The view for people.
    fn text(&self) -> String;
    /// 0, or 1 when the command ran and found a failure (an error is an `Err` instead).
    fn exit_code(&self) -> u8 {
        0
    }
    /// Lines for stderr, printed before the report: repairs a writer made, what a reader saw.
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }
    /// Markdown for the GitHub Actions job summary, for the commands that write one.
    fn summary(&self) -> Option<String> {
        None
    }
}

/// What a command produced: the same data rendered for people (`text`) or machines (`json`).
pub struct Report {
    pub exit_code: u8,
    pub text: String,
    /// The text is GitHub workflow annotations the platform wrote (`--format github`).
    pub annotations: bool,
    /// The `--json` document (empty when the text was asked for).
    pub json: Json,
    /// Lines for stderr (warnings, notes) printed before the report.
    pub notes: Vec<String>,
    /// Markdown the dispatcher appends to the job summary (`$GITHUB_STEP_SUMMARY`).
    pub summary: Option<String>,
    /// The text is a file the platform generated (a completion script, a man page): printed
    /// byte for byte, since nothing in it came from a tenant or a module.
    pub verbatim: bool,
}

/// A report's `--json` document: printed already, or to be written from the outcome itself.
pub enum Json {
    Rendered(String),
    /// Writes the document to stdout when it is printed ([`Report::owned`]).
    Deferred(Box<WriteJson>),
}

/// Writes a `--json` document to the writer given.
pub type WriteJson = dyn Fn(&mut dyn Write) -> serde_json::Result<()>;

impl Report {
    /// A report whose JSON object gets `schema_version`.
    pub fn new(text: impl Into<String>, json: serde_json::Value) -> Self {
        Self::document(text, versioned(json))
    }
    /// A report whose JSON is a document of its own format (a JSON Schema), printed as it is.
    pub fn document(text: impl Into<String>, json: serde_json::Value) -> Self {
        let json = serde_json::to_string_pretty(&json).unwrap_or_else(|_| "null".into());
        Report {
            exit_code: 0,
            text: text.into(),
            annotations: false,
            json: Json::Rendered(json),
            notes: Vec::new(),
            summary: None,
            verbatim: false,
        }
    }
    /// A generated file for stdout, printed as it is (no JSON form).
    pub fn verbatim(text: impl Into<String>) -> Self {
        Report {
            verbatim: true,
            ..Self::document(text, serde_json::Value::Null)
        }
    }
    /// The views of an outcome that will be shown, each rendered once: the JSON document or
    /// the text (not both: at W = 10,000 work orders each is megabytes), and the job
    /// summary only where GitHub reads one. The JSON is written straight from the outcome
    /// ([`json::versioned_pretty`]): the bytes a `serde_json::Value` of it printed.
    pub fn of(view: &impl View) -> Self {
        let json = wants_json().then(|| json_document(view));
        Self::views(view, Json::Rendered(json.unwrap_or_default()))
    }
    /// [`Report::of`] for an outcome too large to hold twice (a pass over every work order):
    /// the report keeps it and streams its JSON to stdout when printed ([`json::to_writer`]).
    pub fn owned(view: impl View + 'static) -> Self {
        let mut report = Self::views(&view, Json::Rendered(String::new()));
        if wants_json() {
            report.json = Json::Deferred(Box::new(move |out| json::to_writer(out, &view)));
        }
        report
    }
    fn views(view: &impl View, json: Json) -> Self {
        let json_only = wants_json();
        Report {
            exit_code: view.exit_code(),
            text: if json_only {
                String::new()
            } else {
                view.text()
            },
            annotations: false,
            json,
            notes: view.notes(),
            summary: SUMMARY
                .load(Ordering::Relaxed)
                .then(|| view.summary())
                .flatten(),
            verbatim: false,
        }
    }
    pub fn exit(mut self, code: u8) -> Self {
        self.exit_code = code;
        self
    }
    /// Mark the text as workflow annotations (lines starting with `::` are meant).
    pub fn annotations(mut self) -> Self {
        self.annotations = true;
        self
    }
    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }
}

/// A value as the pretty JSON document `--json` prints: an object's keys sorted whatever
/// the struct's field order, `schema_version` added to a top-level object without one.
pub fn json_document(value: &(impl serde::Serialize + ?Sized)) -> String {
    json::versioned_pretty(value)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .unwrap_or_else(|| "null".into())
}

/// Print a report as JSON (one document) or as text.
pub fn print_report(report: &Report, json: bool) {
    if verbosity_at_least(Verbosity::Normal) {
        for note in &report.notes {
            to_stderr(&guard_text(note, false));
        }
    }
    let mut out = std::io::BufWriter::with_capacity(64 << 10, std::io::stdout().lock());
    if report.verbatim && !json {
        let _ = out.write_all(report.text.as_bytes());
        let _ = out.flush();
        return;
    }
    // Text lines were guarded already (`##[` shown as `##\[`): the guard leaves them as they are.
    let mut out = legacy_commands::JsonGuard::new(out);
    let body = match (&report.json, json) {
        (Json::Deferred(write), true) => {
            if write(&mut out).is_err() {
                // The stream broke off (a closed pipe); nothing more can be said there.
                return;
            }
            let _ = writeln!(out);
            let _ = out.flush();
            return;
        }
        (Json::Rendered(document), true) => Cow::Borrowed(document.as_str()),
        (_, false) => Cow::Owned(guard_text(&report.text, report.annotations)),
    };
    if !body.is_empty() {
        let _ = writeln!(out, "{}", body.trim_end_matches('\n'));
    }
    let _ = out.flush();
}

/// Print an error to stderr in the `error: / --> / help:` shape.
pub fn print_error(err: &Error) {
    to_stderr(&guard_text(&unsecret(&err.to_string()), false));
}

/// A `help:` line on stderr of its own (after an error the argument parser printed).
pub fn print_help_line(help: &str) {
    to_stderr(&format!("help: {help}"));
}

/// `text` with every secret value the process holds masked. An error can quote what a peer
/// said (a server echoing the request's `Authorization` header): whatever a command's error
/// carries, no secret leaves this way (SPEC §6).
fn unsecret(text: &str) -> String {
    crate::redact::Redactor::new(crate::secrets::all_values()).redact(text)
}

/// One line on stderr. A closed stream (a reader that went away: `2>&1 | head`) is not an
/// error of the command: `eprintln!` would panic and exit 101 instead of the command's code.
fn to_stderr(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// An error as the one JSON document a `--json` caller expects on stdout.
pub fn print_error_json(err: &Error) {
    let doc = serde_json::json!({
        "schema_version": JSON_SCHEMA_VERSION,
        "error": {
            "message": unsecret(&err.message),
            "location": err.location.as_deref().map(unsecret),
            "help": unsecret(&err.help_line()),
            "topic": err.explain_topic(),
            "exit_code": err.exit_code(),
        }
    });
    let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    // As for stderr: a closed stdout leaves the exit code the error's.
    let _ = writeln!(
        legacy_commands::JsonGuard::new(std::io::stdout().lock()),
        "{text}"
    );
}

/// One progress line on stderr (long-running commands).
pub fn progress(line: &str) {
    if verbosity_at_least(Verbosity::Normal) {
        to_stderr(&guard_text(line, false));
    }
}

/// Progress for a long pass: one line per event on stderr, and a spinner with a count when
/// stderr is a terminal (never in CI logs or when redirected).
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    pub fn new(what: &str) -> Self {
        use std::io::IsTerminal;
        let shown = verbosity_at_least(Verbosity::Normal);
        let bar = (shown && std::io::stderr().is_terminal()).then(|| {
            let pb = indicatif::ProgressBar::new_spinner();
            pb.set_style(
                indicatif::ProgressStyle::with_template("{spinner} {prefix} {elapsed}  {wide_msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            pb.set_prefix(what.to_string());
            pb.enable_steady_tick(std::time::Duration::from_millis(120));
            pb
        });
        Progress { bar }
    }
    /// Print a line (above the spinner when there is one), whole.
    pub fn line(&self, line: &str) {
        if !verbosity_at_least(Verbosity::Normal) {
            return;
        }
        let line = guard_text(line, false);
        let line = line.as_str();
        match &self.bar {
            Some(pb) => pb.println(line),
            // One write per line (stderr is unbuffered: `writeln!` made two), under the
            // lock: lines from several threads never mix.
            None => {
                let mut whole = String::with_capacity(line.len() + 1);
                whole.push_str(line);
                whole.push('\n');
                let _ = std::io::stderr().lock().write_all(whole.as_bytes());
            }
        }
    }

    /// The status next to the spinner (a terminal only; nothing otherwise).
    pub fn status(&self, status: &str) {
        if let Some(pb) = &self.bar {
            pb.set_message(guard_text(status, false));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untrusted_strings_stay_on_one_visible_line() {
        assert_eq!(untrusted("plain"), "plain");
        assert_eq!(
            untrusted("a\nb\r\x1b[0m\u{202e}"),
            r"a\nb\r\u{1b}[0m\u{202e}"
        );
    }

    #[test]
    fn lines_never_start_a_workflow_command() {
        assert_eq!(guard_line("::error::x", false), r"\::error::x");
        assert_eq!(guard_line("  ::add-mask::x", false), r"\  ::add-mask::x");
        assert_eq!(guard_line("::error file=a::m", true), "::error file=a::m");
        assert_eq!(guard_line("a\tb", false), "a\tb");
        assert_eq!(
            guard_text("ok\n::stop-commands::t", false),
            "ok\n\\::stop-commands::t"
        );
    }

    #[test]
    fn control_characters_are_shown_not_obeyed() {
        assert_eq!(untrusted("INV-1"), "INV-1");
        assert_eq!(
            untrusted("a\r\n9999  TOPUP\u{1b}[2J\u{85}é"),
            "a\\r\\n9999  TOPUP\\u{1b}[2J\\u{85}é"
        );
    }
}
