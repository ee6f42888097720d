//! Conditions (`when = "…"`, `test = "…"`) and templates (`"【{category_name}】{$.content}"`).
//!
//! A condition is a path, `meta.<key>` (transport metadata), a name (a
//! `[let]` value or a ticket field) or a literal (`'text'`, `5`, `true`),
//! compared with `== != < <= > >=`, combined with `!`, `&&`, `||` and
//! parentheses. A lone operand is true when it is present and not `false`,
//! `0`, `null` or empty.

use super::path::{Path, Syntax};
use super::spec::{CmpOp, Cond, Operand, Template, TemplatePart, Val};

/// Resolves a name to its slot; the error says which names exist.
pub(crate) type Names<'a> = dyn Fn(&str) -> Result<usize, String> + 'a;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LParen,
    RParen,
    Not,
    And,
    Or,
    Op(CmpOp),
    Word(String),
    Str(String),
    Num(f64, bool),
}

fn tokenize(s: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push(Tok::LParen);
                i += 1;
            }
            ')' => {
                out.push(Tok::RParen);
                i += 1;
            }
            '&' if next == Some('&') => {
                out.push(Tok::And);
                i += 2;
            }
            '|' if next == Some('|') => {
                out.push(Tok::Or);
                i += 2;
            }
            '=' if next == Some('=') => {
                out.push(Tok::Op(CmpOp::Eq));
                i += 2;
            }
            '!' if next == Some('=') => {
                out.push(Tok::Op(CmpOp::Ne));
                i += 2;
            }
            '!' => {
                out.push(Tok::Not);
                i += 1;
            }
            '<' | '>' => {
                let eq = next == Some('=');
                out.push(Tok::Op(match (c, eq) {
                    ('<', false) => CmpOp::Lt,
                    ('<', true) => CmpOp::Le,
                    ('>', false) => CmpOp::Gt,
                    _ => CmpOp::Ge,
                }));
                i += if eq { 2 } else { 1 };
            }
            '\'' | '"' => {
                let close = chars[i + 1..].iter().position(|&d| d == c).ok_or("a quoted text is not closed")?;
                out.push(Tok::Str(chars[i + 1..i + 1 + close].iter().collect()));
                i += close + 2;
            }
            c if c.is_ascii_digit() || (c == '-' && next.is_some_and(|n| n.is_ascii_digit())) => {
                let start = i;
                i += 1;
                while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                let n: f64 = text.parse().map_err(|_| format!("`{text}` is not a number"))?;
                out.push(Tok::Num(n, !text.contains('.')));
            }
            '$' | '/' | '@' => {
                // A path runs to the next space or operator outside brackets and quotes.
                let start = i;
                let mut depth = 0usize;
                let mut quote: Option<char> = None;
                while i < chars.len() {
                    let d = chars[i];
                    if let Some(q) = quote {
                        if d == q {
                            quote = None;
                        }
                    } else if depth > 0 && (d == '\'' || d == '"') {
                        quote = Some(d);
                    } else if d == '[' {
                        depth += 1;
                    } else if d == ']' {
                        depth = depth.saturating_sub(1);
                    } else if depth == 0 && (d.is_whitespace() || "()!=<>&|".contains(d)) {
                        break;
                    }
                    i += 1;
                }
                out.push(Tok::Word(chars[start..i].iter().collect()));
            }
            c if c.is_alphanumeric() || c == '_' => {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '.' | '-')) {
                    i += 1;
                }
                out.push(Tok::Word(chars[start..i].iter().collect()));
            }
            other => return Err(format!("unexpected `{other}`")),
        }
    }
    Ok(out)
}

struct Parser<'a, 'n> {
    toks: Vec<Tok>,
    pos: usize,
    syntax: Syntax,
    names: &'a Names<'n>,
    uses: &'a mut Vec<usize>,
}

/// Parses a condition; the slots it reads are added to `uses`.
pub(crate) fn parse_cond(text: &str, syntax: Syntax, names: &Names<'_>, uses: &mut Vec<usize>) -> Result<Cond, String> {
    let toks = tokenize(text)?;
    if toks.is_empty() {
        return Err("the condition is empty".into());
    }
    let mut p = Parser { toks, pos: 0, syntax, names, uses };
    let cond = p.or()?;
    if p.pos < p.toks.len() {
        return Err(format!("unexpected {} after a complete condition", describe(&p.toks[p.pos])));
    }
    Ok(cond)
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::LParen => "`(`".into(),
        Tok::RParen => "`)`".into(),
        Tok::Not => "`!`".into(),
        Tok::And => "`&&`".into(),
        Tok::Or => "`||`".into(),
        Tok::Op(_) => "a comparison".into(),
        Tok::Word(w) => format!("`{w}`"),
        Tok::Str(s) => format!("'{s}'"),
        Tok::Num(n, _) => format!("`{n}`"),
    }
}

