//! deliver_email through the orchestrator against a real SMTP server (aiosmtpd on loopback):
//! the size cap, STARTTLS, refusals, and the refunds each failure earns.
#![allow(clippy::unwrap_used, clippy::expect_used)]
use crate::support::orch::{run_of, step_dir, step_of};
use crate::support::smtp;
use crate::support::{Fx, Transcript};
use sha2::{Digest, Sha256};

fn email_workorder(size: u64) -> String {
    format!(
        r#"work_order_id: mail
steps:
  - step_id: make
    module_id: blob
    kind: transform
    inputs: {{size: {size}}}
  - step_id: send
    module_id: deliver_email
    kind: delivery
    inputs:
      package_zip: {{from_step: make, output_id: file}}
      recipient_email: client@example.com
      subject: Your package
"#
    )
}

fn profile(fx: &Fx, port: u16, extra: &str) {
    fx.write(
        "config/runtime_profile.local.yml",
        format!("profile_name: test\nsmtp: {{host: 127.0.0.1, port: {port}, tls: {extra}, from: platform@example.com, timeout_seconds: 30}}\n"),
    );
}

/// The orch fixture with a profile for the sink on `port`, the mail work order sending a
/// package of `size` bytes, and 10 credits.
fn mail_fx(port: u16, size: u64) -> Fx {
    let fx = Fx::new();
    profile(&fx, port, "none");
    fx.workorder("mail", &email_workorder(size));
    fx.topup(10, "r1");
    fx
}

#[test]
fn the_largest_allowed_package_arrives_intact() {
    let sink = smtp::SmtpSink::start(smtp::SinkOptions {
        size: Some(40_000_000),
        ..Default::default()
    });
    let fx = mail_fx(sink.port, 20_866_661);
    let (code, sum, stderr) = fx.orchestrate(&[]);
    assert_eq!(code, 0, "{sum}\n{stderr}\n{}", sink.stderr());
    assert_eq!(run_of(&sum, "mail")["status"], "COMPLETED");
    let msgs = sink.messages();
    assert_eq!(msgs.len(), 1);
    let (_, atts) = smtp::parts(&msgs[0].eml);
    assert_eq!(atts.len(), 1);
    assert_eq!(atts[0].file_name, "package.zip");
    assert_eq!(atts[0].data.len(), 20_866_661);
    let sent = fx.bytes(&format!(
        "{}/outputs/package.zip",
        step_dir(run_of(&sum, "mail"), "make")
    ));
    assert_eq!(Sha256::digest(&atts[0].data), Sha256::digest(&sent));
    let receipt = &fx.of_type("evidence.jsonl", "delivery_receipt")[0];
    assert_eq!(receipt["provider"], "email");
    assert_eq!(receipt["bytes"], 20_866_661);
    assert_eq!(fx.of_type("billing.jsonl", "REFUND").len(), 0);
}

#[test]
fn one_byte_more_fails_before_connecting_and_is_refunded() {
    let sink = smtp::SmtpSink::start(smtp::SinkOptions::default());
    let fx = mail_fx(sink.port, 20_866_662);
    let (_, sum, _) = fx.orchestrate(&[]);
    let run = run_of(&sum, "mail");
    assert_eq!(run["status"], "PARTIAL");
    assert_eq!(
        step_of(run, "send")["reason_slug"],
        "package_too_large_for_email"
    );
    assert_eq!(sink.connections(), 0, "no connection may be made");
    assert!(sink.messages().is_empty());
    let refunds = fx.of_type("billing.jsonl", "REFUND");
    assert_eq!(refunds.len(), 1);
    assert_eq!(refunds[0]["step_id"], "send");
    assert_eq!(refunds[0]["reason_slug"], "package_too_large_for_email");
    assert_eq!(fx.balance(), 10 - 1);
}

