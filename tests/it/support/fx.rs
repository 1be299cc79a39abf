//! The one fixture/command harness: a temp copy of a fixture repository, the real binary run
//! in it with a clean environment, and readers of what it left (ledger lines, balances, files).
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// This crate's root: the example repository, docs/, scripts/, tests/fixtures/.
pub fn crate_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A folder of tests/fixtures/.
pub fn fixture_dir(rel: &str) -> PathBuf {
    crate_root().join("tests/fixtures").join(rel)
}

/// The real binary.
pub fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_platform"))
}

/// A fresh temp dir for a test. The ledger syncs every write to disk (`fdatasync`): on a disk
/// that costs milliseconds a record, in memory nothing, and what the tests check (files after
/// a `kill -9`, torn writes, races) is the same in both, since the page cache outlives a
/// process. So temp dirs go to /dev/shm when it has room (4 GiB free), unless
/// PLATFORM_TEST_TMPDIR names another place.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir_in(temp_base()).unwrap()
}

fn temp_base() -> &'static Path {
    static BASE: OnceLock<PathBuf> = OnceLock::new();
    BASE.get_or_init(|| {
        if let Some(dir) = std::env::var_os("PLATFORM_TEST_TMPDIR") {
            return PathBuf::from(dir);
        }
        let shm = Path::new("/dev/shm");
        let room = rustix::fs::statvfs(shm)
            .map(|s| s.f_bavail.saturating_mul(s.f_frsize))
            .unwrap_or(0);
        if room >= 4 << 30 && tempfile::tempdir_in(shm).is_ok() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        }
    })
}

/// Copy a tree: folders, files (with their permission bits, so module programs stay
/// executable) and symbolic links as links.
pub fn copy_tree(from: &Path, to: &Path) {
    copy_tree_except(from, to, |_| false);
}

/// `copy_tree`, leaving out every entry (and what is below it) whose path relative to `from`
/// `skip` holds for.
pub fn copy_tree_except(from: &Path, to: &Path, skip: impl Fn(&Path) -> bool) {
    std::fs::create_dir_all(to).unwrap();
    let walk = walkdir::WalkDir::new(from)
        .min_depth(1)
        .follow_links(false)
        .sort_by_file_name();
    let entries = walk
        .into_iter()
        .filter_entry(|e| !skip(e.path().strip_prefix(from).unwrap()));
    for e in entries {
        let e = e.unwrap();
        let dst = to.join(e.path().strip_prefix(from).unwrap());
        let ft = e.file_type();
        if ft.is_dir() {
            std::fs::create_dir_all(&dst).unwrap();
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(e.path()).unwrap(), &dst).unwrap();
        } else {
            std::fs::copy(e.path(), &dst).unwrap();
        }
    }
}

/// `platform` run in `dir` with nothing of the caller's environment that the platform reads
/// (who acts, tokens, keys, secrets, failpoints, the job summary): a test sets what it needs.
pub fn platform_in(dir: &Path) -> Command {
    let mut c = Command::new(bin());
    c.current_dir(dir);
    clean_env(&mut c);
    c
}

/// Remove the variables the platform reads from `c`'s environment.
pub fn clean_env(c: &mut Command) {
    for k in [
        "GITHUB_ACTOR",
        "GITHUB_TOKEN",
        "GITHUB_STEP_SUMMARY",
        "GITHUB_REPOSITORY",
    ] {
        c.env_remove(k);
    }
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("PLATFORM_") {
            c.env_remove(k);
        }
    }
}

/// One `admin-topup`: the argv written once for every test that tops up.
#[derive(Debug, Clone)]
pub struct Topup<'a> {
    pub tenant: &'a str,
    pub amount: &'a str,
    pub reference: &'a str,
    pub method: &'a str,
    /// None: the actor comes from GITHUB_ACTOR.
    pub actor: Option<&'a str>,
}

