//! Billing rules over TOPUP, ADJUST, SPEND and REFUND records: balances per tenant, what each refunded SPEND has had refunded, and the one place a billing operation is built from a record's fields.
//!
//! SPENDs are not kept: a REFUND names its SPEND's key, and the SPEND's tenant and amount are
//! read back from its line (REFUNDs are rare next to SPENDs); only SPENDs that have had a
//! refund keep their refunded total.
use super::key::{key_id, IdMap, KeyId};
use super::keyset::KeySet;
use super::line::{self, Facts};
use super::lines::{Lines, UNKNOWN_OFFSET};
use crate::records::{Record, RecordType, MAX_CREDITS};
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BillingKind {
    Topup,
    Adjust,
    Spend,
    Refund,
}

impl BillingKind {
    /// The billing operation a record type is, if any.
    pub fn of(record: RecordType) -> Option<BillingKind> {
        match record {
            RecordType::Topup => Some(BillingKind::Topup),
            RecordType::Adjust => Some(BillingKind::Adjust),
            RecordType::Spend => Some(BillingKind::Spend),
            RecordType::Refund => Some(BillingKind::Refund),
            _ => None,
        }
    }

    fn record(self) -> RecordType {
        match self {
            BillingKind::Topup => RecordType::Topup,
            BillingKind::Adjust => RecordType::Adjust,
            BillingKind::Spend => RecordType::Spend,
            BillingKind::Refund => RecordType::Refund,
        }
    }

    fn name(self) -> &'static str {
        self.record().name()
    }
}

/// The billing fields of one record, wherever they were read from (a ledger line's facts, or
/// a record about to be posted).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct BillingFields<'a> {
    pub tenant_id: Option<&'a str>,
    pub amount_credits: Option<i64>,
    pub refunds: Option<&'a str>,
}

#[derive(Debug, Clone)]
pub(crate) struct BillingOp {
    pub kind: BillingKind,
    pub tenant: String,
    pub amount: i64,
    pub key: KeyId,
    pub refunds: Option<String>,
}

impl BillingOp {
    /// The billing operation of a record of type `record` (None for other types), keyed by its
    /// idempotency key's id; an error names a field the type needs and lacks.
    pub fn new(
        record: RecordType,
        fields: BillingFields<'_>,
        key: KeyId,
    ) -> Result<Option<BillingOp>, String> {
        let Some(kind) = BillingKind::of(record) else {
            return Ok(None);
        };
        let name = kind.name();
        let tenant = fields
            .tenant_id
            .ok_or_else(|| format!("{name} needs a tenant_id"))?;
        let amount = fields
            .amount_credits
            .ok_or_else(|| format!("{name} needs an integer amount_credits"))?;
        let refunds = match kind {
            BillingKind::Refund => Some(
                fields
                    .refunds
                    .ok_or_else(|| {
                        format!("{name} needs refunds: the key of the SPEND it reverses")
                    })?
                    .to_string(),
            ),
            _ => None,
        };
        Ok(Some(BillingOp {
            kind,
            tenant: tenant.to_string(),
            amount,
            key,
            refunds,
        }))
    }

    /// The billing operation of a ledger line (`key` is its idempotency key's id); None for
    /// other types and unknown ones.
    pub fn of_line(f: &Facts<'_>, key: KeyId) -> Result<Option<BillingOp>, String> {
        let Some(record) = f.record else {
            return Ok(None);
        };
        let fields = BillingFields {
            tenant_id: f.tenant_id.as_deref(),
            amount_credits: f.amount,
            refunds: f.refunds.as_deref(),
        };
        BillingOp::new(record, fields, key)
    }

    /// The billing operation of a record about to be posted under `key`.
    pub fn of_record(record: &Record, key: &str) -> Result<Option<BillingOp>, String> {
        let refunds = match record {
            Record::Refund(r) => Some(r.refunds.as_str()),
            _ => None,
        };
        let fields = BillingFields {
            tenant_id: record.tenant_id(),
            amount_credits: record.amount_credits(),
            refunds,
        };
        BillingOp::new(record.record_type(), fields, key_id(key))
    }
}

/// Which billing rule an operation breaks: what a writer's refusal suggests doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BillingRule {
    /// TOPUP and REFUND amounts are positive, SPEND amounts negative, ADJUST amounts
    /// non-zero; a TOPUP or ADJUST at most 10^12 credits either way.
    Amount,
    /// A balance would leave 64 bits.
    Overflow,
    /// A SPEND or a debit ADJUST would take the balance below zero.
    NotEnoughCredits,
    /// A REFUND reverses one recorded SPEND of the same tenant, at most in full.
    Refund,
}

