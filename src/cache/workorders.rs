//! Work orders as a pass reads them, and the work-order cache (`<runtime-dir>/.cache/workorders.json`): each file judged (parsed, validated, reduced to digest and verdict; a chunk at a time, on every CPU) unless the cache holds a verdict on its bytes under the same modules and config.
use crate::findings::Finding;
use crate::repo::{Known, LoadedWorkOrder, Repo, Verdict};
use crate::workorder::model::InputValue;
use crate::yaml::Doc;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The repository as a pass needs it, in memory that does not grow with the work orders'
/// contents: each work-order file is read, validated and reduced to its digest and verdict, a
/// chunk at a time (not parsed at all when `known` vouches for its bytes under this
/// repository's modules and config). The models of the first files parsed stay in memory, within
/// [`KEEP_MODELS`]; `Repo::model` parses any other again when it runs.
pub fn load_light(root: &Path, known: Option<&Known>) -> crate::Result<Repo> {
    load_keeping(root, known, KEEP_MODELS)
}

fn load_keeping(root: &Path, known: Option<&Known>, mut budget: Budget) -> crate::Result<Repo> {
    let mut repo = Repo::load_deferred(root)?;
    let known = known.filter(|k| k.context == repo.context);
    let slots = repo.deferred();
    let helpers = helpers_for(slots.len());
    // A chunk at a time: the models of a chunk are all in memory until the budget decides
    // which stay, so memory stays bounded whatever the number of work orders.
    for chunk in slots.chunks(CHUNK) {
        let judged = judge_chunk(&repo, chunk, known, helpers);
        for ((t, i), j) in chunk.iter().zip(judged) {
            let Some(j) = j else {
                continue;
            };
            let (lw, cached) = j.settle(&mut budget);
            if cached {
                repo.cached += 1;
            } else {
                repo.parsed += 1;
            }
            repo.set_work_order(t, *i, lw);
        }
    }
    Ok(repo)
}

/// Work orders judged together: on a first pass of 1,000 work orders, judging them one
/// after the other kept the other CPUs idle for the ~50 ms before the first step.
const CHUNK: usize = 128;

/// Threads that help the caller judge `n` work orders: none for a few (a thread costs more
/// than it saves), else one per other CPU, at most 3.
fn helpers_for(n: usize) -> usize {
    if n < 32 {
        return 0;
    }
    std::thread::available_parallelism().map_or(0, |c| (c.get() - 1).min(3))
}

/// One work order as a helper thread leaves it; the budget is spent in order by the caller.
enum Judged {
    /// Vouched for by the cache, or not readable (its findings say why).
    Done(LoadedWorkOrder, bool),
    /// Parsed and validated: its model kept or dropped as the budget decides.
    Parsed {
        lw: LoadedWorkOrder,
        sha256: String,
        errors: Vec<Finding>,
        text: u64,
    },
}

impl Judged {
    /// The work order to keep, and whether the cache vouched for it.
    fn settle(self, budget: &mut Budget) -> (LoadedWorkOrder, bool) {
        match self {
            Judged::Done(lw, cached) => (lw, cached),
            Judged::Parsed {
                lw,
                sha256,
                errors,
                text,
            } => {
                // Only what may run spends the budget: an enabled work order without errors.
                if lw.enabled && errors.is_empty() && budget.take(text) {
                    (lw.kept(sha256, errors), false)
                } else {
                    (lw.lightened(sha256, errors), false)
                }
            }
        }
    }
}

/// The chunk's work orders judged, one entry per slot of `chunk` in its order (None for a
/// slot the repository does not have): by the caller and `helpers` threads taking the next
/// one in turn. One a helper did not return (it panicked) is judged here.
fn judge_chunk(
    repo: &Repo,
    chunk: &[(String, usize)],
    known: Option<&Known>,
    helpers: usize,
) -> Vec<Option<Judged>> {
    let one = |(t, i): &(String, usize)| {
        repo.work_order_at(t, *i)
            .map(|slot| judged(repo, slot, known))
    };
    if helpers == 0 || chunk.len() < 2 {
        return chunk.iter().map(one).collect();
    }
    let next = AtomicUsize::new(0);
    let take = || {
        let mut out = Vec::new();
        loop {
            let k = next.fetch_add(1, Ordering::Relaxed);
            let Some(slot) = chunk.get(k) else {
                return out;
            };
            out.push((k, one(slot)));
        }
    };
    let mut slots: Vec<Option<Option<Judged>>> = (0..chunk.len()).map(|_| None).collect();
    std::thread::scope(|s| {
        let started: Vec<_> = (0..helpers).map(|_| s.spawn(take)).collect();
        let mut done = take();
        for h in started {
            done.extend(h.join().unwrap_or_default());
        }
        for (k, j) in done {
            slots[k] = Some(j);
        }
    });
    slots
        .into_iter()
        .zip(chunk)
        .map(|(j, slot)| j.unwrap_or_else(|| one(slot)))
        .collect()
}

const FILE: &str = "workorders.json";