impl<'a> Topup<'a> {
    /// Method `manual`, by actor `tester` (whom the fixtures' iam.yml lets top up).
    pub fn new(tenant: &'a str, amount: &'a str, reference: &'a str) -> Topup<'a> {
        Topup {
            tenant,
            amount,
            reference,
            method: "manual",
            actor: Some("tester"),
        }
    }

    pub fn by(self, actor: &'a str) -> Topup<'a> {
        Topup {
            actor: Some(actor),
            ..self
        }
    }

    pub fn args(&self) -> Vec<String> {
        let mut v = [
            "admin-topup",
            "--tenant-id",
            self.tenant,
            "--amount-credits",
            self.amount,
            "--topup-method-id",
            self.method,
            "--reference",
            self.reference,
        ]
        .map(String::from)
        .to_vec();
        if let Some(actor) = self.actor {
            v.extend(["--actor".to_string(), actor.to_string()]);
        }
        v
    }
}

/// `admin-adjust` of t1 (no actor: add `--actor`): the argv written once for every test that
/// adjusts a balance.
pub fn adjust_args(amount: &str, reason: &str, reference: &str) -> Vec<String> {
    let argv = [
        "admin-adjust",
        "--tenant-id",
        "t1",
        "--amount-credits",
        amount,
        "--reason-slug",
        reason,
        "--reference",
        reference,
    ];
    argv.map(String::from).to_vec()
}

/// A temp platform repository the real binary runs in.
pub struct Fx {
    dir: tempfile::TempDir,
}

impl Fx {
    /// An empty folder.
    pub fn empty() -> Fx {
        Fx { dir: temp_dir() }
    }

    /// A copy of tests/fixtures/orch: tenant t1, the test modules, an iam.yml granting tester.
    pub fn new() -> Fx {
        Fx::empty().overlay("orch", "")
    }

    /// A copy of this repository's own example platform: modules/, tenants/, config/.
    pub fn example() -> Fx {
        let fx = Fx::empty();
        for d in ["modules", "tenants", "config"] {
            copy_tree(&crate_root().join(d), &fx.path(d));
        }
        fx
    }

    /// Lay tests/fixtures/`from` over the folder `to` of this fixture ("" is the root).
    pub fn overlay(self, from: &str, to: &str) -> Fx {
        copy_tree(&fixture_dir(from), &self.path(to));
        self
    }

    /// A copy of this fixture as it is now (ledger and runtime included).
    pub fn fork(&self) -> Fx {
        let fx = Fx::empty();
        copy_tree(self.root(), fx.root());
        fx
    }

    /// A copy of the fixture `prepare` makes, made once per test binary: for preparation that
    /// runs the binary (top-ups, orchestrator passes), which the tests then need not repeat.
    pub fn prepared(once: &'static OnceLock<Fx>, prepare: impl FnOnce() -> Fx) -> Fx {
        once.get_or_init(prepare).fork()
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// A file of the default billing-state directory.
    pub fn state_file(&self, file: &str) -> PathBuf {
        self.path(&format!(".billing-state/{file}"))
    }

    /// Write a file (and its folders).
    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, contents).unwrap();
    }

    /// Write a work order for tenant t1.
    pub fn workorder(&self, id: &str, yaml: &str) {
        self.workorder_for("t1", id, yaml);
    }

    pub fn workorder_for(&self, tenant: &str, id: &str, yaml: &str) {
        // Git keeps no empty folders: a fixture's workorders/ may not exist in a clone.
        self.write(&format!("tenants/{tenant}/workorders/{id}.yml"), yaml);
    }

    /// A tenant folder with an empty workorders/ and assets/.
    pub fn add_tenant(&self, tenant: &str) {
        for d in ["workorders", "assets"] {
            std::fs::create_dir_all(self.path(&format!("tenants/{tenant}/{d}"))).unwrap();
        }
        self.write(
            &format!("tenants/{tenant}/tenant.yml"),
            format!("tenant_id: {tenant}\nname: Tenant {tenant}\n"),
        );
    }

    /// Add a module folder of this repository (e.g. a built-in's shipped contract).
    pub fn add_shipped_module(&self, module_id: &str) {
        let rel = format!("modules/{module_id}");
        copy_tree(&crate_root().join(&rel), &self.path(&rel));
    }

    /// The shipped config/iam.yml grants nobody: a copy of the example repository that runs
    /// privileged commands gets the demo's grants (scripts/demo-iam.yml), as scripts/demo.sh does.
    pub fn use_demo_iam(&self) {
        use_demo_iam(self.root());
    }

    /// `platform` in this fixture, clean environment, to add arguments to and spawn.
    pub fn command(&self) -> Command {
        platform_in(self.root())
    }

    /// `command()` as an assert_cmd command.
    pub fn cmd(&self) -> assert_cmd::Command {
        assert_cmd::Command::from_std(self.command())
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().unwrap()
    }

    /// `run` with a watchdog: a hung command (a FIFO opened without O_NONBLOCK, a lost
    /// wake-up) must fail its test rather than stall the suite. Not a speed limit: ten
    /// minutes.
    pub fn run_watched(&self, args: &[&str]) -> Output {
        self.run_watched_for(args, std::time::Duration::from_secs(600))
    }

    /// `run_watched` with the watchdog at `limit`, for a command that must end on its own
    /// well before (a deadline under test); still not a speed limit.
    pub fn run_watched_for(&self, args: &[&str], limit: std::time::Duration) -> Output {
        let mut c = self.command();
        c.args(args);
        watched(c, limit)
    }

    /// `run`, killed and failed once it has run for `limit` or holds more than `max_rss`
    /// bytes of memory (VmRSS, Linux): for input that once hung a command or had it read
    /// without end (a link to /dev/zero). Both bounds are generous: not a speed test.
    pub fn run_within(&self, args: &[&str], limit: std::time::Duration, max_rss: u64) -> Output {
        let mut c = self.command();
        c.args(args);
        watched_within(c, limit, max_rss)
    }

    /// `run` with extra environment variables.
    pub fn run_env<K: AsRef<str>, V: AsRef<str>>(&self, args: &[&str], env: &[(K, V)]) -> Output {
        let mut c = self.command();
        for (k, v) in env {
            c.env(k.as_ref(), v.as_ref());
        }
        c.args(args).output().unwrap()
    }

    /// `admin-topup` (method manual) of `tenant` by `actor`, ready to run (or to add flags to).
    pub fn topup_cmd_as(
        &self,
        tenant: &str,
        amount: &str,
        reference: &str,
        actor: &str,
    ) -> assert_cmd::Command {
        let mut c = self.cmd();
        c.args(Topup::new(tenant, amount, reference).by(actor).args());
        c
    }

    /// `admin-topup` of tenant t1 by actor tester, ready to run (or to add flags to).
    pub fn topup_cmd(&self, amount: &str, reference: &str) -> assert_cmd::Command {
        self.topup_cmd_as("t1", amount, reference, "tester")
    }

    /// `admin-topup` (method manual) for any tenant and actor; the output, for tests that
    /// expect a denial.
    pub fn topup_as(&self, tenant: &str, amount: i64, reference: &str, actor: &str) -> Output {
        self.topup_cmd_as(tenant, &amount.to_string(), reference, actor)
            .output()
            .unwrap()
    }

    /// Top up `tenant` by tester; it must succeed.
    pub fn fund(&self, tenant: &str, amount: i64, reference: &str) {
        self.topup_as(tenant, amount, reference, "tester")
            .expect_ok();
    }

    /// Top up t1 by tester; it must succeed.
    pub fn topup(&self, amount: i64, reference: &str) {
        self.fund("t1", amount, reference);
    }

    /// `orchestrator --json <extra>`: exit code, summary, stderr.
    pub fn orchestrate(&self, extra: &[&str]) -> (i32, Value, String) {
        let mut args = vec!["orchestrator", "--json"];
        args.extend_from_slice(extra);
        let out = self.run(&args);
        (
            out.status.code().unwrap_or(-1),
            out.json(),
            out.stderr_text(),
        )
    }

    /// The records of a ledger file of the default state directory; every line must parse.
    pub fn lines(&self, file: &str) -> Vec<Value> {
        self.parse_records(file, false)
    }

    /// `lines`, passing over a torn last line (right after a crash): readers skip it too.
    pub fn records(&self, file: &str) -> Vec<Value> {
        self.parse_records(file, true)
    }

    fn parse_records(&self, file: &str, skip_unparsed: bool) -> Vec<Value> {
        let text = std::fs::read_to_string(self.state_file(file)).unwrap_or_default();
        let parsed = text.lines().map(|l| (l, serde_json::from_str(l)));
        parsed
            .filter_map(|(l, v)| match v {
                Ok(v) => Some(v),
                Err(_) if skip_unparsed => None,
                Err(e) => panic!("{file}: {e}: {l}"),
            })
            .collect()
    }

    pub fn billing(&self) -> Vec<Value> {
        self.lines("billing.jsonl")
    }

    pub fn of_type(&self, file: &str, ty: &str) -> Vec<Value> {
        self.lines(file)
            .into_iter()
            .filter(|r| r["type"] == ty)
            .collect()
    }

    /// A file's bytes (empty when it does not exist).
    pub fn bytes(&self, rel: &str) -> Vec<u8> {
        std::fs::read(self.path(rel)).unwrap_or_default()
    }

    /// A file's text (it must be UTF-8; empty when it does not exist).
    pub fn read_text(&self, rel: &str) -> String {
        String::from_utf8(self.bytes(rel)).unwrap()
    }

    /// The bytes of the three ledger files of a state directory (relative to the root).
    pub fn ledger_bytes(&self, state_dir: &str) -> Vec<Vec<u8>> {
        LEDGER_FILES
            .iter()
            .map(|f| self.bytes(&format!("{state_dir}/{f}")))
            .collect()
    }

    /// `balance --tenant-id <tenant> --json` of the default state directory.
    pub fn balance_of(&self, tenant: &str) -> i64 {
        let out = self.run(&["balance", "--tenant-id", tenant, "--json"]);
        out.expect_ok().json()["balance_credits"].as_i64().unwrap()
    }

    pub fn balance(&self) -> i64 {
        self.balance_of("t1")
    }

    /// `runs --json`.
    pub fn runs(&self) -> Value {
        self.run(&["runs", "--json"]).expect_ok().json()
    }

    /// `integrity-validate` of the default state directory: Ok, or its transcript.
    pub fn integrity(&self) -> Result<(), String> {
        let out = self.run(&["integrity-validate"]);
        if out.status.success() {
            Ok(())
        } else {
            Err(out.text())
        }
    }

    /// Every file under a folder of the fixture (ledger, runtime, deliveries), for leak checks.
    pub fn all_bytes_under(&self, rel: &str) -> Vec<(PathBuf, Vec<u8>)> {
        walkdir::WalkDir::new(self.path(rel))
            .into_iter()
            .flatten()
            .filter(|e| e.file_type().is_file())
            .map(|e| (e.path().to_path_buf(), std::fs::read(e.path()).unwrap()))
            .collect()
    }
}

/// The resident memory of process `pid` (0 when it cannot be read: gone, or not Linux).
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok());
    kib.unwrap_or(0) * 1024
}