#[test]
fn starttls_with_a_test_ca_delivers() {
    let ca = smtp::make_test_ca();
    let sink = smtp::SmtpSink::start(smtp::SinkOptions {
        starttls: Some((ca.cert.clone(), ca.key.clone())),
        ..Default::default()
    });
    let fx = mail_fx(sink.port, 1000);
    fx.write(
        "config/runtime_profile.local.yml",
        format!(
            "profile_name: test\nsmtp: {{host: localhost, port: {}, tls: starttls, from: platform@example.com, ca_file: {}}}\n",
            sink.port,
            ca.ca_pem.display()
        ),
    );
    let (code, sum, stderr) = fx.orchestrate(&[]);
    assert_eq!(code, 0, "{sum}\n{stderr}\n{}", sink.stderr());
    assert_eq!(sink.messages().len(), 1);
}

#[test]
fn a_refused_connection_fails_delivery_and_is_refunded() {
    let fx = mail_fx(smtp::closed_port(), 1000);
    let (_, sum, _) = fx.orchestrate(&[]);
    let run = run_of(&sum, "mail");
    assert_eq!(step_of(run, "send")["reason_slug"], "delivery_failed");
    let refunds = fx.of_type("billing.jsonl", "REFUND");
    assert_eq!(refunds.len(), 1);
    assert_eq!(refunds[0]["amount_credits"], 2);
    assert_eq!(fx.balance(), 9);
}

/// The recipient check before charging is the one the send uses, and consistency-validate
/// runs it on a literal recipient: an address the send would refuse (a domain literal, a
/// display-name form, control characters, a list, an over-long local part) makes the work
/// order invalid, so nothing of it runs or is charged, the blob step before the delivery
/// included, and nothing reaches the server. Until 2026-12-03 (audit4 F3) the blob step was
/// charged on every pass and the delivery then failed `input_invalid`.
#[test]
fn a_recipient_the_send_would_refuse_is_refused_before_anything_is_charged() {
    let sink = smtp::SmtpSink::start(smtp::SinkOptions::default());
    let long = format!("{}@example.org", "a".repeat(300));
    for to in [
        "a@[127.0.0.1]",
        "\"Name <a@example.com>\"",
        "\"a@example.com\\r\\nRCPT TO:<b@example.com>\"",
        "not-an-address",
        "\"a@example.org, b@example.org\"",
        long.as_str(),
    ] {
        let fx = mail_fx(sink.port, 100);
        let wo = email_workorder(100).replace("client@example.com", to);
        fx.workorder("mail", &wo);
        assert_refused_before_anything_is_charged(&fx, to, &[]);
    }
    assert!(sink.messages().is_empty(), "nothing may be sent");
}

/// consistency-validate names the work order's recipient (file, line, field), and a pass
/// (`extra` its flags) calls the work order invalid: no run, no SPEND, the balance whole.
fn assert_refused_before_anything_is_charged(fx: &Fx, to: &str, extra: &[&str]) {
    let out = fx.run(&["consistency-validate", "--format", "json"]);
    let v = out.json();
    assert_eq!(out.status.code(), Some(1), "{to}: {v}");
    let f = crate::support::check::find(&v["errors"], "file", "tenants/t1/workorders/mail.yml");
    assert_eq!(f["field"], "steps[1].inputs.recipient_email", "{to}: {v}");
    assert_eq!(f["line"], 12, "{to}: {v}");
    let (code, sum, stderr) = fx.orchestrate(extra);
    assert_eq!(
        code, 1,
        "{to} {extra:?}: an invalid work order: {sum}\n{stderr}"
    );
    let invalid = crate::support::check::find(&sum["invalid"], "work_order_id", "mail");
    assert!(
        invalid.to_string().contains("recipient_email"),
        "{to}: {invalid}"
    );
    assert!(
        sum["runs"].as_array().is_some_and(|r| r.is_empty()),
        "{to}: nothing runs: {sum}"
    );
    assert!(fx.of_type("billing.jsonl", "SPEND").is_empty(), "{to}");
    assert_eq!(fx.balance(), 10, "{to}");
}

