//! Test support: a real aiosmtpd server on loopback (smtp_sink.py), a tarpitting one (smtp_tarpit.py), a throwaway CA, and a small .eml reader.
#![allow(dead_code)]

use super::fx::temp_dir;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A port on loopback where nothing listens: bound, read, released.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// What the sink should speak besides plain SMTP.
#[derive(Default, Clone)]
pub struct SinkOptions {
    /// Offer STARTTLS with this certificate and key.
    pub starttls: Option<(PathBuf, PathBuf)>,
    /// Speak TLS from the first byte (SMTPS) with this certificate and key.
    pub smtps: Option<(PathBuf, PathBuf)>,
    /// Accept AUTH for exactly this `user:password`.
    pub auth: Option<String>,
    /// Offer AUTH without TLS and refuse every login with a 535 echoing the login and
    /// password it got (logged to `auth.log` in `dir`).
    pub echo_auth: bool,
    /// Answer DATA with this line instead of `250 OK` (a non-250 refuses the message).
    pub reply: Option<String>,
    /// The SIZE limit it advertises and enforces.
    pub size: Option<u64>,
}

/// A running sink; killed when dropped.
pub struct SmtpSink {
    child: Child,
    pub port: u16,
    pub dir: PathBuf,
    _tmp: tempfile::TempDir,
}

/// One accepted message.
pub struct Received {
    pub eml: Vec<u8>,
    pub envelope: serde_json::Value,
}

/// `PLATFORM_TEST_PYTHON`, else the venv scripts/setup-test-deps.sh makes, else `python3`.
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("PLATFORM_TEST_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/venv/bin/python");
    if venv.exists() {
        return venv;
    }
    PathBuf::from("python3")
}

/// The SMTP tests are the real-peer check of deliver_email: they fail, never skip, when
/// the server cannot be started.
fn require_aiosmtpd(python: &Path) {
    let ok = Command::new(python)
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "aiosmtpd is not importable from {}: run scripts/setup-test-deps.sh \
         (or point PLATFORM_TEST_PYTHON at a Python that has aiosmtpd 1.4.6)",
        python.display()
    );
}

impl SmtpSink {
    pub fn start(opts: SinkOptions) -> SmtpSink {
        let python = python();
        require_aiosmtpd(&python);
        let tmp = tempfile::tempdir().expect("temp dir for the sink");
        let dir = tmp.path().join("mail");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/support/smtp_sink.py");
        let mut cmd = Command::new(&python);
        cmd.arg(&script)
            .arg("--dir")
            .arg(&dir)
            .args(["--port", "0"]);
        if let Some((cert, key)) = &opts.starttls {
            cmd.arg("--starttls").arg(cert).arg(key);
        }
        if let Some((cert, key)) = &opts.smtps {
            cmd.arg("--smtps").arg(cert).arg(key);
        }
        if let Some(auth) = &opts.auth {
            cmd.arg("--auth").arg(auth);
        }
        if opts.echo_auth {
            cmd.arg("--echo-auth");
        }
        if let Some(reply) = &opts.reply {
            cmd.arg("--reply").arg(reply);
        }
        if let Some(size) = opts.size {
            cmd.arg("--size").arg(size.to_string());
        }
        let (child, port) = start_ready(cmd, &tmp.path().join("sink.log"));
        SmtpSink {
            child,
            port,
            dir,
            _tmp: tmp,
        }
    }

    /// Messages accepted so far, in arrival order.
    pub fn messages(&self) -> Vec<Received> {
        self.kept("")
    }

    /// Messages received in full and refused (`SinkOptions::reply`), in arrival order.
    pub fn refused(&self) -> Vec<Received> {
        self.kept("refused-")
    }

    /// The messages kept as `<prefix><n>.eml` (numbered from 1, in arrival order).
    fn kept(&self, prefix: &str) -> Vec<Received> {
        let mut out = Vec::new();
        for n in 1.. {
            let eml = self.dir.join(format!("{prefix}{n}.eml"));
            let Ok(bytes) = std::fs::read(&eml) else {
                break;
            };
            let envelope = std::fs::read(self.dir.join(format!("{prefix}{n}.json")))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or(serde_json::Value::Null);
            out.push(Received {
                eml: bytes,
                envelope,
            });
        }
        out
    }