/// The three files of a billing-state directory.
pub const LEDGER_FILES: [&str; 3] = ["billing.jsonl", "evidence.jsonl", "audit.jsonl"];

/// See `Fx::use_demo_iam`; for repositories laid out by hand.
/// Run `cmd` to its end, output captured; kill it and panic once it has run for `limit`.
pub fn watched(cmd: Command, limit: std::time::Duration) -> Output {
    watched_within(cmd, limit, u64::MAX)
}

/// [`watched`], also killed (and the test failed) once it holds more than `max_rss` bytes.
pub fn watched_within(mut cmd: Command, limit: std::time::Duration, max_rss: u64) -> Output {
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        let rss = rss_bytes(child.id());
        if t0.elapsed() > limit || rss > max_rss {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{cmd:?} hung or ballooned: killed after {:?} holding {rss} bytes",
                t0.elapsed()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

pub fn use_demo_iam(repo: &Path) {
    std::fs::copy(
        crate_root().join("scripts/demo-iam.yml"),
        repo.join("config/iam.yml"),
    )
    .unwrap();
}

/// What a run of the binary left, read for assertions whose failure shows the whole transcript.
pub trait Transcript {
    /// Exit code, stdout and stderr.
    fn text(&self) -> String;
    fn stdout_text(&self) -> String;
    fn stderr_text(&self) -> String;
    /// stdout as JSON.
    fn json(&self) -> Value;
    /// Assert the exit code.
    fn expect_code(&self, code: i32) -> &Self;
    /// Assert exit code 0.
    fn expect_ok(&self) -> &Self;
}

impl Transcript for Output {
    fn text(&self) -> String {
        format!(
            "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.status.code(),
            self.stdout_text(),
            self.stderr_text()
        )
    }

    fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.text()))
    }

    fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(self.status.code(), Some(code), "{}", self.text());
        self
    }

    fn expect_ok(&self) -> &Self {
        self.expect_code(0)
    }
}
