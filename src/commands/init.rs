//! `platform init DIR`: `crate::init::init` writes a new platform repository; renders what it wrote and what to do next.
use super::Ctx;
use crate::cli::InitArgs;
use crate::error::Result;
use crate::init::{init, InitOutcome, Release};
use crate::output::{Report, View};

pub fn run(_ctx: &Ctx, args: &InitArgs) -> Result<Report> {
    let release = Release {
        repository: args.release_repo.clone(),
        sha256: args.release_sha256.clone(),
    };
    Ok(Report::of(&init(&args.dir, &release)?))
}

impl View for InitOutcome {
    fn text(&self) -> String {
        let shown = self.dir.display();
        let mut text = format!("created a platform repository in {shown}:\n");
        for f in &self.files {
            text.push_str(&format!("  {f}\n"));
        }
        // Quoted for a shell: a folder named `my dir` or `a;b` is one argument to `cd`.
        let shown_dir = self.dir.display().to_string();
        // `cd -y` would be an option: a relative folder starting with `-` goes as `./-y`.
        let dir = shell_quoted(&if shown_dir.starts_with('-') {
            format!("./{shown_dir}")
        } else {
            shown_dir
        });
        text.push_str(&format!(
            "\nnext:\n  cd {dir} && git init && platform consistency-validate\n  platform module test hello\n"
        ));
        text
    }

    fn notes(&self) -> Vec<String> {
        let mut notes = self.stale.clone();
        if !self.release_pinned {
            notes.push(format!(
                "note: the workflows install platform {} from a release: set {} in .github/actions/install-platform/action.yml (or run init with --release-repo and --release-sha256)",
                self.platform_version,
                self.release_unset.join(" and ")
            ));
        }
        notes
    }
}

/// `s` as one word for a POSIX shell: as it is when it holds only safe characters, else in
/// single quotes (a quote inside written `'\''`).
fn shell_quoted(s: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "/._-+=:@%,".contains(c);
    if !s.is_empty() && s.chars().all(safe) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}
