//! deliver_email: sends a package as one SMTP attachment, under a hard size cap; never logs or returns credentials.
use super::deadline::Deadline;
use super::receipt::{Receipt, StepFailure};
use super::{BuiltinStep, Implementation};
use crate::beneath::Beneath;
use crate::contract::Failure;
use crate::digest::sha256_hex;
use email_encoding::headers::{rfc2047, writer::EmailWriter};
use lettre::address::Envelope;
use lettre::message::header::{ContentTransferEncoding, ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Body, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::response::Response;
use lettre::{Message, SmtpTransport, Transport};
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A package of this many bytes or more is refused before any connection (SPEC §2):
/// 19.9 MiB, which base64 turns into about 28 MB of SMTP data.
pub const EMAIL_MAX_PACKAGE_BYTES: u64 = 20_866_662;

/// Base64 with a CRLF every 76 characters: 4/3 × 78/76 ≈ 1.37 (measured 1.369 with lettre).
const WIRE_RATIO: f64 = 1.37;

/// lettre's own default, named here so messages can state it.
const DEFAULT_TIMEOUT_SECONDS: u64 = 60;

/// RFC 5322 §2.1.1: no line of a message may be longer (CRLF not counted).
const MAX_LINE: usize = 998;

/// lettre folds a Subject only at spaces, so a longer word would stay on one line: such a
/// subject is written as RFC 2047 encoded words instead (76 is the length lettre folds to).
const LONGEST_PLAIN_SUBJECT_WORD: usize = 76;

/// The runtime profile's `smtp:` block (SPEC §2); key names are part of the profile format.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SmtpSettings {
    #[serde(default = "default_host")]
    pub host: String,
    #[serde(default = "default_port")]
    pub port: u16,
    #[serde(default)]
    pub tls: SmtpTls,
    #[serde(default = "default_from")]
    pub from: String,
    /// An extra trusted root certificate (PEM), for private CAs and tests; the public
    /// roots stay trusted too.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Per-operation socket timeout; lettre's 60 s when absent.
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
}

/// How the SMTP connection is protected.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain SMTP (a local relay).
    #[default]
    None,
    /// STARTTLS, required: a server that does not offer it fails the delivery.
    Starttls,
    /// Implicit TLS from the first byte (SMTPS, usually port 465).
    Tls,
}

fn default_host() -> String {
    "127.0.0.1".into()
}
fn default_port() -> u16 {
    25
}
fn default_from() -> String {
    "platform@example.com".into()
}

impl Default for SmtpSettings {
    fn default() -> Self {
        SmtpSettings {
            host: default_host(),
            port: default_port(),
            tls: SmtpTls::default(),
            from: default_from(),
            ca_file: None,
            timeout_seconds: None,
        }
    }
}

impl SmtpTls {
    fn as_str(self) -> &'static str {
        match self {
            SmtpTls::None => "none",
            SmtpTls::Starttls => "starttls",
            SmtpTls::Tls => "tls",
        }
    }
}

/// Sends `package_zip` to `recipient` as one `application/zip` attachment named after the
/// file. Checks, in order and before connecting: readable package, size cap, addresses,
/// TLS settings. Credentials are `(username, password)`; they are never put in a message.
/// The exchange with the server ends by `deadline` (FAILED `timeout`), however slowly the
/// server keeps answering; `smtp.timeout_seconds` bounds each socket operation only.
pub fn deliver_email(
    settings: &SmtpSettings,
    credentials: Option<(String, String)>,
    mail: &Mail,
    deadline: &Deadline,
) -> Result<Receipt, StepFailure> {
    let any = |_: u64, _: &str| Ok(());
    deliver_email_as_read(settings, credentials, mail, deadline, &any)
}

