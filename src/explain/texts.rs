//! The built-in explain texts (SPEC §10): what each reason slug, exit code and record type
//! means and what to do. The one source docs/ are checked against (tests/it/explain.rs).

/// `(name, meaning, what to do)`.
pub type Text = (&'static str, &'static str, &'static str);

/// The built-in adjust reasons (`admin-adjust --reason-slug`), as ADJUST records name them.
pub const ADJUST_REASONS: &[Text] = &[
    (
        "goodwill",
        "An ADJUST record: credits an operator gave (or took back) as a gesture, e.g. for a late or poor delivery, with admin-adjust.",
        "Nothing: it is part of the balance. The record's reference and note (platform statement) name the case; a mistaken one is undone by another adjustment with its own reference.",
    ),
    (
        "correction",
        "An ADJUST record: an operator's correction of a wrong balance (a mistaken top-up amount, a charge that should not have been made), with admin-adjust.",
        "Nothing: it is part of the balance. The record's reference and note (platform statement) name what was corrected.",
    ),
    (
        "chargeback",
        "An ADJUST record: credits taken back because a payment behind a top-up was reversed (a card chargeback, a returned wire), with admin-adjust.",
        "Nothing: it is part of the balance. Settle the dispute named by the record's reference; a later top-up restores credits.",
    ),
];

/// Every built-in reason slug. Whether it is refunded comes from the registry.
pub const SLUGS: &[Text] = &[
    (
        "module_failed",
        "The module exited non-zero or reported FAILED (or reported a reason slug the registry does not know, which fails closed as module_failed).",
        "Read the step's stderr.log and result.json in the runtime directory; fix the module or its input, then run the orchestrator with --retry-failed (the charge was refunded).",
    ),
    (
        "timeout",
        "The module ran longer than its timeout_seconds; its whole process tree was killed (a deliver_email or deliver_github_release step: its wait for the server was given up).",
        "Raise timeout_seconds in module.yml or make the module faster; retry with --retry-failed (the charge was refunded).",
    ),
    (
        "outputs_missing",
        "The module succeeded but a declared file or dir output does not exist under its outputs directory, or an output is a symlink, a hard-linked file or a FIFO, socket or device.",
        "Make the module write every declared output at its declared path (see docs/modules.md); the charge was refunded.",
    ),
    (
        "outputs_too_large",
        "The step's outputs or result passed a cap: more than 10,000 files, more than 4 GiB, or a result too large to record.",
        "Write fewer or smaller outputs (package them), then retry; the charge was refunded.",
    ),
    (
        "delivery_failed",
        "A delivery could not be completed: the SMTP server or GitHub could not be reached, refused the message or upload, or verification failed.",
        "Check the runtime profile's smtp/github settings and credentials, and the server's answer in the step's message; retry with --retry-failed (refunded).",
    ),
    (
        "package_too_large_for_email",
        "The package is 20,866,662 bytes (19.9 MiB) or more, too large to send by email; nothing was sent.",
        "Package fewer files, or deliver with deliver_local or deliver_github_release; the charge was refunded.",
    ),
    (
        "superseded",
        "The run was interrupted and will not be resumed (its work order changed, was disabled or deleted): the step was closed and its charges refunded.",
        "Nothing: the new version of the work order runs as a new run.",
    ),
    (
        "usage_invalid",
        "The module reported metered usage its pricing does not allow: a unit not in pricing.usage, a quantity that is not a whole number, or more than max_units. No usage was charged and the step's charges were refunded.",
        "Make the module report `\"usage\": {\"<unit>\": <whole number>}` in result.json with units and maxima its module.yml prices (docs/modules.md), then retry with --retry-failed.",
    ),
    (
        "not_entitled",
        "The tenant's plan in config/catalog.yml does not allow the module of a step the run would newly charge; the run was refused before charging it. A resumed run is refused only for its steps still to run: steps that completed keep their status, and a charge made before the crash stays held (never charged twice) until the run resumes. A step charged before a crash, while the plan allowed it, finishes that attempt whatever the plan says now.",
        "Add the module to the tenant's plan in config/catalog.yml, or set another `plan` in the tenant's tenant.yml; `platform consistency-validate` names the step.",
    ),
    (
        "not_enough_credits",
        "The tenant's balance does not cover the run's charges; nothing was charged for it (a resumed run keeps what its steps were charged before the interruption: the refusal names those credits, settled when it resumes).",
        "Top up the tenant (platform admin-topup) and run again; the run is tried on every pass.",
    ),
    (
        "secrets_missing",
        "A module of the run declares a secret that is not set (PLATFORM_SECRET_<NAME>), or a deliver_github_release step would run without GITHUB_TOKEN; nothing was charged.",
        "Set the secret in the orchestrator's environment (a GitHub Actions secret) and run again.",
    ),
    (
        "input_invalid",
        "An input could not be resolved or checked before the step ran (a binding, an asset, an address); nothing was charged.",
        "Fix the work order (platform consistency-validate names the field) and run again.",
    ),
    (
        "upstream_failed",
        "Skipped: a step this one reads from did not complete; nothing was charged.",
        "Fix the failed step; --retry-failed runs the failed and skipped steps again.",
    ),
    (
        "fail_fast",
        "Skipped: an earlier step failed and the work order's mode is FAIL_FAST; nothing was charged.",
        "Fix the failed step and retry, or use mode PARTIAL_ALLOWED.",
    ),
];

/// Every exit code (docs/exit-codes.md).
pub const EXIT_CODES: &[Text] = &[
    (
        "0",
        "Success: the command did what was asked, including \"nothing to do\".",
        "Nothing.",
    ),
    (
        "1",
        "The command ran and found a failure: an invalid work order, a failed run, a ledger that does not verify, a conflict.",
        "Read the report or the error; `platform explain <slug>` explains a step's reason.",
    ),
    (
        "2",
        "Usage or input error: a bad flag or value, a missing or unreadable file, an unknown id. Nothing was changed.",
        "Fix the command line or the file the error names (its help: line says how).",
    ),
    (
        "3",
        "Denied: the actor lacks the IAM scope the command needs. The denial is recorded in audit.jsonl.",
        "Ask a maintainer to grant the scope in config/iam.yml, or run as an actor that has it.",
    ),
];

/// Every record type of the ledger (docs/records.md).
pub const RECORD_TYPES: &[Text] = &[
    (
        "TOPUP",
        "billing.jsonl: credits added to a tenant by admin-topup, keyed by tenant and reference.",
        "Show with platform statement; a second top-up with the same reference is the same top-up.",
    ),
    (
        "ADJUST",
        "billing.jsonl: an operator's correction of a balance by admin-adjust (a credit or a debit, with a reason slug from the registry's adjust_reasons), keyed by tenant and reference.",
        "Show with platform statement; the same reference twice is one adjustment, and a debit never takes a balance below zero.",
    ),
    (
        "SPEND",
        "billing.jsonl: a charge (negative amount) of a step: its run (`__run__`) or a purchased deliverable, posted in one batch before the step runs; or its metered usage of one unit (`usage_unit` the unit, `quantity` how many it used, amount quantity × the unit's price), posted after the step COMPLETED from the usage its step_outcome recorded. Keyed by tenant, work order, run, step, attempt and deliverable (for usage, the unit).",
        "platform statement lists them (usage with its quantity), platform runs --json shows each step's usage; a refund reverses a run or deliverable charge in full. Usage is charged only for a COMPLETED step, at most credits × max_units of the module's pricing.usage (the credits gate reserves that much before the step runs).",
    ),
    (
        "REFUND",
        "billing.jsonl: the full reversal of one SPEND (its key in `refunds`) after a refundable failure.",
        "Nothing: posted automatically, once per SPEND.",
    ),
    (
        "rerun_requested",
        "evidence.jsonl: an operator asked (platform rerun) for a new run of a work order after its last run, even if it is up to date; keyed by tenant, work order and that run number.",
        "Nothing: the next orchestrator pass starts the run, whose run_started names the request in `rerun`.",
    ),
    (
        "run_started",
        "evidence.jsonl: a run of a work order began, with the SHA-256 of the work-order file (and the period of a scheduled work order, the rerun request that started it).",
        "platform runs lists runs; every charge names a run that started.",
    ),
    (
        "step_started",
        "evidence.jsonl: a step's attempt began, after its charges.",
        "Nothing.",
    ),
    (
        "step_outcome",
        "evidence.jsonl: a step's attempt ended COMPLETED, FAILED or SKIPPED, with its outputs and values.",
        "platform explain <reason_slug> explains a failure.",
    ),
    (
        "evidence_item",
        "evidence.jsonl: the digests of a step attempt's outputs and logs.",
        "Nothing.",
    ),
    (
        "delivery_receipt",
        "evidence.jsonl: where a delivery went (provider, remote path or id, bytes, SHA-256, verification).",
        "Nothing.",
    ),
    (
        "run_ended",
        "evidence.jsonl: a run (or a --retry-failed pass over it) ended, with its status and credits.",
        "Nothing.",
    ),
    (
        "evidence_bundle",
        "evidence.jsonl: the items of one run attempt, with a digest over their keys.",
        "Nothing.",
    ),
    (
        "publish",
        "evidence.jsonl: a deliverable published (or staged) by platform publish, naming the actor; its audit record is written with it.",
        "Nothing.",
    ),
    (
        "audit",
        "audit.jsonl: a privileged action (top-up, adjustment, rerun, publish, state restore) allowed, or a denial.",
        "Denials show who tried what; every privileged record (top-up, adjustment, rerun request, publish) has its audit record.",
    ),
];

/// Every kind of error with its own topic (`crate::error::Topic`), by name.
pub const ERRORS: &[Text] = &[
    (
        "ledger_damaged",
        "A ledger file fails verification: a line was changed, removed, reordered or cut, a hash chain breaks, or a record breaks a rule. Nothing was written: a command that writes refuses such a file. A privileged record (a top-up, an adjustment, a rerun request, a publish) without its audit record is different: readers (balance, statement, integrity-validate) refuse it, but it is what a crash between the two writes leaves, and any writer adds the audit record and says so (`repaired ...`).",
        "Run `platform integrity-validate` to list every problem with its file and line, then restore the billing-state directory from a good copy (`platform state pull`, or the latest backup). A torn last batch after a crash is not damage: the next writer repairs it. A privileged record without its audit record: if a command that writes it crashed (a red workflow run), replay it (the same top-up with the same --reference, publish again, or run the orchestrator): the writer adds the audit record. Restore from a good copy only if nobody posted that record (a forgery), and before any writer runs. A message that says a `platform state pull` stopped while moving its files into place is not damage: run `platform state pull` again, or any command that writes (an `orchestrator` pass that is not a dry run), and it finishes the move.",
    ),
    (
        "ledger_conflict",
        "An idempotency key is already recorded with a different payload (a top-up reference reused with another amount, a shard that ran on an older snapshot than the ledger it is merged into, two shards that disagree), or a batch is partly recorded. Nothing was written.",
        "Compare the fields the message names: a replay must repeat the same values. Use a new --reference for a different top-up. For a merge: a run record with another period or digest means the segment was cut from an older snapshot and a later pass has recorded that run since (a shard job re-run after another orchestrator run merged, which the workflow allowed until 2026-12-03); merge the other segments without it, and the next pass runs its work orders if still due (what it ran is not recorded). Otherwise find which shard ran another version of a module or config.",
    ),
    (
        "billing_rule",
        "The record would break a billing rule: a balance below zero, an amount outside 1..=10^12, a refund larger than its spend, a SPEND of a run without its run_started. Nothing was written.",
        "Read the rule the message names (docs/ledger.md lists them); check the amounts and the tenant's balance (`platform balance`). A `ledger merge` refusing a shard's SPEND for credits: the tenant was debited in the target after the shards' snapshot; credit the debit back, merge again, then debit what the balance allows (docs/operations.md §5).",
    ),
    (
        "lock_timeout",
        "Another process holds the billing-state directory's lock (an orchestrator, a top-up, a merge) and did not let go within the wait.",
        "Wait for the process the message names to finish, or stop it, then run again; --lock-timeout waits longer. A lock of a killed process is released by the kernel: there is no stale lock file to delete.",
    ),
    (
        "denied",
        "config/iam.yml gives the actor no role with the scope the command needs. The denial is recorded in audit.jsonl.",
        "Grant the actor a role with the scope the message names in config/iam.yml (through review), or run as an actor who has it (--actor, GITHUB_ACTOR).",
    ),
    (
        "unknown_tenant",
        "--tenant-id names no tenant of this repository (no folder tenants/<id>/ with a tenant.yml) and, for the read commands, none the ledger has records of.",
        "Check the spelling (the closest tenants are suggested) or add tenants/<id>/tenant.yml first.",
    ),
    (
        "state_refused",
        "`state pull` or `state push` refused the state release or the local files: a signature or heads.json that does not verify, records past the signed heads, history rewritten since the pull, a release older than what the directory last pulled or pushed (cut back or rolled back), or a release that changed meanwhile. Nothing was written locally (pull) or uploaded (push).",
        "Read the reason in the message; docs/github.md (\"State\") says what each one means. Never push over a refusal: find who wrote the state release, and restore it with `state push --restore` from a verified copy that holds all of its records (a restore never drops records of the release that its heads.json signs, and drops unsigned ones the copy lacks only with `--discard-unverified`).",
    ),
];