impl BillingRule {
    pub fn help(self) -> &'static str {
        match self {
            BillingRule::Amount => {
                "TOPUP and REFUND amounts are positive, SPEND amounts negative, ADJUST amounts ±(1..=10^12)"
            }
            BillingRule::Overflow => {
                "every sum is checked: a balance never leaves 64 bits (a TOPUP is at most 10^12 credits)"
            }
            BillingRule::NotEnoughCredits => "top the tenant up first (platform admin-topup)",
            BillingRule::Refund => {
                "a REFUND reverses one recorded SPEND of the same tenant, at most in full"
            }
        }
    }
}

/// A broken billing rule and what exactly is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BillingProblem {
    pub rule: BillingRule,
    pub message: String,
    /// What to do, when the rule's own advice does not fit this case.
    pub advice: Option<String>,
}

impl BillingProblem {
    /// What to do about it, for a `help:` line.
    pub fn help(&self) -> &str {
        self.advice.as_deref().unwrap_or(self.rule.help())
    }
}

impl std::fmt::Display for BillingProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

fn problem(rule: BillingRule, message: String) -> Option<BillingProblem> {
    Some(BillingProblem {
        rule,
        message,
        advice: None,
    })
}

/// A recorded SPEND as a REFUND needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Spent {
    pub tenant: String,
    /// Negative, as recorded.
    pub amount: i64,
}

/// Finds the SPEND recorded under a key id: None when no SPEND is; an error when its line
/// cannot be read back.
pub(crate) type FindSpend<'a> = &'a dyn Fn(&KeyId) -> Result<Option<Spent>, String>;

impl Spent {
    /// The SPEND of an operation (one posted earlier in the same batch).
    pub fn of(op: &BillingOp) -> Option<Spent> {
        (op.kind == BillingKind::Spend).then(|| Spent {
            tenant: op.tenant.clone(),
            amount: op.amount,
        })
    }

    /// The SPEND recorded under `key` in a file indexed by `index` (key → offset of its line),
    /// read back from `lines`.
    pub fn recorded(
        index: &KeySet<u64>,
        lines: Lines<'_>,
        key: &KeyId,
    ) -> Result<Option<Spent>, String> {
        let Some(offset) = index.get(key).filter(|o| *o != UNKNOWN_OFFSET) else {
            return Ok(None);
        };
        let bytes = lines
            .line(offset)
            .map_err(|e| format!("cannot read back the record at byte {offset}: {e}"))?;
        let Ok(f) = line::parse(&bytes, false) else {
            return Ok(None);
        };
        if !f.hash_ok || key_id(&f.key) != *key {
            return Err(format!(
                "the record at byte {offset} changed after it was read: it is not the one recorded under this key"
            ));
        }
        Ok(match BillingOp::of_line(&f, *key) {
            Ok(Some(op)) => Spent::of(&op),
            _ => None,
        })
    }
}

/// Balances per tenant and what each refunded SPEND has had refunded.
#[derive(Debug, Default, Clone)]
pub(crate) struct Billing {
    tenant_ix: HashMap<String, u32>,
    pub tenants: Vec<String>,
    pub balances: Vec<i64>,
    /// Positive refunded total per SPEND key id, for SPENDs with a refund only.
    pub refunded: IdMap<i64>,
}

