//! The harness's extension for release-backed state: a copy of the orch fixture with a profile pointing at a stateful fake GitHub, optional signing keys, the real binary, and the forgeries an attacker with write access to the release would make.
use super::fake_github::{FakeGithub, TOKEN};
use super::fx::{Fx, Topup, Transcript, LEDGER_FILES};
pub use super::ledger_fixtures::{rechain, records_in as records};
use platform::heads::{SignedHeads, Signer};
use serde_json::Value;
use std::path::PathBuf;

pub const STATE_TAG: &str = "billing-state-v1";
pub const REPOSITORY: &str = "acme/state";
pub const KEY_ENV: &str = "PLATFORM_LEDGER_SIGNING_KEY";

/// A key pair as `platform ledger keygen --json` prints it.
#[derive(Debug, Clone)]
pub struct Key {
    pub key_id: String,
    pub public_key: String,
    pub private_key: String,
}

pub struct World {
    pub fake: FakeGithub,
    pub fx: Fx,
    /// The key `state` commands sign with (None: the secret is not set).
    pub key: Option<Key>,
}

impl World {
    /// Unsigned state: no config/ledger.yml.
    pub fn new() -> World {
        let fake = FakeGithub::start_for(REPOSITORY);
        let fx = Fx::new();
        fx.write(
            "profile.yml",
            format!(
                "profile_name: dev_github\nbilling_state_dir: .billing-state\ngithub:\n  repository: {REPOSITORY}\n  api_url: {}\n",
                fake.uri()
            ),
        );
        World {
            fake,
            fx,
            key: None,
        }
    }

    /// Signed state: config/ledger.yml lists a fresh key, which `state` commands use.
    pub fn signed() -> World {
        let mut w = World::new();
        let key = w.keygen();
        w.trust(&[&key]);
        w.key = Some(key);
        w
    }

    pub fn dir(&self, name: &str) -> PathBuf {
        self.fx.path(name)
    }

    /// `platform ledger keygen --json`, by the real binary.
    pub fn keygen(&self) -> Key {
        let v = self
            .fx
            .run(&["ledger", "keygen", "--json"])
            .expect_ok()
            .json();
        Key {
            key_id: v["key_id"].as_str().unwrap().into(),
            public_key: v["public_key"].as_str().unwrap().into(),
            private_key: v["private_key"].as_str().unwrap().into(),
        }
    }

    /// Write config/ledger.yml listing these keys. A key id is quoted: about 1 in 800 is all
    /// digits, or digits around one `e`, and would read as a YAML number.
    pub fn trust(&self, keys: &[&Key]) {
        let mut yaml = String::from("signing_keys:\n");
        for k in keys {
            yaml.push_str(&format!(
                "  - key_id: \"{}\"\n    public_key: {}\n",
                k.key_id, k.public_key
            ));
        }
        self.fx.write("config/ledger.yml", yaml);
    }

    /// The real binary in the repository, with the token and (when set) the signing key.
    pub fn cmd(&self) -> assert_cmd::Command {
        assert_cmd::Command::from_std(self.command())
    }

    /// `cmd()` as a std command, to spawn and let run while another works.
    pub fn command(&self) -> std::process::Command {
        let mut c = self.fx.command();
        c.env("GITHUB_TOKEN", TOKEN);
        if let Some(k) = &self.key {
            c.env(KEY_ENV, &k.private_key);
        }
        c
    }