/// How many parsed work orders may keep their model in memory from validation to their run,
/// and how much of their text. Parsing is most of what a pass spends per work order outside
/// its steps, and a model kept runs without a second (planner) and third (worker) parse; past
/// the budget the models are dropped, so a pass's memory stays bounded whatever the number
/// of work orders. A small work order's model takes about 9 KiB (B-tree nodes of its maps):
/// ~9 MiB at most here, and the text limit bounds large ones.
pub const KEEP_MODELS: Budget = Budget {
    models: 1024,
    text: 512 << 10,
};

/// What may still keep its model: a number of work orders and bytes of their text.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub models: usize,
    pub text: u64,
}

impl Budget {
    /// Take room for one model of `text` bytes of text, if there is.
    fn take(&mut self, text: u64) -> bool {
        if self.models == 0 || text > self.text {
            return false;
        }
        self.models -= 1;
        self.text -= text;
        true
    }
}

/// The verdicts of the last pass, if the cache is there and readable (else none: every work
/// order is parsed, and the cache is written anew).
pub fn load(runtime_dir: &Path) -> Option<Known> {
    serde_json::from_slice(&super::read(runtime_dir, FILE)?).ok()
}

/// Keep the verdict of every work order that has one (enabled and valid), but those of
/// `doubted` (files the pass found in disagreement with their verdict): judged again next
/// pass. Written again at the end of a pass, over whatever a module wrote meanwhile.
pub fn save(runtime_dir: &Path, repo: &Repo, doubted: &BTreeSet<&str>) {
    let files: HashMap<String, Verdict> = repo
        .work_orders()
        .filter(|lw| !doubted.contains(lw.rel.as_str()))
        .filter_map(|lw| lw.verdict.clone().map(|v| (lw.rel.clone(), v)))
        .collect();
    let known = Known {
        context: repo.context.clone(),
        files,
    };
    let written = serde_json::to_vec(&known)
        .ok()
        .is_some_and(|json| super::write(runtime_dir, FILE, &json).is_ok());
    if !written {
        let _ = std::fs::remove_file(super::dir(runtime_dir).join(FILE));
    }
}

/// The placeholder `slot` read: vouched for by `known` (not parsed), or parsed and
/// validated against `repo`. One that does not parse keeps its findings as loaded.
/// The model of a work order about to run. One the cache vouched for is parsed and
/// validated again: the cache is in the runtime directory, which a module can write, so its
/// verdict alone never lets an invalid work order run (a no-op pass runs nothing, so it
/// still validates nothing).
pub fn model_to_run<'a>(
    repo: &Repo,
    lw: &'a LoadedWorkOrder,
) -> Result<std::borrow::Cow<'a, crate::workorder::model::WorkOrder>, String> {
    repo.model_checked(lw, |again| {
        agrees_with_file(lw, again)?;
        match crate::validate::work_order(repo, again).first() {
            Some(f) => Err(format!(
                "{} is not valid, whatever the work-order cache says: {}",
                lw.rel, f.message
            )),
            None => Ok(()),
        }
    })
}

/// What the planner took from a cached verdict without parsing the file — `enabled` and
/// `schedule`, which decide whether and for which period it runs — is what the file says. A
/// module can write the cache: a forged `schedule` would start runs of an unchanged work
/// order (charging its tenant every period), a forged `enabled` run a draft.
fn agrees_with_file(planned: &LoadedWorkOrder, again: &LoadedWorkOrder) -> Result<(), String> {
    let fields = |lw: &LoadedWorkOrder| lw.work_order.as_ref().map(|w| (w.enabled, w.schedule));
    let (cached, file) = (fields(planned), fields(again));
    if cached == file {
        return Ok(());
    }
    Err(format!(
        "the work-order cache (<runtime-dir>/.cache/) says {} of {}, the file says {}: not run in this pass, and judged from the file alone in the next (the cache was written by something other than the platform)",
        describe(cached),
        planned.rel,
        describe(file)
    ))
}

fn describe(fields: Option<(bool, Option<crate::workorder::schedule::Every>)>) -> String {
    match fields {
        None => "nothing".into(),
        Some((enabled, schedule)) => format!(
            "enabled: {enabled}, schedule: {}",
            schedule.map_or("none".to_string(), |e| format!("{e:?}").to_lowercase())
        ),
    }
}

fn judged(repo: &Repo, slot: &LoadedWorkOrder, known: Option<&Known>) -> Judged {
    let rel = Path::new(&slot.rel);
    let raw = match crate::yaml::read_at(&repo.beneath(rel)) {
        Ok(raw) => raw,
        Err(_) => {
            let lw = crate::repo::load_work_order(&repo.root, rel, &slot.tenant_id);
            return Judged::Done(lw, false);
        }
    };
    if let Some(v) = known.and_then(|k| k.hit(&raw, &repo.root, &slot.tenant_id)) {
        let mut lw = LoadedWorkOrder::deferred(&repo.root, rel, &slot.tenant_id);
        lw.enabled = v.enabled;
        lw.verdict = Some(v.clone());
        lw.doc = Some(Doc {
            rel: raw.rel,
            abs: raw.abs,
            text: String::new(),
            value: serde_json::Value::Null,
            sha256: raw.sha256.clone(),
        });
        return Judged::Done(lw.lightened(raw.sha256, Vec::new()), true);
    }
    let mut lw = crate::repo::from_raw(&repo.root, rel, &slot.tenant_id, raw);
    let (Some(doc), Some(_)) = (&lw.doc, &lw.work_order) else {
        return Judged::Done(lw, false);
    };
    let sha256 = doc.sha256.clone();
    let text = doc.text.len() as u64;
    let errors = crate::validate::work_order(repo, &lw);
    lw.verdict = verdict(&lw, &sha256, &errors);
    Judged::Parsed {
        lw,
        sha256,
        errors,
        text,
    }
}

