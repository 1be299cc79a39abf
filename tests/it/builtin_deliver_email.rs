//! deliver_email against a real SMTP server (aiosmtpd on loopback): the cap, TLS modes, refusals, secrecy.
// Tests fail by panicking; expect() carries the context.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::check::assert_has;
use crate::support::fx::temp_dir;
use crate::support::smtp;

use platform::beneath::Beneath;
use platform::builtin::deliver_email::Mail;
use platform::builtin::{
    deliver_email, Deadline, Receipt, SmtpSettings, SmtpTls, StepFailure, EMAIL_MAX_PACKAGE_BYTES,
};
use platform::digest::sha256_hex;
use smtp::{closed_port, SinkOptions, SmtpSink, TestCa};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const RECIPIENT: &str = "buyer@example.org";

/// A package beneath its own folder (the folder is the test's).
fn at(path: &Path) -> Beneath {
    Beneath::in_parent(path)
}

/// Incompressible, reproducible bytes (xorshift64), like a real ZIP's.
fn noise(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn package(dir: &Path, len: usize) -> PathBuf {
    let path = dir.join("package.zip");
    std::fs::write(&path, noise(len)).unwrap();
    path
}

fn plain(port: u16) -> SmtpSettings {
    SmtpSettings {
        host: "127.0.0.1".into(),
        port,
        from: "platform@example.com".into(),
        timeout_seconds: Some(30),
        ..SmtpSettings::default()
    }
}

/// A step's default deadline (timeout_seconds 600), which no test here comes near.
fn step_deadline() -> Deadline {
    Deadline::after(600)
}

/// The delivery every test here is (a step's identity: tenant, work order, run, step).
const DELIVERY: &str = "t1\nmail\n1\nsend";

/// `deliver_email` of the package at `zip` to `to` under `subject`, as delivery DELIVERY.
fn deliver(
    settings: &SmtpSettings,
    creds: Option<(String, String)>,
    zip: &Path,
    to: &str,
    subject: &str,
) -> Result<Receipt, StepFailure> {
    let mail = Mail {
        package_zip: &at(zip),
        recipient: to,
        subject,
        delivery: DELIVERY,
    };
    deliver_email(settings, creds, &mail, &step_deadline())
}

/// Deliver a fresh package of `len` noise bytes to RECIPIENT with `settings`.
fn send(
    settings: &SmtpSettings,
    creds: Option<(&str, &str)>,
    len: usize,
) -> Result<Receipt, StepFailure> {
    let tmp = temp_dir();
    let zip = package(tmp.path(), len);
    let creds = creds.map(|(u, p)| (u.to_string(), p.to_string()));
    deliver(settings, creds, &zip, RECIPIENT, "x")
}

/// A sink that offers STARTTLS with a certificate of a fresh test CA (and takes AUTH for
/// `auth`, "user:password"), and settings for it by name, trusting that CA.
fn starttls_sink(auth: Option<&str>) -> (SmtpSink, SmtpSettings, TestCa) {
    let ca = smtp::make_test_ca();
    let sink = SmtpSink::start(SinkOptions {
        starttls: Some((ca.cert.clone(), ca.key.clone())),
        auth: auth.map(String::from),
        ..SinkOptions::default()
    });
    let settings = SmtpSettings {
        host: "localhost".into(),
        tls: SmtpTls::Starttls,
        ca_file: Some(ca.ca_pem.clone()),
        ..plain(sink.port)
    };
    (sink, settings, ca)
}

/// A sink that answers DATA with `reply`.
fn replying(reply: &str) -> SmtpSink {
    SmtpSink::start(SinkOptions {
        reply: Some(reply.into()),
        ..SinkOptions::default()
    })
}

#[test]
fn a_package_one_byte_under_the_cap_arrives_intact() {
    let sink = SmtpSink::start(SinkOptions::default());
    let tmp = temp_dir();
    let len = (EMAIL_MAX_PACKAGE_BYTES - 1) as usize;
    assert_eq!(len, 20_866_661);
    let zip = package(tmp.path(), len);
    let expected_sha = sha256_hex(&std::fs::read(&zip).unwrap());

    let receipt = deliver(&plain(sink.port), None, &zip, RECIPIENT, "Your deliverable")
        .unwrap_or_else(|f| panic!("{f}\nsink stderr:\n{}", sink.stderr()));

    assert_eq!(receipt.provider, "email");
    assert_eq!(
        receipt.remote_path,
        format!("smtp://127.0.0.1:{}/{RECIPIENT}", sink.port)
    );
    assert_eq!(receipt.bytes, len as u64);
    assert_eq!(receipt.sha256, expected_sha);
    assert_eq!(receipt.verification_status, "accepted_by_server");

    let messages = sink.messages();
    assert_eq!(messages.len(), 1);
    let msg = &messages[0];
    assert_eq!(msg.envelope["rcpt_tos"], serde_json::json!([RECIPIENT]));
    assert_eq!(msg.envelope["mail_from"], "platform@example.com");
    // aiosmtpd answers a bare "250 OK": the receipt falls back to the Message-ID we set.
    assert_eq!(smtp::header(&msg.eml, "Message-ID"), receipt.object_id);
    assert_eq!(
        smtp::header(&msg.eml, "Subject").as_deref(),
        Some("Your deliverable")
    );
    let ratio = msg.eml.len() as f64 / len as f64;
    assert!((1.36..1.38).contains(&ratio), "wire/raw ratio {ratio}");

    let (texts, attachments) = smtp::parts(&msg.eml);
    assert_eq!(attachments.len(), 1, "exactly one attachment");
    let att = &attachments[0];
    assert_eq!(att.file_name, "package.zip");
    assert!(
        att.content_type.starts_with("application/zip"),
        "{}",
        att.content_type
    );
    assert!(att.transfer_encoding.eq_ignore_ascii_case("base64"));
    assert_eq!(att.data.len(), len);
    assert_eq!(
        sha256_hex(&att.data),
        expected_sha,
        "attachment corrupted in transit"
    );
    let text = texts.join("\n");
    assert!(
        text.contains("package.zip") && text.contains(&expected_sha),
        "{text}"
    );
    assert_has(&text, &len.to_string());
}

#[test]
fn a_package_at_the_cap_fails_before_any_connection() {
    let sink = SmtpSink::start(SinkOptions::default());
    let tmp = temp_dir();
    let zip = tmp.path().join("package.zip");
    // Sparse: the check reads only the size.
    std::fs::File::create(&zip)
        .unwrap()
        .set_len(EMAIL_MAX_PACKAGE_BYTES)
        .unwrap();

    let failure =
        deliver(&plain(sink.port), None, &zip, RECIPIENT, "too big").expect_err("at the cap");

    assert_eq!(failure.reason_slug, "package_too_large_for_email");
    for needle in [
        "20866662 bytes",
        "19.9 MiB",
        "1.37",
        "base64",
        "no link fallback",
    ] {
        assert!(
            failure.message.contains(needle),
            "{needle:?} missing: {}",
            failure.message
        );
    }
    assert_eq!(
        sink.connections(),
        0,
        "connected although the package is too large"
    );
    assert!(sink.messages().is_empty());
}

#[test]
fn starttls_with_the_test_ca_and_credentials_delivers() {
    let (sink, settings, _ca) = starttls_sink(Some("mailer:correct horse"));
    let receipt = send(&settings, Some(("mailer", "correct horse")), 50_000)
        .unwrap_or_else(|f| panic!("{f}\nsink stderr:\n{}", sink.stderr()));
    assert_eq!(
        receipt.remote_path,
        format!("smtp://localhost:{}/{RECIPIENT}", sink.port)
    );
    assert!(!receipt.remote_path.contains("mailer"));
    let (_, attachments) = smtp::parts(&sink.messages()[0].eml);
    assert_eq!(sha256_hex(&attachments[0].data), receipt.sha256);
}

#[test]
fn implicit_tls_with_the_test_ca_delivers() {
    let ca = smtp::make_test_ca();
    let sink = SmtpSink::start(SinkOptions {
        smtps: Some((ca.cert.clone(), ca.key.clone())),
        ..SinkOptions::default()
    });
    let settings = SmtpSettings {
        tls: SmtpTls::Tls,
        ca_file: Some(ca.ca_pem.clone()),
        ..plain(sink.port)
    };
    send(&settings, None, 10_000)
        .unwrap_or_else(|f| panic!("{f}\nsink stderr:\n{}", sink.stderr()));
    assert_eq!(sink.messages().len(), 1);
}

#[test]
fn an_untrusted_certificate_fails_delivery_failed() {
    let (sink, settings, _ca) = starttls_sink(None);
    let settings = SmtpSettings {
        ca_file: None,
        ..settings
    };
    let failure = send(&settings, None, 1_000).expect_err("untrusted");
    assert_eq!(failure.reason_slug, "delivery_failed");
    assert!(
        failure
            .message
            .contains(&format!("localhost:{}", sink.port)),
        "{}",
        failure.message
    );
    assert!(sink.messages().is_empty());
}

#[test]
fn starttls_required_but_not_offered_fails_delivery_failed() {
    let sink = SmtpSink::start(SinkOptions::default());
    let settings = SmtpSettings {
        tls: SmtpTls::Starttls,
        ..plain(sink.port)
    };
    let failure = send(&settings, None, 1_000).expect_err("no STARTTLS");
    assert_eq!(failure.reason_slug, "delivery_failed");
    assert!(sink.messages().is_empty(), "sent in clear text");
}

#[test]
fn a_closed_port_fails_delivery_failed_naming_host_and_port() {
    let port = closed_port();
    let failure = send(&plain(port), None, 1_000).expect_err("refused");
    assert_eq!(failure.reason_slug, "delivery_failed");
    assert_has(&failure.message, &format!("127.0.0.1:{port}"));
}

#[test]
fn a_server_that_refuses_the_message_fails_with_its_answer() {
    let sink = replying("554 5.7.1 Rejected by content policy");
    let failure = send(&plain(sink.port), None, 1_000).expect_err("554");
    assert_eq!(failure.reason_slug, "delivery_failed");
    assert_has(&failure.message, "554");
    assert_has(&failure.message, "Rejected by content policy");
}

#[test]
fn a_server_size_limit_below_the_message_fails_delivery_failed() {
    // What a provider with a 25 MB (or Postfix's 10 MB) limit does to a large package.
    let sink = SmtpSink::start(SinkOptions {
        size: Some(1_000_000),
        ..SinkOptions::default()
    });
    let failure = send(&plain(sink.port), None, 900_000).expect_err("552");
    assert_eq!(failure.reason_slug, "delivery_failed");
    assert_has(&failure.message, "552");
    assert!(sink.messages().is_empty());
}

#[test]
fn wrong_credentials_fail_without_showing_them() {
    let (sink, settings, _ca) = starttls_sink(Some("mailer:right-password"));
    let failure =
        send(&settings, Some(("mailer-user-x", "hunter2-wrong")), 1_000).expect_err("bad login");
    assert_eq!(failure.reason_slug, "delivery_failed");
    assert_has(&failure.message, "535");
    let shown = format!("{failure} {failure:?}");
    assert!(!shown.contains("hunter2-wrong"), "{shown}");
    assert!(!shown.contains("mailer-user-x"), "{shown}");
    assert!(sink.messages().is_empty());
}

#[test]
fn the_queue_id_in_the_final_reply_becomes_the_object_id() {
    let sink = replying("250 2.0.0 Ok: queued as 4XyZ9Q1abc");
    let receipt = send(&plain(sink.port), None, 1_000).unwrap();
    assert_eq!(receipt.object_id.as_deref(), Some("4XyZ9Q1abc"));
}

#[test]
fn a_silent_server_times_out_as_delivery_failed() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accepts and never says a word.
    let holder = std::thread::spawn(move || listener.accept().map(|(s, _)| s));
    let settings = SmtpSettings {
        timeout_seconds: Some(1),
        ..plain(port)
    };
    let start = Instant::now();
    let failure = send(&settings, None, 1_000).expect_err("timeout");
    assert_eq!(failure.reason_slug, "delivery_failed");
    assert_has(&failure.message, "within 1 s");
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "took {:?}",
        start.elapsed()
    );
    drop(holder.join());
}