    /// `platform state <verb>` into `dir`, started and left running (output captured).
    pub fn spawn_state(&self, verb: &str, dir: &str) -> std::process::Child {
        self.command()
            .args(["state", verb, "--runtime-profile", "profile.yml"])
            .arg("--billing-state-dir")
            .arg(self.dir(dir))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// A top-up of t1 into `dir` through the real binary: its output, whatever it was.
    pub fn try_topup(&self, dir: &str, amount: i64, reference: &str) -> std::process::Output {
        self.command()
            .args(Topup::new("t1", &amount.to_string(), reference).args())
            .arg("--billing-state-dir")
            .arg(self.dir(dir))
            .output()
            .unwrap()
    }

    /// t1's balance as `dir`'s ledger has it.
    pub fn balance(&self, dir: &str) -> i64 {
        let out = self
            .command()
            .args([
                "balance",
                "--tenant-id",
                "t1",
                "--json",
                "--billing-state-dir",
            ])
            .arg(self.dir(dir))
            .output()
            .unwrap();
        out.expect_ok().json()["balance_credits"].as_i64().unwrap()
    }

    /// `platform state <verb> --runtime-profile profile.yml --billing-state-dir <dir> <extra>`
    pub fn state(&self, verb: &str, dir: &str, extra: &[&str]) -> assert_cmd::assert::Assert {
        self.cmd()
            .args(["state", verb, "--runtime-profile", "profile.yml"])
            .arg("--billing-state-dir")
            .arg(self.dir(dir))
            .args(extra)
            .assert()
    }

    /// A top-up through the real binary (TOPUP and its audit record).
    pub fn topup(&self, dir: &str, amount: i64, reference: &str) {
        self.try_topup(dir, amount, reference).expect_ok();
    }

    /// A real ledger in `dir`: a top-up, one orchestrated run (spends and evidence), a
    /// second top-up: all three files have records.
    pub fn seed(&self, dir: &str) {
        self.topup(dir, 100, "INV-1");
        self.fx.workorder(
            "one",
            "work_order_id: one\nsteps:\n  - {step_id: gen, module_id: gen, kind: transform, inputs: {text: a b}, deliverables: [data]}\n",
        );
        self.cmd()
            .args([
                "orchestrator",
                "--runtime-dir",
                "runtime",
                "--billing-state-dir",
            ])
            .arg(self.dir(dir))
            .output()
            .unwrap()
            .expect_ok();
        self.topup(dir, 50, "INV-2");
    }

    pub fn remote(&self, name: &str) -> Option<Vec<u8>> {
        self.fake.asset_data(STATE_TAG, name)
    }

    /// Every asset of the state release, by name.
    pub fn remote_all(&self) -> Vec<(String, Vec<u8>)> {
        let mut all: Vec<(String, Vec<u8>)> = ["heads.json"]
            .iter()
            .chain(LEDGER_FILES.iter())
            .filter_map(|n| self.remote(n).map(|d| (n.to_string(), d)))
            .collect();
        all.sort();
        all
    }

    /// Release writes (uploads, deletes, renames, creates, publishes) since the last clear.
    pub fn writes(&self) -> Vec<String> {
        self.fake
            .calls()
            .into_iter()
            .filter(|c| {
                ["upload", "delete", "rename", "create", "publish"]
                    .iter()
                    .any(|w| c.starts_with(w))
            })
            .collect()
    }

    /// Every file under `dir` with its bytes: "left exactly as it was" compares these.
    /// The ledger lock is left out: its holder note (pid, time) is rewritten by every command
    /// that takes the lock, a refused pull or push included, and is no part of the state.
    pub fn snapshot(&self, dir: &str) -> Vec<(PathBuf, Vec<u8>)> {
        let mut all = self.fx.all_bytes_under(dir);
        all.retain(|(p, _)| p.file_name().is_none_or(|n| n != ".ledger.lock"));
        all.sort();
        all
    }
}

pub fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

/// billing.jsonl with the first TOPUP's amount changed, re-chained.
pub fn forge_topup(billing: &[u8], amount: i64) -> Vec<u8> {
    let mut lines = records(billing);
    let topup = lines
        .iter_mut()
        .find(|l| l["type"] == "TOPUP")
        .expect("a TOPUP");
    topup.insert("amount_credits".into(), Value::from(amount));
    rechain(&lines)
}

/// Every listing of the state release the fake answered (or could have answered) since
/// `record_names` was set holds a complete copy of `file`: under its name, or under its
/// staged name while a replacement is being renamed (which pull takes as the file).
pub fn never_lacked(w: &World, file: &str) {
    let (live, staged) = (
        format!("{file} (uploaded)"),
        format!("{file}.staged (uploaded)"),
    );
    let seen = w.fake.state().names_seen.clone();
    assert!(!seen.is_empty(), "record_names was not set");
    for names in &seen {
        assert!(
            names.contains(&live) || names.contains(&staged),
            "the release lacked {file}: {names:?}"
        );
    }
}

/// A push from `b` whose upload of `file` fails (HTTP `status`, leaving a `starter` asset when
/// `starter`) keeps the old copy on the release and exits 1; the retry from `b` finishes the
/// push; a fresh pull then gets `b`'s files byte for byte. The release never lacks `file`.
pub fn failed_upload_then_retry(w: &World, file: &str, status: u16, starter: bool) {
    w.state("pull", "a", &[]).success();
    w.seed("a");
    w.state("push", "a", &[]).success();
    w.state("pull", "b", &[]).success();
    w.topup("b", 9, "RETRY-1");
    let old = w.remote(file).unwrap();
    assert_ne!(std::fs::read(w.dir("b").join(file)).unwrap(), old);

    w.fake.state().fail_upload_of = Some((file.to_string(), status, starter));
    w.fake.state().record_names = true;
    let out = w.state("push", "b", &[]).failure().code(1);
    let stderr = text(&out.get_output().stderr);
    assert!(
        stderr.contains(file) && stderr.contains(&status.to_string()),
        "{stderr}"
    );
    assert!(stderr.contains("re-run `platform state push`"), "{stderr}");
    // Right after the failure: the old copy is still there, and nothing half-uploaded is left.
    assert_eq!(w.remote(file).unwrap(), old);
    let names = asset_names(w);
    assert!(names.contains(&file.to_string()), "{names:?}");
    assert!(!names.iter().any(|n| n.ends_with(".staged")), "{names:?}");

    let out = w.state("push", "b", &["--json"]).success();
    let json: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let pushed = json["files"].as_array().unwrap();
    assert!(
        pushed
            .iter()
            .any(|f| f["name"] == file && f["action"] == "uploaded"),
        "{json}"
    );
    never_lacked(w, file);
    w.fake.state().record_names = false;

    w.state("pull", "fresh", &[]).success();
    for f in LEDGER_FILES {
        assert_eq!(
            std::fs::read(w.dir("fresh").join(f)).unwrap(),
            std::fs::read(w.dir("b").join(f)).unwrap(),
            "{f}"
        );
        assert_eq!(
            w.remote(f).unwrap(),
            std::fs::read(w.dir("b").join(f)).unwrap()
        );
    }
    let names = asset_names(w);
    assert!(!names.iter().any(|n| n.ends_with(".staged")), "{names:?}");
}

/// The names of the state release's assets, as the fake holds them.
fn asset_names(w: &World) -> Vec<String> {
    w.fake
        .release(STATE_TAG)
        .unwrap()
        .assets
        .iter()
        .map(|a| a.name.clone())
        .collect()
}

/// A signed world whose release holds a real ledger pushed from `a` (pull, seed, push).
pub fn pushed() -> World {
    let w = World::signed();
    w.state("pull", "a", &[]).success();
    w.seed("a");
    w.state("push", "a", &[]).success();
    w
}

pub fn stderr_of(a: &assert_cmd::assert::Assert) -> String {
    text(&a.get_output().stderr)
}

pub fn json_of(a: &assert_cmd::assert::Assert) -> Value {
    serde_json::from_slice(&a.get_output().stdout).unwrap()
}

/// `state push --restore --discard-unverified --json` from `dir` by `ops`, which must succeed:
/// what it says it did (`restored`: what it discarded, then why).
pub fn restore_discarding(w: &World, dir: &str) -> String {
    let args = [
        "--restore",
        "--actor",
        "ops",
        "--discard-unverified",
        "--json",
    ];
    let out = w.state("push", dir, &args).success();
    json_of(&out)["restored"].as_str().unwrap().to_string()
}

/// The release's heads.json re-signed by `key` after `edit` (the attacker's own key, or a
/// stolen one used for another repository).
pub fn resign(w: &World, key: &Key, edit: impl FnOnce(&mut platform::heads::Heads)) -> Vec<u8> {
    let mut heads = SignedHeads::parse(&w.remote("heads.json").unwrap())
        .unwrap()
        .heads;
    heads.key_id = key.key_id.clone();
    edit(&mut heads);
    let signer = Signer::from_secret(&key.private_key).unwrap();
    SignedHeads::sign(heads, &signer)
        .unwrap()
        .to_bytes()
        .unwrap()
}

/// The last audit record of `dir`: `action` by ops through `command`.
pub fn last_audit(
    w: &World,
    dir: &str,
    action: &str,
    command: &str,
) -> serde_json::Map<String, Value> {
    let audit = records(&std::fs::read(w.dir(dir).join("audit.jsonl")).unwrap());
    let last = audit.last().unwrap().clone();
    assert_eq!(last["action"], action);
    assert_eq!(last["actor"], "ops");
    assert_eq!(last["command"], command);
    last
}

/// A heads.json whose signature has one bit flipped.
pub fn flip_signature_bit(bytes: &[u8]) -> Vec<u8> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut doc: Value = serde_json::from_slice(bytes).unwrap();
    let mut sig = b64.decode(doc["signature"].as_str().unwrap()).unwrap();
    sig[7] ^= 0x10;
    doc["signature"] = Value::from(b64.encode(sig));
    serde_json::to_vec(&doc).unwrap()
}
