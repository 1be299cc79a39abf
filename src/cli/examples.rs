//! The examples each command's `--help` ends with, in one table by command path.

/// (command path, the `after_help` text it prints): `platform` is the top level.
const EXAMPLES: &[(&str, &str)] = &[
    (
        "platform",
        "Examples:\n  platform init my-platform         a new platform repository, ready to validate\n  platform consistency-validate     check modules, tenants and work orders\n  platform orchestrator --dry-run   the priced plan of the next pass\n  platform explain exit:3           what an exit code means\n\nRun from anywhere inside a platform repository: the nearest folder upwards with modules/\nor tenants/ is the repository, unless --repo names one. PLATFORM_LOG=debug (or -v) prints\ndebug lines on stderr.",
    ),
    (
        "consistency-validate",
        "Examples:\n  platform consistency-validate                  every finding, as text\n  platform consistency-validate --json           {\"errors\": [...], \"warnings\": [...]}\n  platform consistency-validate --format github  workflow annotations on the files",
    ),
    (
        "integrity-validate",
        "Examples:\n  platform integrity-validate\n  platform integrity-validate --billing-state-dir .billing-state-dev --json",
    ),
    (
        "orchestrator",
        "Examples:\n  platform orchestrator --dry-run                  the priced plan; writes nothing\n  platform orchestrator                            run every enabled work order\n  platform orchestrator --tenant-id acme --json    one tenant, one JSON document\n  platform orchestrator --retry-failed             run failed steps again\n  platform orchestrator --jobs 8                   up to 8 work orders at once\n  platform orchestrator --now 2026-12-01T13:00:00Z scheduled work orders as of that time",
    ),
    (
        "admin-topup",
        "Examples:\n  platform admin-topup --tenant-id acme --amount-credits 500 \\\n      --topup-method-id bank --reference INV-2026-001 --actor alice",
    ),
    (
        "admin-adjust",
        "Examples:\n  platform admin-adjust --tenant-id acme --amount-credits 50 --reason-slug goodwill \\\n      --reference CASE-2026-0007 --note \"late delivery\" --actor alice\n  platform admin-adjust --tenant-id acme --amount-credits -20 --reason-slug chargeback \\\n      --reference DISPUTE-88 --actor alice\n\nA debit never takes the balance below zero; the same --reference twice is one adjustment.",
    ),
    (
        "rerun",
        "Examples:\n  platform rerun --tenant-id acme --work-order-id weekly-digest \\\n      --reason \"upstream data fixed\" --actor alice\n\nThe next pass starts a new run even when the work order is up to date; a second request\nbefore that pass is the same request.",
    ),
    (
        "publish",
        "Examples:\n  platform publish --no-publish --actor alice            stage packages and evidence\n  platform publish --runtime-profile config/runtime_profile.dev_github.yml\n\nIn a repository made by `platform init` the profile is config/runtime_profile.github.yml.",
    ),
    (
        "statement",
        "Examples:\n  platform statement --tenant-id acme\n  platform statement --tenant-id acme --since 2026-12-01T00:00:00Z --csv",
    ),
    (
        "balance",
        "Examples:\n  platform balance --tenant-id acme\n  platform balance --tenant-id acme --json   {\"tenant_id\": ..., \"balance_credits\": ...}",
    ),
    (
        "runs",
        "Examples:\n  platform runs\n  platform runs --tenant-id acme --work-order-id weekly-digest --json   an array, one entry per run",
    ),
    (
        "schema",
        "Examples:\n  platform schema module            print the schema of module.yml\n  platform schema --write schemas   write every schema into schemas/ (what the\n                                    example files' yaml-language-server lines name)",
    ),
    (
        "explain",
        "Examples:\n  platform explain                 list every topic\n  platform explain timeout         a bare name, when only one kind has it\n  platform explain slug:not_enough_credits --json\n  platform explain exit:3",
    ),
    (
        "init",
        "Examples:\n  platform init my-platform\n  platform init my-platform --release-repo owner/platform --release-sha256 <hex>\n\nThe workflows install this version of platform from the releases of --release-repo and\ncheck it against --release-sha256 (the hash on the x86_64-unknown-linux-musl line of
SHA256SUMS; the whole line pasted is taken too).",
    ),
    (
        "completions",
        "Examples:\n  platform completions bash > ~/.local/share/bash-completion/completions/platform\n  platform completions zsh > ~/.zfunc/_platform\n  platform completions fish > ~/.config/fish/completions/platform.fish",
    ),
    (
        "man",
        "Examples:\n  platform man | man -l -\n  platform man --dir /usr/local/share/man/man1",
    ),
    (
        "ledger",
        "Examples:\n  platform ledger merge --into .billing-state shards/1 shards/2   merge shard ledgers\n  platform ledger keygen --json                                   a signing key pair",
    ),
    (
        "ledger merge",
        "Examples:\n  platform ledger merge --into .billing-state shards/1 shards/2 shards/3",
    ),
    (
        "ledger keygen",
        "Examples:\n  platform ledger keygen\n  platform ledger keygen --json",
    ),
    (
        "state",
        "Examples:\n  platform state pull --runtime-profile config/runtime_profile.dev_github.yml\n  platform orchestrator --runtime-profile config/runtime_profile.dev_github.yml\n  platform state push --runtime-profile config/runtime_profile.dev_github.yml\n\nIn a repository made by `platform init` the profile is config/runtime_profile.github.yml.",
    ),
    (
        "state pull",
        "Examples:\n  platform state pull --runtime-profile config/runtime_profile.dev_github.yml\n\nIn a repository made by `platform init` the profile is config/runtime_profile.github.yml.",
    ),
    (
        "state push",
        "Examples:\n  platform state push --runtime-profile config/runtime_profile.dev_github.yml\n\nIn a repository made by `platform init` the profile is config/runtime_profile.github.yml.",
    ),
    (
        "module",
        "Examples:\n  platform module test uppercase   run the module's self_test",
    ),
    (
        "module test",
        "Examples:\n  platform module test uppercase\n  platform module test uppercase --json",
    ),
];

/// The examples of the command at `path` (as `ledger merge`); empty for one not in the table
/// (a test walks every command, so a missing entry fails there).
pub(super) fn of(path: &str) -> &'static str {
    EXAMPLES
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(_, text)| *text)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn every_entry_is_the_help_of_one_command() {
        let root = super::super::Cli::command();
        for (path, text) in super::EXAMPLES {
            let mut cmd = &root;
            for name in path.split(' ').filter(|n| *n != "platform") {
                cmd = cmd.find_subcommand(name).expect(path);
            }
            let help = cmd.get_after_help().map(|h| h.to_string());
            assert_eq!(help.as_deref(), Some(*text), "{path}");
            let entries = super::EXAMPLES.iter().filter(|(p, _)| p == path);
            assert_eq!(entries.count(), 1, "{path}");
        }
    }
}
