//! The one writer of CSV text cells (`statement --csv`, package_std's manifest.csv): RFC 4180 quoting, and a text that a spreadsheet would take as a formula neutralised.

/// Characters a spreadsheet takes as the start of a formula (or strips before one): OWASP's
/// "CSV injection" list.
const FORMULA_START: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// A text cell (a note, an id, a path): prefixed with `'` when it starts like a formula, so
/// a spreadsheet shows it as text instead of running it; quoted (RFC 4180) when it holds a
/// comma, a quote or a line break, or starts or ends with a space, so it reads back whole.
/// Numbers are written as they are, not through this: `-5` is an amount, not a formula.
pub fn text(value: &str) -> String {
    let value = if value.starts_with(FORMULA_START) {
        format!("'{value}")
    } else {
        value.to_string()
    };
    let needs_quotes =
        value.contains([',', '"', '\n', '\r']) || value.starts_with(' ') || value.ends_with(' ');
    if needs_quotes {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_follows_rfc_4180() {
        assert_eq!(text("a/b"), "a/b");
        assert_eq!(text("a,b"), "\"a,b\"");
        assert_eq!(text("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(text(" lead"), "\" lead\"");
        assert_eq!(text(""), "");
    }

    #[test]
    fn a_formula_is_text() {
        assert_eq!(text("=1+1"), "'=1+1");
        assert_eq!(text("+1"), "'+1");
        assert_eq!(text("-2+3"), "'-2+3");
        assert_eq!(text("@SUM(1)"), "'@SUM(1)");
        assert_eq!(text("\tx"), "'\tx");
        assert_eq!(text("\rx"), "\"'\rx\"");
        assert_eq!(
            text("=HYPERLINK(\"http://x/\",\"y\")"),
            "\"'=HYPERLINK(\"\"http://x/\"\",\"\"y\"\")\""
        );
        assert_eq!(text("a=b"), "a=b");
    }
}