/// [`deliver_email`], the package's bytes as read (length, SHA-256) first handed to `as_read`,
/// which may refuse them before anything is sent (a step checks them against the digest its
/// package's step recorded: `BuiltinStep::check_as_read`).
pub fn deliver_email_as_read(
    settings: &SmtpSettings,
    credentials: Option<(String, String)>,
    mail: &Mail,
    deadline: &Deadline,
    as_read: &dyn Fn(u64, &str) -> Result<(), StepFailure>,
) -> Result<Receipt, StepFailure> {
    // Belt and braces: a server may echo a user name, and an error chain may carry anything.
    // The modules' redactor (values of 4 bytes or more: a user name `u` would mask every `u`).
    let secrets = crate::redact::Redactor::new(
        credentials
            .as_ref()
            .map(|(u, p)| vec![u.clone(), p.clone()])
            .unwrap_or_default(),
    );
    send(settings, credentials, mail, deadline, as_read).map_err(|mut failure| {
        failure.message = secrets.redact(&failure.message);
        failure
    })
}

/// The addresses of a message, as [`precheck`] accepted them.
pub struct Addresses {
    pub to: Mailbox,
    pub from: Mailbox,
}

impl SmtpSettings {
    /// The runtime profile's `smtp:` block, or the defaults when it has none.
    pub fn from_profile(smtp: Option<&serde_json::Value>) -> Result<Self, String> {
        let v = smtp.cloned().unwrap_or_else(|| serde_json::json!({}));
        serde_json::from_value(v).map_err(|e| format!("runtime profile smtp: {e}"))
    }
}

/// `(username, password)` from PLATFORM_SECRET_SMTP_USERNAME / _PASSWORD, when both are set.
pub fn credentials_from_secrets() -> Option<(String, String)> {
    match (
        crate::secrets::get("SMTP_USERNAME"),
        crate::secrets::get("SMTP_PASSWORD"),
    ) {
        (Some(u), Some(p)) => Some((u, p)),
        _ => None,
    }
}

/// A tenant's recipient: trimmed, one plain address with a domain name. A domain literal
/// (`a@[127.0.0.1]`) names a host instead of a mail domain, so it is refused.
pub fn recipient(raw: &str) -> Result<lettre::Address, String> {
    let trimmed = raw.trim();
    let shown = crate::output::untrusted(trimmed);
    if trimmed.chars().any(char::is_control) {
        return Err(format!(
            "recipient_email '{shown}' contains control characters"
        ));
    }
    let address: lettre::Address = trimmed
        .parse()
        .map_err(|e| format!("recipient_email '{shown}' is not an email address: {e}"))?;
    if address.domain().starts_with('[') {
        return Err(format!(
            "recipient_email '{shown}' names an IP address, not a mail domain; use an address at a domain name"
        ));
    }
    Ok(address)
}

/// Every check of the tenant's and the profile's input, in the one form both the
/// orchestrator (before charging) and the send use, so a send never finds an input error
/// the charge did not: recipient, sender, credentials never sent in clear text, and the
/// message itself, composed as the send composes it (with a stand-in for the package's
/// bytes, which go base64 and change no line), so lettre's envelope and the line checks
/// refuse here whatever they would refuse at the send.
pub fn precheck(
    settings: &SmtpSettings,
    credentials_set: bool,
    mail: &Mail,
) -> Result<Addresses, StepFailure> {
    let to = Mailbox::new(
        None,
        recipient(mail.recipient).map_err(StepFailure::input_invalid)?,
    );
    let from: Mailbox = settings.from.trim().parse().map_err(|e| {
        StepFailure::input_invalid(format!(
            "smtp.from '{}' in the runtime profile is not an email address: {e}",
            settings.from.escape_debug()
        ))
    })?;
    let endpoint = endpoint(&settings.host, settings.port);
    if credentials_set && settings.tls == SmtpTls::None && !is_loopback(&settings.host) {
        return Err(StepFailure::input_invalid(format!(
            "SMTP credentials are set but smtp.tls is 'none' for {endpoint}: the password would cross the network in clear text; set smtp.tls to 'starttls' or 'tls'"
        )));
    }
    let file_name = attachment_name(&mail.package_zip.path());
    let stand_in = "0".repeat(64);
    compose(mail, &from, &to, &file_name, &stand_in, Vec::new())
        .map_err(StepFailure::input_invalid)?;
    Ok(Addresses { to, from })
}

