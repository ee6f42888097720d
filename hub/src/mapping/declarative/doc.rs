//! The parsed body of a record: a JSON value or a small XML element tree.
//!
//! XML is read with quick-xml's low-level reader. A DOCTYPE is refused
//! outright (valid agency documents never have one) and entity references
//! other than the five predefined ones and character references are
//! refused too: nothing is ever expanded or fetched.

use std::borrow::Cow;

use quick_xml::events::Event;

/// How deep XML elements may nest; deeper input is refused, not recursed into.
const MAX_XML_DEPTH: usize = 64;

#[derive(Debug)]
pub(crate) enum Doc {
    Json(serde_json::Value),
    Xml(Element),
}

#[derive(Debug, Default)]
pub(crate) struct Element {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Element>,
    /// The element's own text (its text and CDATA children, joined).
    pub text: String,
}

impl Element {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// The encoding an XML declaration names (`<?xml version="1.0" encoding="GB18030"?>`), if any.
pub(crate) fn xml_declared_encoding(bytes: &[u8]) -> Option<String> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if !bytes.starts_with(b"<?xml") {
        return None;
    }
    let end = bytes.windows(2).take(200).position(|w| w == b"?>")?;
    let decl = std::str::from_utf8(&bytes[..end]).ok()?;
    let at = decl.find("encoding")?;
    let rest = decl[at + "encoding".len()..].trim_start().strip_prefix('=')?.trim_start();
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let value = &rest[1..];
    let close = value.find(quote)?;
    Some(value[..close].to_string())
}

/// Parses an XML document into its root element.
pub(crate) fn parse_xml(text: &str) -> Result<Element, String> {
    let mut reader = quick_xml::Reader::from_str(text);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        let event = match reader.read_event() {
            Ok(e) => e,
            Err(e) => {
                return Err(format!(
                    "the XML is not well-formed near byte {}: {}",
                    reader.error_position(),
                    e.to_string().chars().take(120).collect::<String>()
                ));
            }
        };
        match event {
            Event::DocType(_) => {
                return Err("the document has a DOCTYPE: DTDs and entity declarations are not allowed \
                            (they were not expanded)"
                    .to_string());
            }
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) => {}
            Event::Start(_) | Event::Empty(_) if root.is_some() && stack.is_empty() => {
                return Err("the document has more than one root element".to_string());
            }
            Event::Start(start) => {
                if stack.len() >= MAX_XML_DEPTH {
                    return Err(format!("elements nest deeper than {MAX_XML_DEPTH} levels"));
                }
                stack.push(element(&start)?);
            }
            Event::Empty(start) => {
                let el = element(&start)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::End(_) => {
                let Some(el) = stack.pop() else {
                    return Err("the document closes an element it never opened".to_string());
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::Text(t) => {
                let content = t.xml10_content();
                match stack.last_mut() {
                    Some(el) => el.text.push_str(&content),
                    None if content.trim().is_empty() => {}
                    None => return Err("the document has text outside its root element".to_string()),
                }
            }
            Event::CData(c) => match stack.last_mut() {
                Some(el) => el.text.push_str(&c.into_inner()),
                None => return Err("the document has CDATA outside its root element".to_string()),
            },
            Event::GeneralRef(r) => {
                let resolved: Cow<'_, str> = if r.is_char_ref() {
                    match r.resolve_char_ref() {
                        Ok(Some(c)) => Cow::Owned(c.to_string()),
                        _ => return Err(format!("the character reference `&{};` is not valid", short(&r))),
                    }
                } else {
                    match predefined_entity(&r) {
                        Some(s) => Cow::Borrowed(s),
                        None => {
                            return Err(format!(
                                "the document uses the entity `&{};`, which is not one of XML's predefined \
                                 entities (entities are never expanded)",
                                short(&r)
                            ));
                        }
                    }
                };
                match stack.last_mut() {
                    Some(el) => el.text.push_str(&resolved),
                    None => return Err("the document has an entity reference outside its root element".to_string()),
                }
            }
            Event::Eof => {
                if let Some(open) = stack.last() {
                    return Err(format!("the document ends inside <{}> (truncated?)", short(&open.name)));
                }
                return root.ok_or_else(|| "the document has no root element".to_string());
            }
        }
    }
}

fn predefined_entity(name: &str) -> Option<&'static str> {
    Some(match name {
        "lt" => "<",
        "gt" => ">",
        "amp" => "&",
        "apos" => "'",
        "quot" => "\"",
        _ => return None,
    })
}

fn element(start: &quick_xml::events::BytesStart<'_>) -> Result<Element, String> {
    let name = start.name().into_inner().to_string();
    let mut attrs = Vec::new();
    for attr in start.attributes() {
        let attr = attr
            .map_err(|e| format!("an attribute of <{}> is not well-formed: {}", short(&name), short(&e.to_string())))?;
        let key = attr.key.into_inner().to_string();
        let value = attr.normalized_value(quick_xml::XmlVersion::Implicit1_0).map_err(|_| {
            format!(
                "attribute `{}` of <{}> uses an entity that is not predefined (entities are never expanded)",
                short(&key),
                short(&name)
            )
        })?;
        attrs.push((key, value.into_owned()));
    }
    Ok(Element { name, attrs, children: Vec::new(), text: String::new() })
}

/// At most 40 characters of something quoted in a message.
pub(crate) fn short(s: &str) -> String {
    let mut out: String = s.chars().take(40).collect();
    if s.chars().nth(40).is_some() {
        out.push('…');
    }
    out
}