#[test]
fn bad_addresses_are_input_invalid_before_connecting() {
    let sink = SmtpSink::start(SinkOptions::default());
    let tmp = temp_dir();
    let zip = package(tmp.path(), 1_000);
    let failure =
        deliver(&plain(sink.port), None, &zip, "not an address", "x").expect_err("bad recipient");
    assert_eq!(failure.reason_slug, "input_invalid");
    assert_has(&failure.message, "not an address");

    let settings = SmtpSettings {
        from: "nobody".into(),
        ..plain(sink.port)
    };
    let failure = send(&settings, None, 1_000).expect_err("bad from");
    assert_eq!(failure.reason_slug, "input_invalid");
    assert_eq!(sink.connections(), 0);
}

#[test]
fn credentials_over_plain_smtp_to_a_remote_host_are_refused() {
    let settings = SmtpSettings {
        // TEST-NET-1: never routed, and never contacted because the check comes first.
        host: "192.0.2.1".into(),
        ..plain(25)
    };
    let failure = send(&settings, Some(("user", "pw-123")), 1_000).expect_err("clear text");
    assert_eq!(failure.reason_slug, "input_invalid");
    assert_has(&failure.message, "clear text");
    assert!(!failure.message.contains("pw-123"));
}

/// Every line of a received message: none starts with '.', none is over RFC 5322's 998.
fn assert_sendable_lines(eml: &[u8]) {
    for line in eml.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        assert!(line.len() <= 998, "a line of {} characters", line.len());
        assert!(!line.starts_with(b"."), "{}", String::from_utf8_lossy(line));
    }
}