/// deliver_email as a step: the runtime profile's `smtp:` block, the SMTP secrets, the
/// step's recipient, subject and package.
pub struct DeliverEmail;

impl Implementation for DeliverEmail {
    /// The send's own input checks, run before charging: a bad address or SMTP setting is
    /// an input error, never a charged failure without a refund.
    fn precheck(&self, s: &BuiltinStep) -> Result<(), String> {
        let settings = SmtpSettings::from_profile(s.profile.smtp.as_ref())?;
        let set = credentials_from_secrets().is_some();
        let package_zip = s.package_zip().map_err(|f| f.message)?;
        let delivery = s.delivery_id();
        let mail = Mail::of_step(s, &package_zip, &delivery);
        precheck(&settings, set, &mail)
            .map(drop)
            .map_err(|f| f.message)
    }

    /// Runs after the charge: an input error found now (the same checks passed before the
    /// charge, so something changed in between) is a refundable `delivery_failed`, never an
    /// `input_invalid`, which SPEC §4 reserves for what costs nothing.
    fn run(&self, s: &BuiltinStep) -> Result<Option<Receipt>, StepFailure> {
        let sent = s.package_zip().and_then(|zip| {
            let settings = SmtpSettings::from_profile(s.profile.smtp.as_ref())
                .map_err(StepFailure::input_invalid)?;
            let delivery = s.delivery_id();
            let mail = Mail::of_step(s, &zip, &delivery);
            let credentials = credentials_from_secrets();
            let as_read = |bytes: u64, sha256: &str| s.check_as_read("package_zip", bytes, sha256);
            deliver_email_as_read(&settings, credentials, &mail, &s.deadline, &as_read)
        });
        sent.map(Some).map_err(|f| match f.reason_slug {
            Failure::InputInvalid => StepFailure::delivery_failed(format!(
                "{} (found after the step was charged, although the check before charging passed)",
                f.message
            )),
            _ => f,
        })
    }
}

/// What one delivery sends, and to whom.
pub struct Mail<'a> {
    pub package_zip: &'a Beneath,
    pub recipient: &'a str,
    pub subject: &'a str,
    /// Which delivery this is (a step's: `BuiltinStep::delivery_id`), the same for every
    /// attempt of it: its Message-ID derives from it, so distinct deliveries of one package
    /// to one address are distinct messages, and a re-send of one delivery is the same one.
    pub delivery: &'a str,
}

impl<'a> Mail<'a> {
    /// The mail a step's inputs describe: its package, recipient and subject.
    fn of_step(s: &'a BuiltinStep, package_zip: &'a Beneath, delivery: &'a str) -> Self {
        Mail {
            package_zip,
            recipient: s.text("recipient_email"),
            subject: s.text("subject"),
            delivery,
        }
    }
}

