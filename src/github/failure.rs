//! Why a GitHub call failed: the HTTP status, GitHub's own message and its rate-limit headers, or the transport; whether it may be retried; and the error it becomes, saying what was being done and what to do.
use super::guard::TOKEN_ENV;
use crate::error::Error;
use crate::redact::Redactor;
use http::StatusCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Longest GitHub error body quoted in a message.
const MAX_ERROR_BODY: usize = 4096;

pub(super) fn describe_octocrab_error(e: &octocrab::Error) -> String {
    // The Display of octocrab's service errors is terse; the source chain says what failed
    // (connection refused, timeout, TLS).
    let mut out = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        let t = s.to_string();
        if !out.contains(&t) {
            out.push_str(": ");
            out.push_str(&t);
        }
        src = s.source();
    }
    out
}

pub(super) fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Why one HTTP exchange failed, before it is given its context.
#[derive(Debug)]
pub(super) enum Failure {
    Status {
        status: StatusCode,
        message: String,
        wait: Option<Duration>,
        rate_limited: bool,
        notes: Vec<String>,
    },
    Transport(String),
    Local(Error),
}

impl Failure {
    pub(super) fn from_response(
        status: StatusCode,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> Failure {
        let text = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        };
        let retry_after = text("retry-after")
            .and_then(|v| v.parse::<u64>().ok())
            .map(Duration::from_secs);
        let exhausted = text("x-ratelimit-remaining") == Some("0");
        let reset_wait = if exhausted {
            text("x-ratelimit-reset")
                .and_then(|v| v.parse::<u64>().ok())
                .map(|reset| {
                    let now = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map(|d| d.as_secs())
                        .unwrap_or(0);
                    Duration::from_secs(reset.saturating_sub(now) + 1)
                })
        } else {
            None
        };
        let rate_limited = status == StatusCode::TOO_MANY_REQUESTS
            || (status == StatusCode::FORBIDDEN && (exhausted || retry_after.is_some()));
        Failure::Status {
            status,
            message: github_message(body),
            wait: retry_after.or(reset_wait),
            rate_limited,
            notes: Vec::new(),
        }
    }

    pub(super) fn retryable(&self) -> bool {
        match self {
            Failure::Status {
                status,
                rate_limited,
                ..
            } => *rate_limited || matches!(status.as_u16(), 500 | 502 | 503 | 504),
            Failure::Transport(_) => true,
            Failure::Local(_) => false,
        }
    }

    pub(super) fn requested_wait(&self) -> Option<Duration> {
        match self {
            Failure::Status { wait, .. } => *wait,
            _ => None,
        }
    }

    pub(super) fn note(mut self, note: String) -> Failure {
        match &mut self {
            Failure::Status { notes, .. } => notes.push(note),
            Failure::Transport(m) => *m = format!("{m} ({note})"),
            Failure::Local(_) => {}
        }
        self
    }

    /// The same failure with every secret value in its text masked: a server (a proxy, a GHE
    /// front end) may echo the request, `Authorization: Bearer <token>` included.
    pub(super) fn redacted(mut self, redactor: &Redactor) -> Failure {
        let text = match &mut self {
            Failure::Status { message, .. } => message,
            Failure::Transport(m) => m,
            Failure::Local(e) => &mut e.message,
        };
        *text = redactor.redact(text);
        self
    }

    /// An error saying what was being done, what GitHub said, and what to do.
    pub(super) fn into_error(self, what: &str) -> Error {
        match self {
            Failure::Local(e) => Error {
                message: format!("{what}: {}", e.message),
                ..e
            },
            Failure::Transport(m) => Error::failure(format!("GitHub: {what} failed: {m}")).help(
                "check the network and github.api_url; re-running is safe (drafts stay drafts, finished uploads are kept)",
            ),
            Failure::Status {
                status,
                message,
                rate_limited,
                notes,
                ..
            } => {
                let mut msg = format!("GitHub: {what} failed: HTTP {status}");
                if !message.is_empty() {
                    msg.push_str(": ");
                    msg.push_str(&message);
                }
                for n in &notes {
                    msg.push_str(&format!(" ({n})"));
                }
                let help = match status.as_u16() {
                    _ if rate_limited => "GitHub's rate limit was hit; wait for it to reset, then re-run".to_string(),
                    401 => format!("{TOKEN_ENV} was refused: set a valid, unexpired token"),
                    403 => format!("the token may lack permission (contents: write) on the repository; check {TOKEN_ENV}"),
                    404 => "check github.repository and that the token can see the repository".to_string(),
                    422 => "GitHub refused the request as given; a published (immutable) release cannot be changed, so use a new tag".to_string(),
                    s if s >= 500 => "GitHub had a server error; re-running is safe (drafts stay drafts, finished uploads are kept)".to_string(),
                    _ => "see GitHub's message above".to_string(),
                };
                Error::failure(msg).help(help)
            }
        }
    }
}

/// GitHub's `{"message": ..., "errors": [{"code": ..., "field": ...}]}`, or the raw body.
pub(super) fn github_message(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return truncate(text.trim(), MAX_ERROR_BODY);
    };
    let mut out = v
        .get("message")
        .and_then(|m| m.as_str())
        .unwrap_or_default()
        .to_string();
    if let Some(errors) = v.get("errors").and_then(|e| e.as_array()) {
        let parts: Vec<String> = errors
            .iter()
            .map(|e| match e {
                serde_json::Value::String(s) => s.clone(),
                other => {
                    let field = |k: &str| other.get(k).and_then(|x| x.as_str()).unwrap_or_default();
                    let mut p = field("code").to_string();
                    if !field("field").is_empty() {
                        p.push_str(&format!(" ({})", field("field")));
                    }
                    if !field("message").is_empty() {
                        p.push_str(&format!(": {}", field("message")));
                    }
                    p
                }
            })
            .filter(|p| !p.is_empty())
            .collect();
        if !parts.is_empty() {
            out.push_str(&format!(" [{}]", parts.join("; ")));
        }
    }
    if out.is_empty() {
        out = truncate(text.trim(), MAX_ERROR_BODY);
    }
    out
}
