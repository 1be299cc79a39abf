//! Billing records (TOPUP, ADJUST, SPEND, REFUND) of billing.jsonl and their idempotency keys and batch ids.
use serde::{Deserialize, Serialize};

/// `deliverable_id` of the per-step run charge.
pub const RUN_DELIVERABLE: &str = "__run__";

/// Charge ids the platform keeps for itself (`__run__` and any future `__...`): a charge's
/// key ends with its deliverable id or usage unit, so a deliverable or a usage unit of that
/// form would share a key with the run charge (and its usage be taken for it on a resume).
pub fn is_internal(charge_id: &str) -> bool {
    charge_id.starts_with("__")
}
/// `usage_unit` of a top-up.
pub const UNIT_CREDITS: &str = "credits";
/// `usage_unit` of the run charge.
pub const UNIT_STEP_RUN: &str = "step_run";
/// `usage_unit` of a purchased deliverable.
pub const UNIT_DELIVERABLE: &str = "deliverable";
/// What built-in modules meter (SPEC §10): the kibibytes of the outputs they wrote.
pub const UNIT_KIB: &str = "kib";
/// Every unit a built-in reports (the runner measures them): a built-in priced on another
/// unit would have its usage reserved by the credits gate and never charged.
pub const BUILTIN_REPORTED_UNITS: &[&str] = &[UNIT_KIB];

/// The usage unit a charge for `deliverable_id` is metered in.
pub fn usage_unit_for(deliverable_id: &str) -> &'static str {
    if deliverable_id == RUN_DELIVERABLE {
        UNIT_STEP_RUN
    } else {
        UNIT_DELIVERABLE
    }
}

/// The largest number of credits one top-up (or adjustment, or price) may carry: 10^12. Sums
/// of such amounts stay far from `i64::MAX`, and every sum is still checked (SPEC §7).
pub const MAX_CREDITS: i64 = 1_000_000_000_000;

/// Longest top-up reference, after trimming.
pub const MAX_REFERENCE_CHARS: usize = 128;

/// Longest note, in characters.
pub const MAX_NOTE_CHARS: usize = 1000;

/// A top-up (or adjustment) reference as it is recorded: trimmed, then
/// `^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$`. Trimming makes ` INV-1` and `INV-1\n` the same
/// top-up; look-alikes such as `INV‐1` (U+2010) are refused rather than being another one.
pub fn check_reference(raw: &str) -> Result<&str, String> {
    let r = raw.trim();
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '/' | '-');
    if r.is_empty() {
        return Err("must not be empty".into());
    }
    if !r.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err("must start with a letter or digit (A-Z, a-z, 0-9)".into());
    }
    if let Some(c) = r.chars().find(|c| !allowed(*c)) {
        return Err(format!(
            "holds {}, which is not allowed: use A-Z, a-z, 0-9 and . _ : / -",
            describe_char(c)
        ));
    }
    if r.len() > MAX_REFERENCE_CHARS {
        return Err(format!(
            "is {} characters long; at most {MAX_REFERENCE_CHARS} are allowed",
            r.len()
        ));
    }
    Ok(r)
}

/// A note: at most 1,000 characters, no control characters (a note must not forge a line of
/// a statement, a log or a job summary).
pub fn check_note(note: &str) -> Result<(), String> {
    let chars = note.chars().count();
    if chars > MAX_NOTE_CHARS {
        return Err(format!(
            "is {chars} characters long; at most {MAX_NOTE_CHARS} are allowed"
        ));
    }
    // U+2028 and U+2029 are not control characters, yet break a line where notes are shown.
    match note
        .chars()
        .find(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}'))
    {
        Some(c) if !c.is_control() => Err(format!(
            "holds the line separator {}; notes are one line of text",
            describe_char(c)
        )),
        Some(c) => Err(format!(
            "holds the control character {}; notes are one line of text",
            describe_char(c)
        )),
        None => Ok(()),
    }
}

/// What to do about a note (or `--reason`) [`check_note`] refused, for a `help:` line.
pub fn note_help(flag: &str) -> String {
    format!("write {flag} as one line of at most {MAX_NOTE_CHARS} characters, without line breaks or tabs (join lines with '; ')")
}

/// `'x' (U+0078)`: a character named so that look-alikes and invisible ones show.
fn describe_char(c: char) -> String {
    if c.is_control() || c.is_whitespace() {
        format!("U+{:04X}", c as u32)
    } else {
        format!("'{c}' (U+{:04X})", c as u32)
    }
}

/// `topup/{tenant_id}/{reference}`: the external reference is the identity of a top-up, so
/// the same reference twice is one top-up.
pub fn topup_key(tenant_id: &str, reference: &str) -> String {
    format!("topup/{tenant_id}/{reference}")
}