fn send(
    settings: &SmtpSettings,
    credentials: Option<(String, String)>,
    mail: &Mail,
    deadline: &Deadline,
    as_read: &dyn Fn(u64, &str) -> Result<(), StepFailure>,
) -> Result<Receipt, StepFailure> {
    let package_zip = mail.package_zip;
    // Opened once, beneath its folder through no link; everything below reads this file.
    let mut file = package_zip
        .open_file()
        .map_err(|r| StepFailure::module_failed(format!("reading {r}")))?;
    let zip_path = package_zip.path();
    let size = file
        .metadata()
        .map_err(|e| StepFailure::module_failed(format!("reading {}: {e}", zip_path.display())))?
        .len();
    check_size(&zip_path, size)?;
    let Addresses { to, from } = precheck(settings, credentials.is_some(), mail)?;
    let endpoint = endpoint(&settings.host, settings.port);
    let tls_params = tls_parameters(settings)?;

    let data = read_package(&mut file, &zip_path)?;
    let bytes = data.len() as u64;
    // The file may have grown since the metadata check; the cap is about what is sent.
    check_size(&zip_path, bytes)?;
    let sha256 = sha256_hex(&data);
    as_read(bytes, &sha256)?;
    let file_name = attachment_name(&zip_path);
    // The precheck composed this message already (with a stand-in for the bytes): a
    // refusal now is not the tenant's input, and the step was charged, so refundable.
    let Composed {
        envelope,
        raw,
        message_id,
    } = compose(mail, &from, &to, &file_name, &sha256, data)
        .map_err(|e| StepFailure::delivery_failed(format!("{e}; nothing was sent")))?;

    let transport = transport(settings, tls_params, credentials);
    let what = format!(
        "sending {file_name} ({} bytes on the wire) to {endpoint} (tls: {})",
        raw.len(),
        settings.tls.as_str()
    );
    // lettre's sync transport cannot be interrupted from outside: the exchange runs on a
    // thread of its own, given up at the deadline (Deadline::wait_for).
    let sent = deadline.wait_for(&what, move || transport.send_raw(&envelope, &raw))?;
    let response = sent.map_err(|e| {
        StepFailure::delivery_failed(format!(
            "{what} failed: {}",
            describe(
                &e,
                settings.timeout_seconds.unwrap_or(DEFAULT_TIMEOUT_SECONDS)
            )
        ))
    })?;

    Ok(Receipt {
        provider: "email".into(),
        remote_path: format!("smtp://{endpoint}/{}", to.email),
        object_id: Some(queue_id(&response).unwrap_or(message_id)),
        bytes,
        sha256,
        verification_status: "accepted_by_server".into(),
    })
}

/// The connection the settings describe, logged in when credentials are given.
fn transport(
    settings: &SmtpSettings,
    tls_params: Option<TlsParameters>,
    credentials: Option<(String, String)>,
) -> SmtpTransport {
    let mut builder = SmtpTransport::builder_dangerous(settings.host.as_str())
        .port(settings.port)
        .tls(match (settings.tls, tls_params) {
            (SmtpTls::Starttls, Some(p)) => Tls::Required(p),
            (SmtpTls::Tls, Some(p)) => Tls::Wrapper(p),
            _ => Tls::None,
        });
    if let Some(seconds) = settings.timeout_seconds {
        builder = builder.timeout(Some(Duration::from_secs(seconds)));
    }
    if let Some((user, password)) = credentials {
        builder = builder.credentials(Credentials::new(user, password));
    }
    builder.build()
}

/// lettre 0.11.23 (the newest release this project's registry offers) is affected by
/// RUSTSEC-2026-0561, a flaw in SMTP dot-stuffing. A message without any line that starts
/// with `.` gives that flaw nothing to act on, and ours never has one (headers are encoded,
/// the attachment and the text part are base64): this check makes sure of it. It also
/// makes sure no line is over RFC 5322's 998 characters, which servers refuse.
fn check_lines(raw: &[u8]) -> Result<(), String> {
    let dot_line = raw.first() == Some(&b'.') || raw.windows(2).any(|w| w == b"\n.");
    if dot_line {
        return Err(
            "the message has a line starting with '.', which this SMTP client may not escape (RUSTSEC-2026-0561)"
                .into(),
        );
    }
    let longest = raw
        .split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line).len())
        .max()
        .unwrap_or(0);
    if longest > MAX_LINE {
        return Err(format!(
            "the message has a line of {longest} characters; SMTP allows at most {MAX_LINE} (RFC 5322 §2.1.1)"
        ));
    }
    Ok(())
}

/// A socket timeout surfaces as "Resource temporarily unavailable" (EAGAIN); say what it
/// means instead.
fn describe(e: &lettre::transport::smtp::Error, timeout_seconds: u64) -> String {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            if matches!(
                io.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) {
                return format!("no answer from the server within {timeout_seconds} s ({e})");
            }
        }
        source = s.source();
    }
    e.to_string()
}

fn check_size(package_zip: &Path, size: u64) -> Result<(), StepFailure> {
    if size < EMAIL_MAX_PACKAGE_BYTES {
        return Ok(());
    }
    let wire_mb = size as f64 * WIRE_RATIO / 1e6;
    Err(StepFailure::too_large_for_email(format!(
        "{} is {size} bytes; email delivery takes packages of less than {EMAIL_MAX_PACKAGE_BYTES} bytes (19.9 MiB), \
         because base64 makes an attachment about 1.37 times larger on the wire (this one would be about {wire_mb:.1} MB). \
         Nothing was sent and there is no link fallback: deliver it with deliver_local or deliver_github_release, \
         or package fewer files",
        package_zip.display()
    )))
}