impl Billing {
    /// Balances carried over from an earlier verified read; no earlier SPEND is found (its
    /// line is not known), so a REFUND of one fed after this breaks the refund rule (a reader
    /// resuming this way falls back to a whole read).
    pub fn with_balances<'a>(balances: impl IntoIterator<Item = (&'a String, &'a i64)>) -> Billing {
        let mut b = Billing::default();
        for (tenant, balance) in balances {
            let i = b.tenant(tenant);
            b.balances[i as usize] = *balance;
        }
        b
    }

    fn tenant(&mut self, name: &str) -> u32 {
        if let Some(&i) = self.tenant_ix.get(name) {
            return i;
        }
        let i = self.tenants.len() as u32;
        self.tenants.push(name.to_string());
        self.balances.push(0);
        self.tenant_ix.insert(name.to_string(), i);
        i
    }

    pub fn balance(&self, tenant: &str) -> i64 {
        self.tenant_ix
            .get(tenant)
            .map_or(0, |&i| self.balances[i as usize])
    }

    /// Check `op` against the state (`find` finds the SPEND a REFUND names); when `strict`, a
    /// violation changes nothing, otherwise it is applied anyway (verify keeps counting) and
    /// still reported. Every sum is checked: an overflow is a problem and leaves the balance
    /// as it was, never a wrap or a saturation.
    pub fn apply(
        &mut self,
        op: &BillingOp,
        strict: bool,
        find: FindSpend<'_>,
    ) -> Result<(), BillingProblem> {
        let t = self.tenant(&op.tenant);
        let balance = self.balances[t as usize];
        let next = balance.checked_add(op.amount);
        let target = refunded_key(op);
        let (spend, unreadable) = match target.as_ref().map(find) {
            Some(Err(message)) => (None, problem(BillingRule::Refund, message)),
            Some(Ok(spend)) => (spend, None),
            None => (None, None),
        };
        let broken = unreadable.or_else(|| self.rule_problem(op, spend.as_ref(), balance, next));
        if let (Some(p), true) = (&broken, strict) {
            return Err(p.clone());
        }
        if let Some(next) = next {
            self.balances[t as usize] = next;
        }
        if let (Some(k), Some(_)) = (target, spend) {
            let total = self.refunded.entry(k).or_insert(0);
            if let Some(sum) = total.checked_add(op.amount) {
                *total = sum;
            }
        }
        match broken {
            Some(p) => Err(p),
            None => Ok(()),
        }
    }

    /// What has been refunded of the SPEND recorded under `key`.
    pub fn refunded_of(&self, key: &KeyId) -> i64 {
        self.refunded.get(key).copied().unwrap_or(0)
    }

    /// The billing rule `op` breaks, if any (`spend` is the SPEND a REFUND names, when it is
    /// recorded; `next` is the balance after it, None on overflow).
    fn rule_problem(
        &self,
        op: &BillingOp,
        spend: Option<&Spent>,
        balance: i64,
        next: Option<i64>,
    ) -> Option<BillingProblem> {
        let name = op.kind.name();
        match op.kind {
            BillingKind::Topup if !(1..=MAX_CREDITS).contains(&op.amount) => problem(
                BillingRule::Amount,
                format!(
                    "{name} amount_credits must be 1..={MAX_CREDITS}, got {}",
                    op.amount
                ),
            ),
            BillingKind::Adjust if !(1..=MAX_CREDITS.unsigned_abs()).contains(&op.amount.unsigned_abs()) => {
                problem(
                    BillingRule::Amount,
                    format!(
                        "{name} amount_credits must be ±(1..={MAX_CREDITS}), got {}",
                        op.amount
                    ),
                )
            }
            BillingKind::Spend if op.amount >= 0 => problem(
                BillingRule::Amount,
                format!("{name} amount_credits must be negative, got {}", op.amount),
            ),
            BillingKind::Refund if op.amount <= 0 => problem(
                BillingRule::Amount,
                format!("{name} amount_credits must be positive, got {}", op.amount),
            ),
            _ if next.is_none() => problem(
                BillingRule::Overflow,
                format!(
                    "the balance of tenant {} would overflow: {balance} + {} does not fit in 64 bits",
                    op.tenant, op.amount
                ),
            ),
            BillingKind::Spend | BillingKind::Adjust if next.is_some_and(|b| b < 0) => {
                let mut p = problem(
                    BillingRule::NotEnoughCredits,
                    format!(
                        "not enough credits: tenant {} has a balance of {balance} credits and this {name} needs {}",
                        op.tenant,
                        op.amount.unsigned_abs()
                    ),
                );
                // A debit (a chargeback, a correction) is not helped by a top-up.
                if let (BillingKind::Adjust, Some(p)) = (op.kind, p.as_mut()) {
                    p.advice = Some(if balance > 0 {
                        // "-N or more": -1 to -N, never past the balance (until 2026-12-04 it said "or less").
                        format!("a debit can take at most the balance, {balance} credits: adjust by -{balance} or more (-1 to -{balance})")
                    } else {
                        format!("the balance is {balance} credits: there is nothing left to debit")
                    });
                }
                p
            }
            BillingKind::Refund => self.refund_problem(op, spend),
            _ => None,
        }
    }

    fn refund_problem(&self, op: &BillingOp, spend: Option<&Spent>) -> Option<BillingProblem> {
        let (refund, spend_name) = (op.kind.name(), BillingKind::Spend.name());
        let target = op.refunds.as_deref().unwrap_or("");
        let Some(spend) = spend else {
            return problem(
                BillingRule::Refund,
                format!("{refund} names no recorded {spend_name}: refunds {target}"),
            );
        };
        if spend.tenant != op.tenant {
            return problem(
                BillingRule::Refund,
                format!(
                    "{refund} of tenant {} reverses a {spend_name} of tenant {}",
                    op.tenant, spend.tenant
                ),
            );
        }
        let spent = spend.amount.unsigned_abs() as i128;
        let refunded = refunded_key(op).map_or(0, |k| self.refunded_of(&k));
        let total = refunded as i128 + op.amount as i128;
        if total > spent {
            return problem(
                BillingRule::Refund,
                format!(
                    "refund over spend: {spend_name} {target} was {spent} credits and its refunds would total {total}"
                ),
            );
        }
        None
    }

    /// Reverse an op applied with `apply` (a batch that failed part-way).
    pub fn undo(&mut self, op: &BillingOp) {
        let t = self.tenant(&op.tenant);
        // The exact inverse of an add that succeeded: it cannot overflow.
        if let Some(b) = self.balances[t as usize].checked_sub(op.amount) {
            self.balances[t as usize] = b;
        }
        let Some(k) = refunded_key(op) else { return };
        if let Some(total) = self.refunded.get_mut(&k) {
            *total = total.checked_sub(op.amount).unwrap_or(*total);
            if *total == 0 {
                self.refunded.remove(&k);
            }
        }
    }
}