    /// TCP connections the sink has seen.
    pub fn connections(&self) -> usize {
        std::fs::read_to_string(self.dir.join("connections.log"))
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }

    /// What `echo_auth` logged of each AUTH it refused: mechanism, login, password.
    pub fn auth_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("auth.log")).unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self._tmp.path().join("sink.log")).unwrap_or_default()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Spawn a server script that prints `READY <port>` once listening (stderr to `log`); its
/// process and port. Panics, with its stderr, when it does not start within 30 s.
fn start_ready(mut cmd: Command, log: &Path) -> (Child, u16) {
    let log_file = std::fs::File::create(log).expect("server log");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log_file)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {cmd:?}: {e}"));
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
    let port = line
        .strip_prefix("READY ")
        .and_then(|p| p.trim().parse::<u16>().ok());
    let Some(port) = port else {
        let _ = child.kill();
        let _ = child.wait();
        let log = std::fs::read_to_string(log).unwrap_or_default();
        panic!("{cmd:?} did not start (first line {line:?}); its stderr:\n{log}");
    };
    (child, port)
}

/// A server that never lets a client finish but sends a line every second (smtp_tarpit.py),
/// so only an overall deadline ends a send; killed when dropped.
pub struct SmtpTarpit {
    child: Child,
    pub port: u16,
    pub dir: PathBuf,
    _tmp: tempfile::TempDir,
}

/// How the tarpit holds a client.
#[derive(Debug, Clone, Copy)]
pub enum Tarpit {
    /// `220-` greeting lines, forever.
    Banner,
    /// Takes the whole message, then `250-` lines, forever.
    DataReply,
}

impl SmtpTarpit {
    pub fn start(mode: Tarpit) -> SmtpTarpit {
        let tmp = tempfile::tempdir().expect("temp dir for the tarpit");
        let dir = tmp.path().join("mail");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/support/smtp_tarpit.py");
        let mut cmd = Command::new(python());
        cmd.arg(&script)
            .arg("--dir")
            .arg(&dir)
            .arg("--mode")
            .arg(match mode {
                Tarpit::Banner => "banner",
                Tarpit::DataReply => "data_reply",
            });
        let (child, port) = start_ready(cmd, &tmp.path().join("tarpit.log"));
        SmtpTarpit {
            child,
            port,
            dir,
            _tmp: tmp,
        }
    }

    /// Messages it took in full (and never acknowledged).
    pub fn messages(&self) -> usize {
        (1..)
            .take_while(|n| self.dir.join(format!("{n}.eml")).exists())
            .count()
    }

    /// TCP connections it has seen.
    pub fn connections(&self) -> usize {
        std::fs::read_to_string(self.dir.join("connections.log"))
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }
}

impl Drop for SmtpTarpit {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A CA and a localhost certificate it signed (SAN DNS:localhost, IP:127.0.0.1), made
/// with openssl for one test and deleted with it.
pub struct TestCa {
    pub ca_pem: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    _dir: tempfile::TempDir,
}

pub fn make_test_ca() -> TestCa {
    let dir = temp_dir();
    let p = |name: &str| dir.path().join(name);
    std::fs::write(
        p("server.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n\
         basicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature\n\
         extendedKeyUsage=serverAuth\n",
    )
    .expect("write server.ext");
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
    openssl(
        dir.path(),
        &[
            &[
                "req",
                "-x509",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=platform test CA",
            ][..],
            &ec[..],
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ][..],
        ]
        .concat(),
    );
    openssl(
        dir.path(),
        &[
            &["req", "-nodes", "-subj", "/CN=localhost"][..],
            &ec[..],
            &["-keyout", "server.key", "-out", "server.csr"][..],
        ]
        .concat(),
    );
    openssl(
        dir.path(),
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            "server.pem",
            "-extfile",
            "server.ext",
        ],
    );
    TestCa {
        ca_pem: p("ca.pem"),
        cert: p("server.pem"),
        key: p("server.key"),
        _dir: dir,
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("running openssl: {e}"));
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Top-level header `name` of a message, unfolded.
pub fn header(eml: &[u8], name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(eml);
    let head = text.split("\r\n\r\n").next().unwrap_or_default();
    header_in(head, name)
}

fn header_in(head: &str, name: &str) -> Option<String> {
    let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
    unfolded.split("\r\n").find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name)
            .then(|| value.trim().to_string())
    })
}