/// At most the cap's worth of bytes: a file that grew meanwhile is refused, not buffered.
fn read_package(file: &mut std::fs::File, path: &Path) -> Result<Vec<u8>, StepFailure> {
    let mut data = Vec::new();
    file.take(EMAIL_MAX_PACKAGE_BYTES)
        .read_to_end(&mut data)
        .map_err(|e| StepFailure::module_failed(format!("reading {}: {e}", path.display())))?;
    Ok(data)
}

/// `None` for plain SMTP; otherwise the public roots plus `ca_file` if set.
fn tls_parameters(settings: &SmtpSettings) -> Result<Option<TlsParameters>, StepFailure> {
    if settings.tls == SmtpTls::None {
        return Ok(None);
    }
    let mut builder = TlsParameters::builder(settings.host.clone());
    if let Some(ca_file) = &settings.ca_file {
        let pem = std::fs::read(ca_file).map_err(|e| {
            StepFailure::delivery_failed(format!("reading smtp.ca_file {}: {e}", ca_file.display()))
        })?;
        let cert = Certificate::from_pem(&pem).map_err(|e| {
            StepFailure::delivery_failed(format!(
                "smtp.ca_file {} is not a PEM certificate: {e}",
                ca_file.display()
            ))
        })?;
        builder = builder.add_root_certificate(cert);
    }
    builder.build().map(Some).map_err(|e| {
        StepFailure::delivery_failed(format!(
            "setting up TLS for {}: {e}",
            endpoint(&settings.host, settings.port)
        ))
    })
}

/// The package's name as its attachment carries it.
fn attachment_name(package_zip: &Path) -> String {
    package_zip
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "package.zip".into())
}

/// Why a checked address can still fail: lettre derives the envelope by parsing the
/// written headers again, with a stricter parser than the one that checked the address.
const READ_BACK: &str = "cannot be put in a message: lettre reads the address back from its header";

/// A message as it goes on the wire, with the envelope lettre derived from its headers.
struct Composed {
    envelope: Envelope,
    raw: Vec<u8>,
    message_id: String,
}

/// The message the send sends, refused (Err says why) when it cannot be sent as it is:
/// lettre cannot derive its envelope (it reads To back from the header and refuses some
/// quoted local parts, such as `"a,b"@example.org`), the envelope names another recipient
/// domain or sender than the checked ones, or a line fails [`check_lines`]. The one
/// function for the precheck and the send, so the two accept exactly the same messages.
fn compose(
    mail: &Mail,
    from: &Mailbox,
    to: &Mailbox,
    file_name: &str,
    sha256: &str,
    data: Vec<u8>,
) -> Result<Composed, String> {
    let subject = mail.subject;
    let message_id = message_id(sha256, to, from, subject, mail.delivery);
    let message = build_message(from, to, subject, &message_id, file_name, sha256, data)?;
    let envelope = message.envelope().clone();
    let same_domain =
        |a: &lettre::Address, b: &lettre::Address| a.domain().eq_ignore_ascii_case(b.domain());
    if !matches!(envelope.to(), [only] if same_domain(only, &to.email)) {
        return Err(format!(
            "recipient_email '{}' {READ_BACK} as {}; use a plain address such as name@example.org",
            crate::output::untrusted(to.email.as_ref()),
            crate::output::untrusted(&format!("{:?}", envelope.to())),
        ));
    }
    if !envelope.from().is_some_and(|f| same_domain(f, &from.email)) {
        return Err(format!(
            "smtp.from '{}' in the runtime profile {READ_BACK} as {}; use a plain address",
            crate::output::untrusted(&from.to_string()),
            crate::output::untrusted(&format!("{:?}", envelope.from())),
        ));
    }
    let raw = message.formatted();
    drop(message);
    check_lines(&raw)?;
    Ok(Composed {
        envelope,
        raw,
        message_id,
    })
}