/// `spend/{tenant}/{wo}/r{run}/{step}/a{attempt}/{deliverable}`. Never includes the amount:
/// a price change between two postings must be a conflict, not a second charge.
pub fn spend_key(
    tenant_id: &str,
    work_order_id: &str,
    run: u64,
    step_id: &str,
    attempt: u32,
    deliverable_id: &str,
) -> String {
    let batch = step_batch_id(SPEND, tenant_id, work_order_id, run, step_id, attempt);
    format!("{batch}/{deliverable_id}")
}

/// `{kind}/{tenant}/{wo}/r{run}/{step}/a{attempt}`: the batch of one step attempt's SPENDs
/// (`kind` [`SPEND`]) or REFUNDs ([`REFUND`]).
fn step_batch_id(
    kind: &str,
    tenant_id: &str,
    work_order_id: &str,
    run: u64,
    step_id: &str,
    attempt: u32,
) -> String {
    format!("{kind}/{tenant_id}/{work_order_id}/r{run}/{step_id}/a{attempt}")
}

/// The first part of the keys and batch ids of SPENDs and of REFUNDs.
const SPEND: &str = "spend";
const REFUND: &str = "refund";

/// Credits added by an operator (`platform admin-topup`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topup {
    pub tenant_id: String,
    /// Positive.
    pub amount_credits: i64,
    pub topup_method_id: String,
    pub reference: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub actor: String,
    /// Always `credits`.
    pub usage_unit: String,
}

impl Topup {
    pub fn new(
        tenant_id: &str,
        amount_credits: i64,
        topup_method_id: &str,
        reference: &str,
        note: Option<&str>,
        actor: &str,
    ) -> Topup {
        Topup {
            tenant_id: tenant_id.into(),
            amount_credits,
            topup_method_id: topup_method_id.into(),
            reference: reference.into(),
            note: note.map(str::to_string),
            actor: actor.into(),
            usage_unit: UNIT_CREDITS.into(),
        }
    }

    pub fn key(&self) -> String {
        topup_key(&self.tenant_id, &self.reference)
    }
}

/// `adjust/{tenant_id}/{reference}`: like a top-up, the reference is the adjustment's identity.
pub fn adjust_key(tenant_id: &str, reference: &str) -> String {
    format!("adjust/{tenant_id}/{reference}")
}

/// An operator's correction of a balance (`platform admin-adjust`): a credit or a debit, with
/// the registry's reason for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Adjust {
    pub tenant_id: String,
    /// Signed: ±(1..=10^12).
    pub amount_credits: i64,
    /// From the registry's `adjust_reasons`.
    pub reason_slug: String,
    pub reference: String,
    #[serde(default)]
    pub note: Option<String>,
    pub actor: String,
    /// Always `credits`.
    pub usage_unit: String,
}

impl Adjust {
    pub fn key(&self) -> String {
        adjust_key(&self.tenant_id, &self.reference)
    }
}

/// What a SPEND charges and its REFUND reverses: the step attempt, the deliverable (or the
/// metered unit) and the correlation id. Flattened into both records (same wire form).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Charged {
    pub work_order_id: String,
    pub run: u64,
    pub step_id: String,
    pub attempt: u32,
    pub module_id: String,
    pub deliverable_id: String,
    pub usage_unit: String,
    pub run_id: String,
    pub correlation_id: String,
}

impl Charged {
    /// The batch id of its step attempt's SPENDs or REFUNDs (see [`step_batch_id`]).
    fn batch_id(&self, kind: &str, tenant_id: &str) -> String {
        let (wo, step) = (&self.work_order_id, &self.step_id);
        step_batch_id(kind, tenant_id, wo, self.run, step, self.attempt)
    }
    /// `{batch}/{deliverable}`: one SPEND per deliverable, one full REFUND per SPEND. Never
    /// includes the amount: a price change between two postings must be a conflict, not a
    /// second charge.
    fn key(&self, kind: &str, tenant_id: &str) -> String {
        format!("{}/{}", self.batch_id(kind, tenant_id), self.deliverable_id)
    }
}

/// One charge of a step: the run charge (`__run__`) or a purchased deliverable. Shaped like a
/// metered usage event: usage unit, resource (step/deliverable), quantity 1, correlation id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spend {
    pub tenant_id: String,
    /// Negative.
    pub amount_credits: i64,
    #[serde(flatten)]
    pub charge: Charged,
    /// Metered usage (SPEC §10): the quantity of `usage_unit` charged; `deliverable_id` is
    /// the unit then. Absent for run and deliverable charges (quantity 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<u64>,
}