fn param(value: &str, name: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

/// An RFC 2231 parameter split into `name*0`, `name*1`, ... (a `*` after the number marks a
/// percent-encoded piece; the first such piece starts with `charset''`), joined and decoded.
fn continued_param(value: &str, name: &str) -> Option<String> {
    let mut pieces: Vec<(usize, Vec<u8>)> = Vec::new();
    for p in value.split(';').skip(1) {
        let Some((key, v)) = p.trim().split_once('=') else {
            continue;
        };
        let Some(rest) = key.strip_prefix(&format!("{name}*")) else {
            continue;
        };
        let (number, extended) = match rest.strip_suffix('*') {
            Some(n) => (n, true),
            None => (rest, false),
        };
        let Ok(index) = number.parse::<usize>() else {
            continue;
        };
        let v = v.trim().trim_matches('"');
        let bytes = if extended {
            let v = v.split_once("''").map_or(v, |(_, encoded)| encoded);
            percent_decode(v)
        } else {
            v.as_bytes().to_vec()
        };
        pieces.push((index, bytes));
    }
    if pieces.is_empty() {
        return None;
    }
    pieces.sort();
    let joined: Vec<u8> = pieces.into_iter().flat_map(|(_, b)| b).collect();
    Some(String::from_utf8_lossy(&joined).into_owned())
}

fn percent_decode(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// An attachment of a multipart message: file name, content type, decoded bytes.
pub struct Attachment {
    pub file_name: String,
    pub content_type: String,
    pub transfer_encoding: String,
    pub data: Vec<u8>,
}

/// Text parts and attachments of a one-level multipart message, in order.
pub fn parts(eml: &[u8]) -> (Vec<String>, Vec<Attachment>) {
    let text = String::from_utf8_lossy(eml);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let content_type = header_in(head, "Content-Type").unwrap_or_default();
    let Some(boundary) = param(&content_type, "boundary") else {
        return (vec![body.to_string()], Vec::new());
    };
    let delimiter = format!("--{boundary}");
    let mut texts = Vec::new();
    let mut attachments = Vec::new();
    for part in body.split(delimiter.as_str()).skip(1) {
        if part.starts_with("--") {
            break;
        }
        let part = part.trim_start_matches("\r\n");
        let (phead, pbody) = part.split_once("\r\n\r\n").unwrap_or((part, ""));
        let pbody = pbody.strip_suffix("\r\n").unwrap_or(pbody);
        let disposition = header_in(phead, "Content-Disposition").unwrap_or_default();
        let encoding = header_in(phead, "Content-Transfer-Encoding").unwrap_or_default();
        if disposition.to_ascii_lowercase().starts_with("attachment") {
            let data = if encoding.eq_ignore_ascii_case("base64") {
                base64_decode(pbody)
            } else {
                pbody.as_bytes().to_vec()
            };
            attachments.push(Attachment {
                file_name: param(&disposition, "filename")
                    .or_else(|| continued_param(&disposition, "filename"))
                    .unwrap_or_default(),
                content_type: header_in(phead, "Content-Type").unwrap_or_default(),
                transfer_encoding: encoding,
                data,
            });
        } else if encoding.eq_ignore_ascii_case("base64") {
            texts.push(String::from_utf8_lossy(&base64_decode(pbody)).into_owned());
        } else {
            texts.push(pbody.to_string());
        }
    }
    (texts, attachments)
}

/// An unfolded header value as a reader shows it: RFC 2047 `=?utf-8?b?...?=` words decoded
/// (the space between two encoded words is dropped), anything else kept as it is.
pub fn decode_header(value: &str) -> String {
    let mut out = Vec::new();
    let mut after_word = false;
    for (i, token) in value.split(' ').enumerate() {
        let word = token
            .strip_prefix("=?utf-8?b?")
            .and_then(|t| t.strip_suffix("?="));
        if i > 0 && !(after_word && word.is_some()) {
            out.push(b' ');
        }
        match word {
            Some(b64) => out.extend(base64_decode(b64)),
            None => out.extend_from_slice(token.as_bytes()),
        }
        after_word = word.is_some();
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Standard-alphabet base64, whitespace ignored; panics on anything else so a corrupt
/// attachment fails the test loudly.
pub fn base64_decode(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' | b'\r' | b'\n' | b' ' | b'\t' => continue,
            other => panic!("not base64: byte {other:#04x}"),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}