/// The Subject header: control characters become spaces; a subject with a word lettre
/// would not fold goes as RFC 2047 encoded words (lettre's own encoder), which fold
/// anywhere, so every subject is sendable and mail clients show it unchanged.
fn subject_header(subject: &str) -> Result<HeaderValue, String> {
    let subject: String = subject
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let name = HeaderName::new_from_ascii_str("Subject");
    if subject
        .split(' ')
        .all(|word| word.len() <= LONGEST_PLAIN_SUBJECT_WORD)
    {
        return Ok(HeaderValue::new(name, subject));
    }
    let mut encoded = String::new();
    {
        let mut writer = EmailWriter::new(&mut encoded, "Subject: ".len(), 0, false);
        rfc2047::encode(&subject, &mut writer).map_err(|e| format!("encoding the subject: {e}"))?;
    }
    // Only `=?utf-8?b?`, base64 and folds: nothing from the subject is written raw.
    Ok(HeaderValue::dangerous_new_pre_encoded(
        name, subject, encoded,
    ))
}

fn build_message(
    from: &Mailbox,
    to: &Mailbox,
    subject: &str,
    message_id: &str,
    file_name: &str,
    sha256: &str,
    data: Vec<u8>,
) -> Result<Message, String> {
    let bytes = data.len();
    let text = format!(
        "The package {file_name} is attached.\n\nFile:    {file_name}\nBytes:   {bytes}\nSHA-256: {sha256}\n\nCheck it with: sha256sum {file_name}\n"
    );
    // Base64 for the text too: lettre would pick quoted-printable for a line over 76
    // characters (a long file name), and its soft line breaks can put a '.' of the name
    // first on a line, which check_lines must refuse.
    let text = Body::new_with_encoding(text, ContentTransferEncoding::Base64)
        .map_err(|_| "encoding the text part as base64 failed".to_string())?;
    // Forced base64 keeps the size on the wire predictable (≈1.37×) whatever the bytes are.
    let body = Body::new_with_encoding(data, ContentTransferEncoding::Base64)
        .map_err(|_| "encoding the attachment as base64 failed".to_string())?;
    let content_type =
        ContentType::parse("application/zip").map_err(|e| format!("content type: {e}"))?;
    Message::builder()
        .from(from.clone())
        .to(to.clone())
        .raw_header(subject_header(subject)?)
        .message_id(Some(message_id.to_string()))
        .multipart(
            MultiPart::mixed()
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_PLAIN)
                        .body(text),
                )
                .singlepart(Attachment::new(file_name.to_string()).body(body, content_type)),
        )
        // The one failure left is the envelope lettre derives from the From and To headers.
        .map_err(|e| {
            format!(
                "recipient_email '{}' {READ_BACK} and fails ({e}); quoted forms such as \"a,b\"@example.org are not supported: use a plain address such as name@example.org",
                crate::output::untrusted(to.email.as_ref())
            )
        })
}

/// Derived from what is sent and from which delivery sends it (not its attempt), so a re-send
/// of one delivery after a crash or a retry carries the same Message-ID, and mail systems
/// that de-duplicate on it show it once; another delivery of the same package to the same
/// address (another work order, tenant or run, each charged) is another message. Until
/// 2026-12-04 the delivery was not in it, and a de-duplicating receiver dropped those.
fn message_id(sha256: &str, to: &Mailbox, from: &Mailbox, subject: &str, delivery: &str) -> String {
    let key = format!(
        "{sha256}\n{}\n{}\n{subject}\n{delivery}",
        to.email, from.email
    );
    let digest = sha256_hex(key.as_bytes());
    format!("<{}@{}>", &digest[..32], from.email.domain())
}

