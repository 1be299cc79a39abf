//! GitHub Actions expressions, the subset the workflows use (`${{ }}` with `==`, `!=`, `&&`,
//! `||`, `!`, `fromJSON`, `format`, status functions), for the stand-in runner; an expression
//! it does not know fails the test. `success()` and `cancelled()` are asked of the context as
//! the paths `success()` and `cancelled()`: their answer depends on where they are evaluated
//! (a job's `if:` or a step's).

/// A value of an expression.
#[derive(Debug, Clone, PartialEq)]
pub enum V {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
}

impl V {
    pub fn truthy(&self) -> bool {
        match self {
            V::Null => false,
            V::Bool(b) => *b,
            V::Num(n) => *n != 0.0,
            V::Str(s) => !s.is_empty(),
        }
    }
    pub fn text(&self) -> String {
        match self {
            V::Null => String::new(),
            V::Bool(b) => b.to_string(),
            V::Num(n) if n.fract() == 0.0 => format!("{}", *n as i64),
            V::Num(n) => n.to_string(),
            V::Str(s) => s.clone(),
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    ctx: &'a dyn Fn(&str) -> V,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }
    fn eat(&mut self, tok: &str) -> bool {
        self.ws();
        if self.s[self.i..].starts_with(tok.as_bytes()) {
            self.i += tok.len();
            true
        } else {
            false
        }
    }
    fn or(&mut self) -> V {
        let mut v = self.and();
        while self.eat("||") {
            let r = self.and();
            v = if v.truthy() { v } else { r };
        }
        v
    }
    fn and(&mut self) -> V {
        let mut v = self.cmp();
        while self.eat("&&") {
            let r = self.cmp();
            v = if v.truthy() { r } else { v };
        }
        v
    }
    fn cmp(&mut self) -> V {
        let l = self.unary();
        if self.eat("==") {
            let r = self.unary();
            return V::Bool(l.text() == r.text());
        }
        if self.eat("!=") {
            let r = self.unary();
            return V::Bool(l.text() != r.text());
        }
        l
    }
    fn unary(&mut self) -> V {
        if self.eat("!") {
            return V::Bool(!self.unary().truthy());
        }
        self.atom()
    }
    fn atom(&mut self) -> V {
        self.ws();
        if self.eat("(") {
            let v = self.or();
            assert!(self.eat(")"), "expected )");
            return v;
        }
        if self.eat("'") {
            let start = self.i;
            while self.s[self.i] != b'\'' {
                self.i += 1;
            }
            let v = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
            self.i += 1;
            return V::Str(v);
        }
        let start = self.i;
        while self.i < self.s.len()
            && (self.s[self.i].is_ascii_alphanumeric() || b"._-[]*".contains(&self.s[self.i]))
        {
            self.i += 1;
        }
        let word = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
        assert!(!word.is_empty(), "cannot parse expression at {}", self.i);
        if self.eat("(") {
            let mut args = Vec::new();
            if !self.eat(")") {
                loop {
                    args.push(self.or());
                    if self.eat(")") {
                        break;
                    }
                    assert!(self.eat(","), "expected , or ) in {word}()");
                }
            }
            return match (word.as_str(), args.as_slice()) {
                ("cancelled", []) => (self.ctx)("cancelled()"),
                ("success", []) => (self.ctx)("success()"),
                ("always", []) => V::Bool(true),
                ("fromJSON", [a]) => a.clone(),
                ("format", [f, rest @ ..]) => {
                    let mut out = f.text();
                    for (i, a) in rest.iter().enumerate() {
                        out = out.replace(&format!("{{{i}}}"), &a.text());
                    }
                    V::Str(out)
                }
                (f, _) => panic!("function {f}() is not known to the stand-in runner"),
            };
        }
        match word.as_str() {
            "true" => V::Bool(true),
            "false" => V::Bool(false),
            "null" => V::Null,
            w if w.parse::<f64>().is_ok() => V::Num(w.parse().unwrap()),
            w => (self.ctx)(w),
        }
    }
}

/// Evaluate an expression; `ctx` answers the context paths (`github.ref`, `needs.plan.outputs.x`).
pub fn eval(expr: &str, ctx: &dyn Fn(&str) -> V) -> V {
    let mut p = Parser {
        s: expr.as_bytes(),
        i: 0,
        ctx,
    };
    let v = p.or();
    p.ws();
    assert_eq!(p.i, expr.len(), "trailing text in expression `{expr}`");
    v
}

/// Replace every `${{ expr }}` in `text`.
pub fn interpolate(text: &str, ctx: &dyn Fn(&str) -> V) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${{") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("}}").expect("unclosed ${{") + start;
        out.push_str(&eval(rest[start + 3..end].trim(), ctx).text());
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    out
}

/// An `if:` value: with or without `${{ }}`; empty when there is none. As on GitHub, a condition that calls no status
/// function is `success() && (condition)`: a job whose needs did not all succeed, or a step
/// after a failed one or in a cancelled job, does not run unless its `if:` says so.
pub fn condition(text: &str, ctx: &dyn Fn(&str) -> V) -> bool {
    let t = text.trim();
    let inner = t
        .strip_prefix("${{")
        .and_then(|t| t.strip_suffix("}}"))
        .unwrap_or(t)
        .trim();
    let status = ["success()", "always()", "cancelled()", "failure()"];
    if !status.iter().any(|f| inner.contains(f)) && !ctx("success()").truthy() {
        return false;
    }
    inner.is_empty() || eval(inner, ctx).truthy()
}