/// A 50-character name plus `.zip`: the text part names it, and quoted-printable's soft
/// line break used to put `.zip` first on a line, which the dot-line guard refused on every
/// attempt (audit-deliver #2). Other lengths around it, and a name of dots, too.
#[test]
fn a_long_package_name_is_delivered_under_its_own_name() {
    let sink = SmtpSink::start(SinkOptions::default());
    let names = [
        format!("{}.zip", "L".repeat(50)),
        format!("{}.zip", "M".repeat(51)),
        format!("{}.zip", "N".repeat(200)),
        format!("{}.zip", "..a".repeat(40)),
    ];
    for name in &names {
        let tmp = temp_dir();
        let zip = tmp.path().join(name);
        std::fs::write(&zip, noise(2_000)).unwrap();
        let receipt = deliver(&plain(sink.port), None, &zip, RECIPIENT, "x")
            .unwrap_or_else(|f| panic!("{name}: {f}\nsink stderr:\n{}", sink.stderr()));
        assert_eq!(receipt.bytes, 2_000);
    }
    let messages = sink.messages();
    assert_eq!(messages.len(), names.len());
    for (msg, name) in messages.iter().zip(&names) {
        assert_sendable_lines(&msg.eml);
        let (texts, attachments) = smtp::parts(&msg.eml);
        assert_eq!(attachments.len(), 1);
        assert_eq!(&attachments[0].file_name, name);
        assert_eq!(attachments[0].data, noise(2_000));
        assert_has(&texts.join("\n"), &format!("sha256sum {name}"));
    }
}