/// The key id of the SPEND a REFUND names.
fn refunded_key(op: &BillingOp) -> Option<KeyId> {
    match op.kind {
        BillingKind::Refund => op.refunds.as_deref().map(key_id),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No SPEND is recorded anywhere.
    const NONE: FindSpend<'static> = &|_| Ok(None);

    fn op(kind: BillingKind, amount: i64) -> BillingOp {
        BillingOp {
            kind,
            tenant: "acme".into(),
            amount,
            key: key_id(&format!("{kind:?}/{amount}")),
            refunds: None,
        }
    }

    #[test]
    fn an_overflow_is_a_problem_never_a_wrap_or_a_saturation() {
        let mut b = Billing::default();
        b.apply(&op(BillingKind::Topup, 5), true, NONE).unwrap();
        b.balances[0] = i64::MAX - 2;
        for strict in [true, false] {
            let err = b
                .apply(&op(BillingKind::Topup, 10), strict, NONE)
                .unwrap_err();
            assert!(err.message.contains("would overflow"), "{err}");
            assert_eq!(err.rule, BillingRule::Overflow);
            assert_eq!(b.balance("acme"), i64::MAX - 2, "strict: {strict}");
        }
        b.apply(&op(BillingKind::Topup, 2), true, NONE).unwrap();
        assert_eq!(b.balance("acme"), i64::MAX);
    }

    #[test]
    fn topups_are_one_credit_to_ten_to_the_twelve() {
        let mut b = Billing::default();
        for bad in [0, -1, MAX_CREDITS + 1] {
            let err = b
                .apply(&op(BillingKind::Topup, bad), true, NONE)
                .unwrap_err();
            assert_eq!(err.rule, BillingRule::Amount, "{err}");
        }
        b.apply(&op(BillingKind::Topup, MAX_CREDITS), true, NONE)
            .unwrap();
        b.apply(&op(BillingKind::Topup, 1), true, NONE).unwrap();
        assert_eq!(b.balance("acme"), MAX_CREDITS + 1);
    }

    #[test]
    fn every_broken_rule_says_which() {
        let mut b = Billing::default();
        let spend = op(BillingKind::Spend, -5);
        let err = b.apply(&spend, true, NONE).unwrap_err();
        assert_eq!(err.rule, BillingRule::NotEnoughCredits, "{err}");
        let mut refund = op(BillingKind::Refund, 3);
        refund.refunds = Some("no-such-spend".into());
        let err = b.apply(&refund, true, NONE).unwrap_err();
        assert_eq!(err.rule, BillingRule::Refund, "{err}");
        assert!(
            err.message.starts_with("REFUND names no recorded SPEND"),
            "{err}"
        );
    }

    #[test]
    fn one_constructor_names_what_a_type_lacks() {
        let key = key_id("k");
        let none = BillingFields::default();
        assert!(BillingOp::new(RecordType::RunStarted, none, key)
            .unwrap()
            .is_none());
        let err = BillingOp::new(RecordType::Spend, none, key).unwrap_err();
        assert_eq!(err, "SPEND needs a tenant_id");
        let fields = BillingFields {
            tenant_id: Some("acme"),
            amount_credits: Some(4),
            refunds: None,
        };
        let err = BillingOp::new(RecordType::Refund, fields, key).unwrap_err();
        assert!(err.starts_with("REFUND needs refunds"), "{err}");
        let op = BillingOp::new(RecordType::Topup, fields, key)
            .unwrap()
            .unwrap();
        assert_eq!((op.kind, op.amount), (BillingKind::Topup, 4));
    }
}
