//! The one error type of the crate: a message, where it happened, what to do, and its exit code.
use std::fmt;
use std::path::Path;

/// Exit codes are part of the interface (docs/exit-codes.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The command ran and found a failure: exit 1.
    Failure,
    /// Usage or input error: exit 2.
    Input,
    /// Denied by IAM: exit 3.
    Denied,
}

impl Kind {
    pub fn exit_code(self) -> u8 {
        match self {
            Kind::Failure => 1,
            Kind::Input => 2,
            Kind::Denied => 3,
        }
    }
}

/// The kinds of error `platform explain error:<name>` explains: the ones where knowing what
/// happened and what to do takes more than one line of help (texts in explain/texts.rs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    LedgerDamaged,
    LedgerConflict,
    BillingRule,
    LockTimeout,
    Denied,
    UnknownTenant,
    StateRefused,
}

impl Topic {
    pub const ALL: [Topic; 7] = [
        Topic::LedgerDamaged,
        Topic::LedgerConflict,
        Topic::BillingRule,
        Topic::LockTimeout,
        Topic::Denied,
        Topic::UnknownTenant,
        Topic::StateRefused,
    ];

    /// Its name after `error:` in `platform explain`.
    pub fn name(self) -> &'static str {
        match self {
            Topic::LedgerDamaged => "ledger_damaged",
            Topic::LedgerConflict => "ledger_conflict",
            Topic::BillingRule => "billing_rule",
            Topic::LockTimeout => "lock_timeout",
            Topic::Denied => "denied",
            Topic::UnknownTenant => "unknown_tenant",
            Topic::StateRefused => "state_refused",
        }
    }

    /// `error:<name>`, as `platform explain` takes it.
    pub fn topic(self) -> String {
        format!("error:{}", self.name())
    }
}

/// An error a user can act on: `error: <message>`, ` --> <location>`, `help: <hint>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub kind: Kind,
    pub message: String,
    /// `file`, `file:line` or `file:line:column`.
    pub location: Option<String>,
    pub help: Option<String>,
    /// The `platform explain` topic of this kind of error, named on the help line.
    pub topic: Option<Topic>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    fn new(kind: Kind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            location: None,
            help: None,
            topic: None,
        }
    }
    /// Bad input or usage: exit 2.
    pub fn input(message: impl Into<String>) -> Self {
        Self::new(Kind::Input, message)
    }
    /// The command ran and found a failure: exit 1.
    pub fn failure(message: impl Into<String>) -> Self {
        Self::new(Kind::Failure, message)
    }
    /// Refused by IAM: exit 3.
    pub fn denied(message: impl Into<String>) -> Self {
        Self::new(Kind::Denied, message)
    }
    /// An I/O error on a path (exit 2: the path is the user's input).
    pub fn io(path: &Path, err: &std::io::Error) -> Self {
        Self::input(format!("{}: {err}", path.display())).at(path.display().to_string())
    }
    pub fn at(mut self, location: impl Into<String>) -> Self {
        self.location = Some(location.into());
        self
    }
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
    /// Name the `platform explain` topic of this kind of error (on the help line).
    pub fn topic(mut self, topic: Topic) -> Self {
        self.topic = Some(topic);
        self
    }
    pub fn exit_code(&self) -> u8 {
        self.kind.exit_code()
    }
    /// The `platform explain` topic of this error: its kind's (`error:<kind>`), or else its exit
    /// code's (`exit:2`). SPEC §10: every error's help names its topic; until 2026-12-04 errors
    /// without a kind of their own named none.
    pub fn explain_topic(&self) -> String {
        match self.topic {
            Some(t) => t.topic(),
            None => format!("exit:{}", self.exit_code()),
        }
    }
    /// The help line as printed: the hint, then the topic that explains more.
    pub fn help_line(&self) -> String {
        let more = format!("`platform explain {}` says more", self.explain_topic());
        match &self.help {
            Some(h) => format!("{h}; {more}"),
            None => more,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error: {}", self.message)?;
        if let Some(loc) = &self.location {
            write!(f, "\n  --> {loc}")?;
        }
        write!(f, "\nhelp: {}", self.help_line())
    }
}

impl std::error::Error for Error {}