/// The queue id a server names in its final reply, in the common MTA phrasings:
/// Postfix `250 2.0.0 Ok: queued as 4Xyz`, Exim `250 OK id=1abc-0001-xy`, Sendmail
/// `250 2.0.0 4ABC123 Message accepted for delivery`. Anything else (aiosmtpd: `250 OK`)
/// has none.
fn queue_id(response: &Response) -> Option<String> {
    let text: Vec<&str> = response.message().collect();
    let text = text.join(" ");
    let clean = |s: &str| {
        let id: String = s
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'))
            .collect();
        let id = id.trim_end_matches('.').to_string();
        (!id.is_empty()).then_some(id)
    };
    if let Some((_, rest)) = text.split_once("queued as ") {
        return clean(rest.trim_start());
    }
    if let Some((_, rest)) = text.split_once("id=") {
        return clean(rest);
    }
    if let Some((before, _)) = text.split_once(" Message accepted") {
        return before.split_whitespace().last().and_then(clean);
    }
    None
}

fn endpoint(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;
    use lettre::transport::smtp::response::{Category, Code, Detail, Severity};

    fn reply(lines: &[&str]) -> Response {
        Response::new(
            Code::new(
                Severity::PositiveCompletion,
                Category::MailSystem,
                Detail::Zero,
            ),
            lines.iter().map(|s| s.to_string()).collect(),
        )
    }

    #[test]
    fn no_line_of_a_message_starts_with_a_dot_or_is_too_long() {
        assert!(check_lines(b"a\r\nb\r\n").is_ok());
        assert!(check_lines(b"a\r\n.\r\nMAIL FROM:<x@y>").is_err());
        assert!(check_lines(b".a").is_err());
        assert!(check_lines(&[b'a'; MAX_LINE]).is_ok());
        assert!(check_lines(&[b'a'; MAX_LINE + 1]).is_err());
        let from: Mailbox = "p@example.com".parse().unwrap();
        let to: Mailbox = "c@example.com".parse().unwrap();
        // A hostile subject (a dot line, an SMTP command) ends up encoded, not as a line.
        // So do a long file name with dots, and a subject lettre would not fold.
        let long_name = format!("{}.zip", "L".repeat(50));
        for (subject, name) in [
            ("x\r\n.\r\nRSET\n.", "package.zip"),
            ("s", long_name.as_str()),
            (&"A".repeat(3000), "package.zip"),
        ] {
            let zip = Beneath::new(".", name);
            let mail = Mail {
                package_zip: &zip,
                recipient: "c@example.com",
                subject,
                delivery: "t\nw\n1\ns",
            };
            let composed = compose(&mail, &from, &to, name, "00", b".\r\n.\n".to_vec());
            assert!(
                composed.is_ok(),
                "{subject:.20} {name}: {:?}",
                composed.err()
            );
        }
    }

    #[test]
    fn queue_ids() {
        assert_eq!(
            queue_id(&reply(&["2.0.0 Ok: queued as 4F3Xyz1abc"])).as_deref(),
            Some("4F3Xyz1abc")
        );
        assert_eq!(
            queue_id(&reply(&["OK id=1qZ3Ab-0004Xy-2C"])).as_deref(),
            Some("1qZ3Ab-0004Xy-2C")
        );
        assert_eq!(
            queue_id(&reply(&[
                "2.0.0 x8ABCD123456 Message accepted for delivery"
            ]))
            .as_deref(),
            Some("x8ABCD123456")
        );
        assert_eq!(queue_id(&reply(&["OK"])), None);
    }

    #[test]
    fn settings_from_yaml_keys() {
        let s: SmtpSettings =
            serde_json::from_str(r#"{"tls": "starttls", "port": 587}"#).unwrap_or_default();
        assert_eq!(s.tls, SmtpTls::Starttls);
        assert_eq!(s.port, 587);
        assert_eq!(s.host, "127.0.0.1");
        assert!(serde_json::from_str::<SmtpSettings>(r#"{"user": "x"}"#).is_err());
        assert!(serde_json::from_str::<SmtpSettings>(r#"{"tls": "STARTTLS"}"#).is_err());
    }

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback("127.0.0.1") && is_loopback("::1") && is_loopback("LOCALHOST"));
        assert!(!is_loopback("smtp.example.com"));
    }
}
