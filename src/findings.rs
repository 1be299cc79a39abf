//! Validation findings: what is wrong, in which file, at which field and line.
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One problem found in the repository. `file` is relative to the repository root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub file: String,
    pub field: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
    #[serde(skip)]
    pub severity: Severity,
}

impl Finding {
    pub fn error(
        file: impl Into<String>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Finding {
            file: file.into(),
            field: field.into(),
            message: message.into(),
            line: None,
            column: None,
            severity: Severity::Error,
        }
    }
    pub fn line(mut self, line: Option<usize>) -> Self {
        self.line = line;
        self
    }
    pub fn column(mut self, column: Option<usize>) -> Self {
        self.column = column;
        self
    }
    /// Drafts only warn: the same finding, downgraded.
    pub fn as_warning(mut self) -> Self {
        self.severity = Severity::Warning;
        self
    }
    /// `file:line:col` as far as known.
    pub fn location(&self) -> String {
        match (self.line, self.column) {
            (Some(l), Some(c)) => format!("{}:{l}:{c}", self.file),
            (Some(l), None) => format!("{}:{l}", self.file),
            _ => self.file.clone(),
        }
    }
}

impl Finding {
    /// For commands that must stop on the first problem: an input error at this location.
    pub fn into_error(self) -> crate::Error {
        let loc = self.location();
        let msg = if self.field.is_empty() {
            self.message
        } else {
            format!("{}: {}", self.field, self.message)
        };
        crate::Error::input(msg).at(loc)
    }
}

/// A loaded value, or its first finding as an input error with `help`: for commands that fail
/// closed on a configuration problem.
pub fn fail_closed<T>((value, findings): (T, Vec<Finding>), help: &str) -> crate::Result<T> {
    match findings.into_iter().next() {
        Some(f) => Err(f.into_error().help(help)),
        None => Ok(value),
    }
}
