//! Paths into a record's body.
//!
//! JSON: `$.orderNo`, `$.location.lat`, `$.xfr[0].xm`, `$.xfr[*]`, `$['odd key']`.
//! XML:  `/Case/CaseNo`, `/Case/Cause/@code`, `/Case/Parties/Party[@role='applicant']`,
//!       `/Case/Documents/Document[1]` (XPath style: element steps, `[n]` from 1,
//!       `[@attr='value']` filters, a final `@attr`).
//! Inside a `for_each` block, `@` is the current item: `@.xm` (JSON),
//! `@/Name`, `@/@type` (XML), or `@` alone.

use serde_json::Value;

use super::doc::{Doc, Element};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Syntax {
    Json,
    Xml,
}

#[derive(Debug, Clone)]
pub(crate) struct Path {
    pub text: String,
    pub relative: bool,
    steps: Steps,
}

#[derive(Debug, Clone)]
enum Steps {
    Json(Vec<JStep>),
    Xml(Vec<XStep>),
}

#[derive(Debug, Clone)]
enum JStep {
    Key(String),
    Index(usize),
    All,
}

#[derive(Debug, Clone)]
enum XStep {
    /// Child elements by name (`*` for any), with filters.
    Child {
        name: Option<String>,
        filters: Vec<XFilter>,
    },
    Attr(String),
}

#[derive(Debug, Clone)]
enum XFilter {
    /// 1-based position among the matched siblings.
    Position(usize),
    AttrEq(String, String),
}

