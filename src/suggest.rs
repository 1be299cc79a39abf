//! "Did you mean": the known names closest to a mistyped one, by edit distance or by the words they share. Pure; used
//! wherever a name a user typed is looked up in a list (topics, tenants, top-up methods).

/// The known names within a small edit distance of `query`, closest first (at most `max`).
pub fn closest<'a>(
    query: &str,
    known: impl IntoIterator<Item = &'a str>,
    max: usize,
) -> Vec<&'a str> {
    let limit = query.chars().count().max(3) / 2 + 1;
    // Case aside: `ACME` is a typo of `acme`, not a name four edits away.
    let query = query.to_lowercase();
    // A name holding every word typed is close too, after the typos: `topup` for
    // `admin-topup`, `error:conflict` for `error:ledger_conflict` (edit distance alone finds
    // neither: the missing word is longer than the typo allowance).
    let typed = words(&query);
    let mut scored: Vec<(usize, &str)> = known
        .into_iter()
        .filter_map(|k| {
            let lower = k.to_lowercase();
            let d = distance(&query, &lower);
            if d <= limit {
                return Some((d, k));
            }
            let have = words(&lower);
            let all = !typed.is_empty() && typed.iter().all(|w| have.contains(w));
            all.then_some((limit + 1, k))
        })
        .collect();
    scored.sort();
    scored.dedup();
    scored.into_iter().take(max).map(|(_, k)| k).collect()
}

/// The words of a name: its parts between `-`, `_`, `:`, spaces and dots.
fn words(name: &str) -> Vec<&str> {
    name.split(['-', '_', ':', ' ', '.'])
        .filter(|w| !w.is_empty())
        .collect()
}

/// `did you mean 'x'?` (or `'x' or 'y'`) for a `help:` line, when anything is close.
pub fn did_you_mean<'a>(query: &str, known: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let close = closest(query, known, 3);
    if close.is_empty() {
        return None;
    }
    let quoted: Vec<String> = close.iter().map(|k| format!("'{k}'")).collect();
    Some(format!("did you mean {}?", quoted.join(" or ")))
}

/// [`did_you_mean`] followed by a space, or nothing: the start of a `help:` line.
pub fn hint<'a>(query: &str, known: impl IntoIterator<Item = &'a str>) -> String {
    did_you_mean(query, known)
        .map(|d| format!("{d} "))
        .unwrap_or_default()
}

/// Levenshtein distance over characters.
pub fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(cur).min(row[j])
            };
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(distance("timeout", "timeout"), 0);
        assert_eq!(distance("timout", "timeout"), 1);
        assert_eq!(distance("", "abc"), 3);
    }

    #[test]
    fn suggestions_are_close_names_only() {
        let known = ["acme", "globex", "initech"];
        assert_eq!(closest("acm", known, 3), ["acme"]);
        assert_eq!(
            did_you_mean("glbex", known).as_deref(),
            Some("did you mean 'globex'?")
        );
        assert_eq!(did_you_mean("zzzzzzzz", known), None);
        assert_eq!(closest("ACME", known, 3), ["acme"]);
    }

    #[test]
    fn a_name_holding_every_word_typed_is_suggested_after_the_typos() {
        let known = [
            "command:admin-topup",
            "command:admin-adjust",
            "error:ledger_conflict",
        ];
        assert_eq!(closest("command:topup", known, 3), ["command:admin-topup"]);
        assert_eq!(
            closest("error:conflict", known, 3),
            ["error:ledger_conflict"]
        );
        assert_eq!(closest("topup", known, 3), ["command:admin-topup"]);
        assert!(closest("-", known, 3).is_empty());
        assert!(closest("command:refund", known, 3).is_empty());
    }
}