/// A quoted local part that lettre's own address parser takes but its envelope (read back
/// from the To header) refuses used to pass the check before charging, be charged, then
/// fail `input_invalid` with no refund, again at each --retry-failed (audit-deliver #1).
/// The check before charging composes the message as the send does, and consistency-validate
/// runs it on the literal recipient: the work order is invalid, nothing charged, on the first
/// pass and on the retry. A quoted form lettre does take is delivered. No step that was
/// charged ends `input_invalid`.
#[test]
fn a_quoted_recipient_is_refused_before_charging_or_delivered() {
    let sink = smtp::SmtpSink::start(smtp::SinkOptions::default());
    for to in [
        r#"'"a,b"@example.org'"#,
        r#"'"x@evil.org"@x.org'"#,
        r#"'"a>\"<b"@x.org'"#,
        r#"'"a b"@x.org'"#,
    ] {
        let fx = mail_fx(sink.port, 100);
        fx.workorder(
            "mail",
            &email_workorder(100).replace("client@example.com", to),
        );
        for pass in [&[][..], &["--retry-failed"][..]] {
            assert_refused_before_anything_is_charged(&fx, to, pass);
        }
    }
    assert!(sink.messages().is_empty(), "nothing may be sent");

    // "abc"@x.org is abc@x.org: lettre takes it, so it is delivered.
    let fx = mail_fx(sink.port, 100);
    fx.workorder(
        "mail",
        &email_workorder(100).replace("client@example.com", r#"'"abc"@x.org'"#),
    );
    let (code, sum, stderr) = fx.orchestrate(&[]);
    assert_eq!(code, 0, "{sum}\n{stderr}\n{}", sink.stderr());
    assert_eq!(run_of(&sum, "mail")["status"], "COMPLETED", "{sum}");
    let msgs = sink.messages();
    assert_eq!(msgs.len(), 1);
    assert_eq!(
        msgs[0].envelope["rcpt_tos"],
        serde_json::json!(["abc@x.org"])
    );
    assert_no_charged_step_ends_input_invalid(&fx);
}

/// The mail work order with its recipient bound from the value output `to` of step `a`
/// (module addr, tests/fixtures/mail_bound), which hands on the literal `to`.
fn bound_recipient_workorder(to: &str) -> String {
    let quoted = format!("'{}'", to.replace('\'', "''"));
    format!(
        r#"work_order_id: mail
steps:
  - step_id: make
    module_id: blob
    kind: transform
    inputs: {{size: 100}}
  - step_id: a
    module_id: addr
    kind: transform
    inputs: {{to: {quoted}}}
  - step_id: send
    module_id: deliver_email
    kind: delivery
    inputs:
      package_zip: {{from_step: make, output_id: file}}
      recipient_email: {{from_step: a, output_id: to}}
      subject: Your package
"#
    )
}

/// A recipient validation cannot see (an earlier step's value output) is checked by
/// `runner::prepare` before the send is charged, with the check the send uses: an address
/// the send would refuse ends the send FAILED `input_invalid` with no step started, no SPEND
/// and nothing reaching the server; only the steps before it are charged. Without that check
/// the send was charged, then failed `input_invalid` unrefunded (again at each retry).
#[test]
fn a_bound_recipient_the_send_would_refuse_is_refused_before_it_is_charged() {
    let sink = smtp::SmtpSink::start(smtp::SinkOptions::default());
    for to in [
        r#""a,b"@example.org"#,
        "a@[127.0.0.1]",
        r#""x@evil.org"@x.org"#,
    ] {
        let fx = Fx::new().overlay("mail_bound", "");
        profile(&fx, sink.port, "none");
        fx.workorder("mail", &bound_recipient_workorder(to));
        fx.topup(100, "r1");
        let check = fx.run(&["consistency-validate"]);
        assert_eq!(check.status.code(), Some(0), "{to}: {}", check.text());
        for pass in [&[][..], &["--retry-failed"][..]] {
            let (_, sum, stderr) = fx.orchestrate(pass);
            let run = run_of(&sum, "mail");
            let send = step_of(run, "send");
            assert_eq!(send["status"], "FAILED", "{to} {pass:?}: {sum}\n{stderr}");
            assert_eq!(send["reason_slug"], "input_invalid", "{to} {pass:?}: {sum}");
            let of_step = |step: &str, ty: &str| {
                (fx.of_type("billing.jsonl", ty).into_iter())
                    .chain(fx.of_type("evidence.jsonl", ty))
                    .filter(|r| r["step_id"] == step)
                    .count()
            };
            assert_eq!(of_step("a", "step_started"), 1, "{to}: the producer ran");
            assert_eq!(of_step("send", "SPEND"), 0, "{to} {pass:?}: never charged");
            assert_eq!(
                of_step("send", "step_started"),
                0,
                "{to} {pass:?}: never started"
            );
            // The blob (1) and the producer (1), once: the retry runs the send alone.
            assert_eq!(fx.balance(), 100 - 1 - 1, "{to} {pass:?}");
        }
        assert_no_charged_step_ends_input_invalid(&fx);
    }
    assert_eq!(sink.connections(), 0, "nothing may reach the server");
    assert!(sink.messages().is_empty(), "nothing may be sent");
}

/// SPEC §4: `input_invalid` is found before charging. No step outcome says it for an
/// attempt that has a SPEND.
fn assert_no_charged_step_ends_input_invalid(fx: &Fx) {
    let spends = fx.of_type("billing.jsonl", "SPEND");
    for outcome in fx.of_type("evidence.jsonl", "step_outcome") {
        if outcome["reason_slug"] != "input_invalid" {
            continue;
        }
        let charged = spends.iter().any(|s| {
            s["work_order_id"] == outcome["work_order_id"]
                && s["step_id"] == outcome["step_id"]
                && s["attempt"] == outcome["attempt"]
        });
        assert!(!charged, "a charged step ended input_invalid: {outcome}");
    }
}

/// audit4 F1: a server that keeps a send going, one line a second (a `220-` greeting that
/// never ends, or a `250-` answer to the message that never ends), made the step, and the
/// whole pass holding the billing lock, run forever: `smtp.timeout_seconds` bounds each
/// read only, and a built-in ignored its module's `timeout_seconds`. Now the step ends at
/// that deadline (3 s here), FAILED `timeout`, refunded, and the pass ends; the next pass,
/// with the lock free, ends the same way. The watchdog (120 s) only keeps a regression from
/// hanging the suite.
#[test]
fn a_tarpitting_server_ends_the_step_at_its_timeout_and_it_is_refunded() {
    for mode in [smtp::Tarpit::Banner, smtp::Tarpit::DataReply] {
        let tarpit = smtp::SmtpTarpit::start(mode);
        let fx = mail_fx(tarpit.port, 1000);
        let module = "modules/deliver_email/module.yml";
        fx.write(
            module,
            format!("{}timeout_seconds: 3\n", fx.read_text(module)),
        );
        let watchdog = std::time::Duration::from_secs(120);
        for pass in [
            &["orchestrator", "--json"][..],
            &["orchestrator", "--json", "--retry-failed"],
        ] {
            let out = fx.run_watched_for(pass, watchdog);
            let sum = out.json();
            assert_eq!(
                out.status.code(),
                Some(0),
                "{mode:?} {pass:?}: {sum}\n{}",
                out.stderr_text()
            );
            let send = step_of(run_of(&sum, "mail"), "send");
            assert_eq!(send["status"], "FAILED", "{mode:?} {pass:?}: {sum}");
            assert_eq!(send["reason_slug"], "timeout", "{mode:?} {pass:?}: {sum}");
            let message = send["message"].as_str().unwrap_or_default();
            assert!(
                message.contains("timeout_seconds = 3") && message.contains("may still complete"),
                "{mode:?}: {message}"
            );
        }
        let refunds = fx.of_type("billing.jsonl", "REFUND");
        assert_eq!(refunds.len(), 2, "{mode:?}: one per attempt: {refunds:?}");
        assert!(
            refunds
                .iter()
                .all(|r| r["step_id"] == "send" && r["reason_slug"] == "timeout"),
            "{refunds:?}"
        );
        assert_eq!(
            fx.balance(),
            10 - 1,
            "{mode:?}: only the blob step is paid for"
        );
        assert_eq!(tarpit.connections(), 2, "{mode:?}");
        // The data_reply tarpit took both messages in full: a timeout proves nothing about
        // delivery (docs/delivery.md, "At-least-once").
        let taken = match mode {
            smtp::Tarpit::Banner => 0,
            smtp::Tarpit::DataReply => 2,
        };
        assert_eq!(tarpit.messages(), taken, "{mode:?}");
    }
}

/// One package (gen's data.json, packed) mailed to one address with the default subject.
const SAME_PACKAGE: &str = "steps:
  - {step_id: make, module_id: gen, kind: transform, inputs: {text: a b}}
  - step_id: pack
    module_id: package_std
    kind: packaging
    inputs:
      bound_outputs: [{from_step: make, output_id: data_json, as_path: data.json}]
  - step_id: send
    module_id: deliver_email
    kind: delivery
    inputs:
      package_zip: {from_step: pack, output_id: package_zip}
      recipient_email: client@example.com
";

/// The Message-ID is the delivery's (tenant, work order, run, step): two work orders of one
/// tenant and one of another tenant, each charged, mail the same package to the same address
/// and get three Message-IDs (and three receipt object_ids: aiosmtpd names no queue id), so a
/// receiver that de-duplicates on it shows all three; the delivery re-sent after a crash
/// between the send and its outcome carries its first Message-ID, so such a receiver shows it
/// once. The next run of a work order (a `platform rerun`) and the second of two
/// deliver_email steps of one work order are deliveries of their own too, each with its own
/// Message-ID. Until 2026-12-04 the ID was derived from the package, recipient, sender and
/// subject only: all these messages had one Message-ID.
#[test]
fn each_delivery_has_its_own_message_id_and_a_resend_keeps_it() {
    let sink = smtp::SmtpSink::start(smtp::SinkOptions::default());
    let fx = Fx::new();
    profile(&fx, sink.port, "none");
    fx.add_tenant("t2");
    fx.workorder("a", &format!("work_order_id: a\n{SAME_PACKAGE}"));
    fx.fund("t1", 50, "r1");
    fx.fund("t2", 50, "r1");
    // make, pack, send: the crash comes after the third module, the send, before its outcome.
    let crashed = fx.run_env(
        &["orchestrator"],
        &[("PLATFORM_FAILPOINT", "after_module@3")],
    );
    assert!(!crashed.status.success(), "the failpoint aborts the pass");
    assert_eq!(sink.messages().len(), 1, "{}", sink.stderr());
    fx.workorder("b", &format!("work_order_id: b\n{SAME_PACKAGE}"));
    fx.workorder_for("t2", "a", &format!("work_order_id: a\n{SAME_PACKAGE}"));
    let (code, sum, stderr) = fx.orchestrate(&[]);
    assert_eq!(code, 0, "{sum}\n{stderr}\n{}", sink.stderr());

    let receipts = fx.of_type("evidence.jsonl", "delivery_receipt");
    assert_eq!(receipts.len(), 3, "{receipts:?}");
    let package = receipts[0]["sha256"].as_str().unwrap();
    assert!(
        receipts.iter().all(|r| r["sha256"] == package),
        "one package"
    );
    let mut ids = vec![
        id_of(&fx, "t1", "a", 1, "send"),
        id_of(&fx, "t1", "b", 1, "send"),
        id_of(&fx, "t2", "a", 1, "send"),
    ];
    let sent = message_ids(&sink);
    assert_eq!(sent.len(), 4, "{sent:?}");
    let times = |sent: &[String], id: &str| sent.iter().filter(|s| *s == id).count();
    assert_eq!(
        times(&sent, &ids[0]),
        2,
        "t1/a, sent again after the crash: {sent:?}"
    );
    assert_eq!(times(&sent, &ids[1]), 1, "{sent:?}");
    assert_eq!(times(&sent, &ids[2]), 1, "{sent:?}");
    assert_eq!(
        sent[0], ids[0],
        "the first send, before the crash, was t1/a's"
    );

    // The next run of t1/a, and a work order of t1 with two deliver_email steps, each
    // mailing the same package to the same address.
    let rerun = [
        "rerun",
        "--tenant-id",
        "t1",
        "--work-order-id",
        "a",
        "--reason",
        "again",
        "--actor",
        "tester",
    ];
    fx.run(&rerun).expect_ok();
    let second_send = "  - step_id: send2
    module_id: deliver_email
    kind: delivery
    inputs:
      package_zip: {from_step: pack, output_id: package_zip}
      recipient_email: client@example.com
";
    fx.workorder(
        "two",
        &format!("work_order_id: two\n{SAME_PACKAGE}{second_send}"),
    );
    let (code, sum, stderr) = fx.orchestrate(&[]);
    assert_eq!(code, 0, "{sum}\n{stderr}\n{}", sink.stderr());
    let receipts = fx.of_type("evidence.jsonl", "delivery_receipt");
    assert_eq!(receipts.len(), 6, "{receipts:?}");
    assert!(
        receipts.iter().all(|r| r["sha256"] == package),
        "one package"
    );
    ids.extend([
        id_of(&fx, "t1", "a", 2, "send"),
        id_of(&fx, "t1", "two", 1, "send"),
        id_of(&fx, "t1", "two", 1, "send2"),
    ]);
    let distinct: std::collections::BTreeSet<_> = ids.iter().collect();
    assert_eq!(distinct.len(), 6, "{ids:?}");
    let sent = message_ids(&sink);
    assert_eq!(sent.len(), 7, "{sent:?}");
    for id in &ids[3..] {
        assert_eq!(times(&sent, id), 1, "{id}: {sent:?}");
    }
}

/// The receipt `object_id` of the delivery `step` of run `run` of `tenant`/`wo` (aiosmtpd
/// names no queue id: it is the Message-ID).
fn id_of(fx: &Fx, tenant: &str, wo: &str, run: u64, step: &str) -> String {
    let runs = fx.of_type("evidence.jsonl", "run_started");
    let run_id = runs
        .iter()
        .find(|r| r["tenant_id"] == tenant && r["work_order_id"] == wo && r["run"] == run)
        .unwrap_or_else(|| panic!("no run {run} of {tenant}/{wo}: {runs:?}"))["run_id"]
        .clone();
    let receipts = fx.of_type("evidence.jsonl", "delivery_receipt");
    let r = receipts
        .iter()
        .find(|r| r["run_id"] == run_id && r["step_id"] == step)
        .unwrap_or_else(|| panic!("no receipt of {tenant}/{wo} r{run} {step}: {receipts:?}"));
    r["object_id"].as_str().unwrap().to_string()
}

/// The Message-ID of each message the sink accepted, in arrival order.
fn message_ids(sink: &smtp::SmtpSink) -> Vec<String> {
    (sink.messages().iter())
        .map(|m| smtp::header(&m.eml, "Message-ID").unwrap())
        .collect()
}

/// A delivery the server refused (451: it may be retried) is refunded; the `--retry-failed`
/// that sends it again is a new attempt of the same delivery, so it carries the Message-ID
/// of the refused send (docs/delivery.md: not the attempt), which lets a receiver that got
/// both fold them.
#[test]
fn a_delivery_retried_after_a_refusal_keeps_its_message_id() {
    let refusing = smtp::SmtpSink::start(smtp::SinkOptions {
        reply: Some("451 4.3.0 try again later".into()),
        ..Default::default()
    });
    let fx = Fx::new();
    profile(&fx, refusing.port, "none");
    fx.workorder("a", &format!("work_order_id: a\n{SAME_PACKAGE}"));
    fx.topup(50, "r1");
    let (_, sum, stderr) = fx.orchestrate(&[]);
    let send = step_of(run_of(&sum, "a"), "send");
    assert_eq!(send["reason_slug"], "delivery_failed", "{sum}\n{stderr}");
    let refused = refusing.refused();
    assert_eq!(refused.len(), 1, "{}", refusing.stderr());
    let first = smtp::header(&refused[0].eml, "Message-ID").unwrap();

    let sink = smtp::SmtpSink::start(smtp::SinkOptions::default());
    profile(&fx, sink.port, "none");
    let (code, sum, stderr) = fx.orchestrate(&["--retry-failed"]);
    assert_eq!(code, 0, "{sum}\n{stderr}\n{}", sink.stderr());
    assert_eq!(run_of(&sum, "a")["status"], "COMPLETED", "{sum}");
    let receipts = fx.of_type("evidence.jsonl", "delivery_receipt");
    assert_eq!(receipts.len(), 1, "{receipts:?}");
    assert_eq!(receipts[0]["attempt"], 2, "a new attempt: {receipts:?}");
    assert_eq!(
        message_ids(&sink),
        [first.as_str()],
        "the retry's Message-ID"
    );
    assert_eq!(receipts[0]["object_id"], first.as_str());
}