/// Where a path landed.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Node<'a> {
    Json(&'a Value),
    Xml(&'a Element),
    Attr(&'a str),
}

impl Path {
    pub fn parse(text: &str, syntax: Syntax) -> Result<Path, String> {
        let trimmed = text.trim();
        let (relative, rest) = if let Some(r) = trimmed.strip_prefix('@') {
            (true, r)
        } else {
            match syntax {
                Syntax::Json => match trimmed.strip_prefix('$') {
                    Some(r) => (false, r),
                    None => {
                        return Err(format!(
                            "`{trimmed}` is not a JSON path: it starts with `$` (or `@` in a for_each block), e.g. `$.orderNo`"
                        ));
                    }
                },
                Syntax::Xml => {
                    if !trimmed.starts_with('/') {
                        return Err(format!(
                            "`{trimmed}` is not an XML path: it starts with `/` (or `@` in a for_each block), e.g. `/Case/CaseNo`"
                        ));
                    }
                    (false, trimmed)
                }
            }
        };
        let steps = match syntax {
            Syntax::Json => Steps::Json(parse_json(rest).map_err(|e| format!("`{trimmed}` is not a JSON path: {e}"))?),
            Syntax::Xml => {
                let steps = parse_xml(rest).map_err(|e| format!("`{trimmed}` is not an XML path: {e}"))?;
                if !relative && !matches!(steps.first(), Some(XStep::Child { .. })) {
                    return Err(format!(
                        "`{trimmed}` is not an XML path: it starts with the root element, e.g. `/Case/CaseNo`"
                    ));
                }
                Steps::Xml(steps)
            }
        };
        Ok(Path { text: trimmed.to_string(), relative, steps })
    }

    /// Every node the path reaches, in document order.
    pub fn select<'a>(&self, doc: &'a Doc, current: Option<Node<'a>>, out: &mut Vec<Node<'a>>) {
        let start = if self.relative {
            match current {
                Some(n) => n,
                None => return,
            }
        } else {
            match doc {
                Doc::Json(v) => Node::Json(v),
                Doc::Xml(e) => Node::Xml(e),
            }
        };
        match &self.steps {
            Steps::Json(steps) => {
                let Node::Json(v) = start else { return };
                json_select(v, steps, out);
            }
            Steps::Xml(steps) => {
                let mut set: Vec<Node<'a>> = Vec::new();
                let mut steps = steps.as_slice();
                if self.relative {
                    set.push(start);
                } else if let (Node::Xml(root), Some(XStep::Child { name, filters })) = (start, steps.first()) {
                    // The first step of an absolute path names the root element.
                    if name.as_deref().is_none_or(|n| n == root.name) && filters_match(root, filters, 0) {
                        set.push(start);
                    }
                    steps = &steps[1..];
                }
                for step in steps {
                    let mut next = Vec::new();
                    for node in &set {
                        let Node::Xml(el) = node else { continue };
                        match step {
                            XStep::Attr(a) => {
                                if let Some(v) = el.attr(a) {
                                    next.push(Node::Attr(v));
                                }
                            }
                            XStep::Child { name, filters } => {
                                let mut position = 0;
                                for child in &el.children {
                                    if name.as_deref().is_none_or(|n| n == child.name) {
                                        let attr_ok = filters.iter().all(|f| match f {
                                            XFilter::AttrEq(k, v) => child.attr(k) == Some(v.as_str()),
                                            XFilter::Position(_) => true,
                                        });
                                        if attr_ok {
                                            position += 1;
                                            if filters_match(child, filters, position - 1) {
                                                next.push(Node::Xml(child));
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    set = next;
                    if set.is_empty() {
                        break;
                    }
                }
                out.extend(set);
            }
        }
    }

    pub fn first<'a>(&self, doc: &'a Doc, current: Option<Node<'a>>) -> Option<Node<'a>> {
        let mut out = Vec::new();
        self.select(doc, current, &mut out);
        out.into_iter().next()
    }
}

fn filters_match(el: &Element, filters: &[XFilter], index: usize) -> bool {
    filters.iter().all(|f| match f {
        XFilter::Position(p) => *p == index + 1,
        XFilter::AttrEq(k, v) => el.attr(k) == Some(v.as_str()),
    })
}

fn json_select<'a>(v: &'a Value, steps: &[JStep], out: &mut Vec<Node<'a>>) {
    let Some((step, rest)) = steps.split_first() else {
        out.push(Node::Json(v));
        return;
    };
    match step {
        JStep::Key(k) => {
            if let Some(child) = v.get(k.as_str()) {
                json_select(child, rest, out);
            }
        }
        JStep::Index(i) => {
            if let Some(child) = v.as_array().and_then(|a| a.get(*i)) {
                json_select(child, rest, out);
            }
        }
        JStep::All => match v {
            Value::Array(items) => items.iter().for_each(|c| json_select(c, rest, out)),
            Value::Object(map) => map.values().for_each(|c| json_select(c, rest, out)),
            _ => {}
        },
    }
}

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-'
}

fn parse_json(mut s: &str) -> Result<Vec<JStep>, String> {
    let mut steps = Vec::new();
    while !s.is_empty() {
        if let Some(rest) = s.strip_prefix('.') {
            if let Some(rest) = rest.strip_prefix('*') {
                steps.push(JStep::All);
                s = rest;
                continue;
            }
            let end = rest.find(|c: char| !is_name_char(c)).unwrap_or(rest.len());
            if end == 0 {
                return Err("a `.` must be followed by a field name".into());
            }
            steps.push(JStep::Key(rest[..end].to_string()));
            s = &rest[end..];
        } else if let Some(rest) = s.strip_prefix('[') {
            let close = rest.find(']').ok_or("`[` is not closed by `]`")?;
            let inner = rest[..close].trim();
            if inner == "*" {
                steps.push(JStep::All);
            } else if let Some(q) = inner.strip_prefix('\'').and_then(|q| q.strip_suffix('\'')) {
                steps.push(JStep::Key(q.to_string()));
            } else if let Some(q) = inner.strip_prefix('"').and_then(|q| q.strip_suffix('"')) {
                steps.push(JStep::Key(q.to_string()));
            } else {
                let i: usize =
                    inner.parse().map_err(|_| format!("`[{inner}]` is neither an index, `*` nor a quoted key"))?;
                steps.push(JStep::Index(i));
            }
            s = &rest[close + 1..];
        } else {
            return Err(format!(
                "unexpected `{}`; steps are `.name`, `[n]`, `[*]` or `['name']`",
                s.chars().next().unwrap_or(' ')
            ));
        }
    }
    Ok(steps)
}

fn parse_xml(mut s: &str) -> Result<Vec<XStep>, String> {
    let mut steps = Vec::new();
    while !s.is_empty() {
        let Some(rest) = s.strip_prefix('/') else {
            return Err(format!("unexpected `{}`; steps are separated by `/`", s.chars().next().unwrap_or(' ')));
        };
        if matches!(steps.last(), Some(XStep::Attr(_))) {
            return Err("an attribute step `@name` must be the last step".into());
        }
        if let Some(rest) = rest.strip_prefix('@') {
            let end = rest.find(|c: char| !(is_name_char(c) || c == ':' || c == '.')).unwrap_or(rest.len());
            if end == 0 {
                return Err("`@` must be followed by an attribute name".into());
            }
            steps.push(XStep::Attr(rest[..end].to_string()));
            s = &rest[end..];
            continue;
        }
        let (name, mut rest) = if let Some(r) = rest.strip_prefix('*') {
            (None, r)
        } else {
            let end = rest.find(|c: char| !(is_name_char(c) || c == ':' || c == '.')).unwrap_or(rest.len());
            if end == 0 {
                return Err("a `/` must be followed by an element name, `*` or `@attribute`".into());
            }
            (Some(rest[..end].to_string()), &rest[end..])
        };
        let mut filters = Vec::new();
        while let Some(r) = rest.strip_prefix('[') {
            let close = r.find(']').ok_or("`[` is not closed by `]`")?;
            let inner = r[..close].trim();
            if let Some(cond) = inner.strip_prefix('@') {
                let (k, v) = cond.split_once('=').ok_or("a filter is `[@attr='value']`")?;
                let v = v.trim();
                let v = v
                    .strip_prefix('\'')
                    .and_then(|v| v.strip_suffix('\''))
                    .or_else(|| v.strip_prefix('"').and_then(|v| v.strip_suffix('"')))
                    .ok_or("the value in `[@attr='value']` must be quoted")?;
                filters.push(XFilter::AttrEq(k.trim().to_string(), v.to_string()));
            } else {
                let n: usize =
                    inner.parse().map_err(|_| format!("`[{inner}]` is neither a position nor `[@attr='value']`"))?;
                if n == 0 {
                    return Err("positions count from 1, as in XPath".into());
                }
                filters.push(XFilter::Position(n));
            }
            rest = &r[close + 1..];
        }
        steps.push(XStep::Child { name, filters });
        s = rest;
    }
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_paths() {
        let doc = Doc::Json(serde_json::json!({"a": {"b": [1, {"c": "x"}]}, "odd key": 2}));
        let p = Path::parse("$.a.b[1].c", Syntax::Json).unwrap();
        assert!(matches!(p.first(&doc, None), Some(Node::Json(Value::String(s))) if s == "x"));
        let mut out = Vec::new();
        Path::parse("$.a.b[*]", Syntax::Json).unwrap().select(&doc, None, &mut out);
        assert_eq!(out.len(), 2);
        assert!(Path::parse("$['odd key']", Syntax::Json).unwrap().first(&doc, None).is_some());
        assert!(Path::parse("$.a[", Syntax::Json).is_err());
        assert!(Path::parse("orderNo", Syntax::Json).is_err());
        assert!(Path::parse("$.a..b", Syntax::Json).is_err());
    }

    #[test]
    fn xml_paths() {
        let root =
            super::super::doc::parse_xml("<Case seq=\"3\"><P role=\"a\"><N>x</N></P><P role=\"b\"><N>y</N></P></Case>")
                .unwrap();
        let doc = Doc::Xml(root);
        let text = |p: &str| match Path::parse(p, Syntax::Xml).unwrap().first(&doc, None) {
            Some(Node::Xml(e)) => e.text.clone(),
            Some(Node::Attr(a)) => a.to_string(),
            _ => "-".into(),
        };
        assert_eq!(text("/Case/@seq"), "3");
        assert_eq!(text("/Case/P[@role='b']/N"), "y");
        assert_eq!(text("/Case/P[2]/N"), "y");
        assert_eq!(text("/Other/P/N"), "-");
        assert_eq!(text("/*/P[1]/@role"), "a");
        assert!(Path::parse("/Case/@a/b", Syntax::Xml).is_err());
        assert!(Path::parse("Case", Syntax::Xml).is_err());
        assert!(Path::parse("/Case/P[0]", Syntax::Xml).is_err());
    }
}