/// A subject with a 3000-character word used to go out as one 3009-character header line,
/// which servers refuse ("500 Line too long") on every attempt (audit-deliver #3). It is
/// now written as RFC 2047 encoded words: delivered, and read back unchanged.
#[test]
fn a_subject_with_a_very_long_word_is_delivered_unchanged() {
    let sink = SmtpSink::start(SinkOptions::default());
    let subjects = [
        "A".repeat(3000),
        format!("Report {} for März", "x".repeat(1500)),
        // Folded by lettre at its spaces, and left readable.
        "word ".repeat(600).trim_end().to_string(),
    ];
    for subject in &subjects {
        let tmp = temp_dir();
        let zip = package(tmp.path(), 1_000);
        deliver(&plain(sink.port), None, &zip, RECIPIENT, subject)
            .unwrap_or_else(|f| panic!("{f}\nsink stderr:\n{}", sink.stderr()));
    }
    let messages = sink.messages();
    assert_eq!(messages.len(), subjects.len());
    for (msg, subject) in messages.iter().zip(&subjects) {
        assert_sendable_lines(&msg.eml);
        let received = smtp::header(&msg.eml, "Subject").unwrap();
        assert_eq!(&smtp::decode_header(&received), subject);
    }
    // A subject of short words is not encoded.
    let plain_words = smtp::header(&messages[2].eml, "Subject").unwrap();
    assert!(!plain_words.contains("=?"), "{plain_words:.100}");
}

/// The package's bytes as read go to `as_read` before the server is contacted: bytes the step
/// refuses (not what its producing step recorded: a package swapped after the binding's
/// check) are never sent.
#[test]
fn bytes_refused_as_read_are_never_sent() {
    let sink = SmtpSink::start(SinkOptions::default());
    let tmp = temp_dir();
    let zip = package(tmp.path(), 1000);
    let want = sha256_hex(&std::fs::read(&zip).unwrap());
    let seen = std::cell::RefCell::new(None);
    let as_read = |bytes: u64, sha256: &str| {
        *seen.borrow_mut() = Some((bytes, sha256.to_string()));
        Err(StepFailure::module_failed("not as recorded"))
    };
    let mail = Mail {
        package_zip: &at(&zip),
        recipient: RECIPIENT,
        subject: "x",
        delivery: DELIVERY,
    };
    let failure = platform::builtin::deliver_email_as_read(
        &plain(sink.port),
        None,
        &mail,
        &step_deadline(),
        &as_read,
    )
    .expect_err("refused");
    assert!(failure.message.contains("not as recorded"), "{failure}");
    assert_eq!(seen.into_inner(), Some((1000, want)));
    assert!(sink.messages().is_empty(), "nothing was sent");
}