/// The verdict on a parsed work order: enabled and without errors. An invalid one is judged
/// again every pass, to report its findings; so is a draft, because skipping a work order is
/// the one thing the planner does with a verdict without reading the file again: a module can
/// write the cache, and a forged `enabled: false` would stop a due work order unseen.
fn verdict(lw: &LoadedWorkOrder, sha256: &str, errors: &[Finding]) -> Option<Verdict> {
    let wo = lw.work_order.as_ref()?;
    if !lw.enabled || !errors.is_empty() {
        return None;
    }
    let assets = wo
        .steps
        .iter()
        .flat_map(|s| s.inputs.values())
        .filter_map(|v| match v {
            InputValue::Asset(rel) => Some(rel.clone()),
            _ => None,
        })
        .collect();
    Some(Verdict {
        sha256: sha256.to_string(),
        enabled: lw.enabled,
        assets,
        schedule: wo.schedule,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::borrow::Cow;

    fn fixture() -> std::path::PathBuf {
        // The repository's own example tenants.
        Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
    }

    /// Enabled, valid work orders: those that may keep their model.
    fn kept(repo: &Repo) -> Vec<&LoadedWorkOrder> {
        repo.work_orders()
            .filter(|lw| lw.enabled && lw.verdict.is_some() && lw.findings.is_empty())
            .collect()
    }

    #[test]
    fn the_budget_counts_models_and_text() {
        let mut b = Budget {
            models: 2,
            text: 100,
        };
        assert!(b.take(60));
        assert!(!b.take(41), "past the text left");
        assert!(b.take(40));
        assert!(!b.take(0), "past the models left");
    }

    #[test]
    fn models_within_the_budget_are_lent_and_the_rest_parsed_again() {
        let all = Budget {
            models: usize::MAX,
            text: u64::MAX,
        };
        let repo = load_keeping(&fixture(), None, all).unwrap();
        let valid = kept(&repo);
        assert!(valid.len() >= 2, "{}", valid.len());
        for lw in &valid {
            assert!(lw.kept && lw.vouched, "{}", lw.rel);
            let model = repo.model(lw).unwrap();
            assert!(matches!(model, Cow::Borrowed(_)), "{} parsed again", lw.rel);
            assert!(!model.steps.is_empty(), "{}", lw.rel);
            // Its text is not kept: only the model.
            assert!(lw.doc.as_ref().unwrap().text.is_empty(), "{}", lw.rel);
        }
        let none = Budget { models: 0, ..all };
        let light = load_keeping(&fixture(), None, none).unwrap();
        for lw in kept(&light) {
            assert!(!lw.kept && lw.work_order.as_ref().unwrap().steps.is_empty());
            let model = light.model(lw).unwrap();
            assert!(matches!(model, Cow::Owned(_)), "{}", lw.rel);
            let whole = repo.model(repo.work_orders().find(|w| w.rel == lw.rel).unwrap());
            assert_eq!(model.as_ref(), whole.unwrap().as_ref(), "{}", lw.rel);
        }
    }

    /// What a judged work order came to, to compare two ways of judging.
    fn outline(j: Judged) -> String {
        let (lw, how) = match j {
            Judged::Done(lw, cached) => (lw, format!("done cached={cached}")),
            Judged::Parsed { lw, errors, .. } => (lw, format!("parsed errors={}", errors.len())),
        };
        let sha = lw.verdict.as_ref().map(|v| v.sha256.clone());
        let steps = lw.work_order.as_ref().map(|w| w.steps.len());
        format!("{} {how} {sha:?} {steps:?} {}", lw.rel, lw.findings.len())
    }

    #[test]
    fn helpers_judge_as_the_caller_alone_does_in_the_same_order() {
        let repo = Repo::load_deferred(&fixture()).unwrap();
        let slots = repo.deferred();
        assert!(slots.len() >= 3, "{}", slots.len());
        let alone: Vec<String> = judge_chunk(&repo, &slots, None, 0)
            .into_iter()
            .map(|j| outline(j.unwrap()))
            .collect();
        let helped: Vec<String> = judge_chunk(&repo, &slots, None, 3)
            .into_iter()
            .map(|j| outline(j.unwrap()))
            .collect();
        assert_eq!(alone.len(), slots.len());
        assert_eq!(alone, helped);
        for (line, (t, i)) in helped.iter().zip(&slots) {
            let rel = &repo.work_order_at(t, *i).unwrap().rel;
            assert!(line.starts_with(rel.as_str()), "{line} is not {rel}");
        }
    }
}