impl Spend {
    /// A charge of `price_credits` (a positive price; the record holds it negated) with the
    /// usage unit that matches the deliverable.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        tenant_id: &str,
        work_order_id: &str,
        run: u64,
        run_id: &str,
        step_id: &str,
        attempt: u32,
        module_id: &str,
        deliverable_id: &str,
        price_credits: i64,
        correlation_id: &str,
    ) -> Spend {
        let charge = Charged {
            work_order_id: work_order_id.into(),
            run,
            step_id: step_id.into(),
            attempt,
            module_id: module_id.into(),
            deliverable_id: deliverable_id.into(),
            usage_unit: usage_unit_for(deliverable_id).into(),
            run_id: run_id.into(),
            correlation_id: correlation_id.into(),
        };
        Spend {
            tenant_id: tenant_id.into(),
            amount_credits: -price_credits,
            charge,
            quantity: None,
        }
    }

    pub fn key(&self) -> String {
        self.charge.key(SPEND, &self.tenant_id)
    }

    pub fn batch_id(&self) -> String {
        let id = self.charge.batch_id(SPEND, &self.tenant_id);
        // Usage is charged after the outcome, in a batch of its own.
        match self.quantity {
            Some(_) => format!("{id}/usage"),
            None => id,
        }
    }
}

/// The full reversal of one SPEND.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    pub tenant_id: String,
    /// Positive.
    pub amount_credits: i64,
    #[serde(flatten)]
    pub charge: Charged,
    pub reason_slug: String,
    /// The full idempotency key of the SPEND this reverses.
    pub refunds: String,
}

impl Refund {
    /// The full refund of `spend` for `reason_slug`.
    pub fn reversing(spend: &Spend, reason_slug: &str) -> Refund {
        Refund {
            tenant_id: spend.tenant_id.clone(),
            amount_credits: -spend.amount_credits,
            charge: spend.charge.clone(),
            reason_slug: reason_slug.into(),
            refunds: spend.key(),
        }
    }

    pub fn key(&self) -> String {
        self.charge.key(REFUND, &self.tenant_id)
    }

    pub fn batch_id(&self) -> String {
        self.charge.batch_id(REFUND, &self.tenant_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spend(deliverable: &str, price: i64) -> Spend {
        Spend::new(
            "acme",
            "wo-1",
            2,
            "acme-wo-1-r2",
            "s1",
            1,
            "mod",
            deliverable,
            price,
            "c",
        )
    }

    #[test]
    fn keys_name_the_charge_not_its_amount() {
        let a = spend(RUN_DELIVERABLE, 5);
        let b = spend(RUN_DELIVERABLE, 7);
        assert_eq!(a.key(), "spend/acme/wo-1/r2/s1/a1/__run__");
        assert_eq!(a.key(), b.key());
        assert_eq!(a.charge.usage_unit, "step_run");
        assert_eq!(spend("zip", 1).charge.usage_unit, "deliverable");
        assert_eq!(a.batch_id(), "spend/acme/wo-1/r2/s1/a1");
    }

    #[test]
    fn refund_reverses_its_spend_in_full() {
        let s = spend("report", 3);
        let r = Refund::reversing(&s, "timeout");
        assert_eq!(r.amount_credits, 3);
        assert_eq!(r.refunds, "spend/acme/wo-1/r2/s1/a1/report");
        assert_eq!(r.key(), "refund/acme/wo-1/r2/s1/a1/report");
        assert_eq!(r.batch_id(), "refund/acme/wo-1/r2/s1/a1");
    }

    #[test]
    fn references_are_trimmed_then_checked() {
        assert_eq!(check_reference(" INV-1"), Ok("INV-1"));
        assert_eq!(check_reference("INV-1\n"), Ok("INV-1"));
        assert_eq!(check_reference("inv.2026:07/A_1"), Ok("inv.2026:07/A_1"));
        let long = "A".repeat(MAX_REFERENCE_CHARS);
        assert_eq!(check_reference(&long), Ok(long.as_str()));
        assert!(check_reference(&format!("{long}B")).is_err());
        for bad in ["", "  ", "INV\u{2010}1", "-INV", "INV 1", "INV\r\n1", "é"] {
            assert!(check_reference(bad).is_err(), "{bad:?}");
        }
        assert!(check_reference("INV\u{2010}1")
            .unwrap_err()
            .contains("U+2010"));
    }

    #[test]
    fn notes_are_short_single_lines() {
        assert!(check_note("March invoice, paid by wire").is_ok());
        assert!(check_note(&"é".repeat(MAX_NOTE_CHARS)).is_ok());
        assert!(check_note(&"é".repeat(MAX_NOTE_CHARS + 1)).is_err());
        for bad in [
            "a\nb",
            "a\rb",
            "\u{1b}[31m",
            "a\u{85}b",
            "a\u{2028}b",
            "a\u{2029}b",
        ] {
            assert!(check_note(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn topup_key_is_tenant_and_reference() {
        let t = Topup::new("acme", 10, "bank", "INV-7", None, "ops");
        assert_eq!(t.key(), "topup/acme/INV-7");
        assert_eq!(t.usage_unit, "credits");
        let json = serde_json::to_value(&t).unwrap();
        assert!(json.get("note").is_none(), "an absent note is omitted");
    }
}