impl Parser<'_, '_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn or(&mut self) -> Result<Cond, String> {
        let mut left = self.and()?;
        while self.peek() == Some(&Tok::Or) {
            self.pos += 1;
            left = Cond::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Cond, String> {
        let mut left = self.unary()?;
        while self.peek() == Some(&Tok::And) {
            self.pos += 1;
            left = Cond::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Cond, String> {
        match self.peek() {
            Some(Tok::Not) => {
                self.pos += 1;
                Ok(Cond::Not(Box::new(self.unary()?)))
            }
            Some(Tok::LParen) => {
                self.pos += 1;
                let c = self.or()?;
                if self.peek() != Some(&Tok::RParen) {
                    return Err("`(` is not closed by `)`".into());
                }
                self.pos += 1;
                Ok(c)
            }
            _ => {
                let left = self.operand()?;
                if let Some(Tok::Op(op)) = self.peek() {
                    let op = *op;
                    self.pos += 1;
                    let right = self.operand()?;
                    Ok(Cond::Cmp(left, op, right))
                } else {
                    Ok(Cond::Truthy(left))
                }
            }
        }
    }

    fn operand(&mut self) -> Result<Operand, String> {
        let tok = self.toks.get(self.pos).cloned().ok_or("the condition ends too early")?;
        self.pos += 1;
        match tok {
            Tok::Str(s) => Ok(Operand::Lit(Val::Str(s))),
            Tok::Num(n, true) if n.abs() < 9.0e15 => Ok(Operand::Lit(Val::Int(n as i64))),
            Tok::Num(n, _) => Ok(Operand::Lit(Val::Num(n))),
            Tok::Word(w) => operand_word(&w, self.syntax, self.names, self.uses),
            other => Err(format!("expected a path, a name or a value, found {}", describe(&other))),
        }
    }
}

fn operand_word(w: &str, syntax: Syntax, names: &Names<'_>, uses: &mut Vec<usize>) -> Result<Operand, String> {
    if w.starts_with(['$', '/', '@']) {
        return Ok(Operand::Path(Path::parse(w, syntax)?));
    }
    if let Some(key) = w.strip_prefix("meta.") {
        if key.is_empty() {
            return Err("`meta.` must be followed by a metadata key, e.g. `meta.routing_key`".into());
        }
        return Ok(Operand::Meta(key.to_string()));
    }
    match w {
        "true" => Ok(Operand::Lit(Val::Bool(true))),
        "false" => Ok(Operand::Lit(Val::Bool(false))),
        _ => {
            let slot = names(w)?;
            uses.push(slot);
            Ok(Operand::Name(slot))
        }
    }
}

/// Parses a template: `{name}`, `{$.path}`, `{/Xml/path}`, `{@.rel}`,
/// `{meta.key}` are replaced (absent values by nothing); `{{` and `}}` are braces.
pub(crate) fn parse_template(
    text: &str,
    syntax: Syntax,
    names: &Names<'_>,
    uses: &mut Vec<usize>,
) -> Result<Template, String> {
    let mut parts = Vec::new();
    let mut lit = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                lit.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                lit.push('}');
            }
            '{' => {
                let mut inner = String::new();
                let mut closed = false;
                for d in chars.by_ref() {
                    if d == '}' {
                        closed = true;
                        break;
                    }
                    inner.push(d);
                }
                if !closed {
                    return Err("a `{` is not closed by `}` (write `{{` for a brace)".into());
                }
                let inner = inner.trim();
                if inner.is_empty() {
                    return Err("`{}` names nothing".into());
                }
                if !lit.is_empty() {
                    parts.push(TemplatePart::Lit(std::mem::take(&mut lit)));
                }
                parts.push(TemplatePart::Ref(operand_word(inner, syntax, names, uses)?));
            }
            '}' => return Err("a lone `}` (write `}}` for a brace)".into()),
            c => lit.push(c),
        }
    }
    if !lit.is_empty() {
        parts.push(TemplatePart::Lit(lit));
    }
    Ok(Template { parts })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: &str) -> Result<usize, String> {
        match n {
            "msg" => Ok(0),
            _ => Err(format!("no value is named `{n}`")),
        }
    }

    #[test]
    fn parses_conditions() {
        let mut uses = Vec::new();
        let c = parse_cond("!$.anonymous && (meta.kind == 'report' || msg != \"x\")", Syntax::Json, &names, &mut uses);
        assert!(matches!(c, Ok(Cond::And(_, _))), "{c:?}");
        assert_eq!(uses, vec![0]);
        assert!(parse_cond("$.rs >= 5", Syntax::Json, &names, &mut uses).is_ok());
        assert!(parse_cond("/Case/Party[@role='a b']/Name == 'x'", Syntax::Xml, &names, &mut uses).is_ok());
        assert!(parse_cond("nope == 1", Syntax::Json, &names, &mut uses).unwrap_err().contains("nope"));
        assert!(parse_cond("$.a ==", Syntax::Json, &names, &mut uses).is_err());
        assert!(parse_cond("($.a", Syntax::Json, &names, &mut uses).is_err());
        assert!(parse_cond("", Syntax::Json, &names, &mut uses).is_err());
        assert!(parse_cond("'open", Syntax::Json, &names, &mut uses).is_err());
    }

    #[test]
    fn parses_templates() {
        let mut uses = Vec::new();
        let t = parse_template("【{msg}】{$.content} {{x}}", Syntax::Json, &names, &mut uses).unwrap();
        assert_eq!(t.parts.len(), 5);
        assert!(parse_template("{open", Syntax::Json, &names, &mut uses).is_err());
        assert!(parse_template("{unknown}", Syntax::Json, &names, &mut uses).is_err());
    }
}
