//! Streaming parser for one feed page (or one dropped file): splits the
//! `<MediationFeed>` into standalone UTF-8 `<Case>` documents, one at a time,
//! with bounded memory. Never expands entities; rejects DOCTYPE.

use std::io::{self, BufRead, BufReader, Read};

use encoding_rs::{DecoderResult, Encoding, UTF_8};
use quick_xml::Reader;
use quick_xml::Writer;
use quick_xml::events::{BytesStart, Event};

/// The root element's attributes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Header {
    pub court: Option<String>,
    pub next: Option<String>,
    pub more: bool,
}

/// One `<Case>` re-serialized as a standalone UTF-8 document.
#[derive(Debug)]
pub(crate) struct CaseItem {
    pub xml: Vec<u8>,
    pub seq: Option<String>,
    /// Set when the case was too large to keep whole; `xml` then holds only
    /// its beginning and the case is a defect.
    pub oversized: Option<Oversized>,
}

/// How a case was too large.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Oversized {
    /// The whole case was read; it has this many bytes.
    Case { size: usize },
    /// One text node, tag (with its attributes), comment or CDATA section in
    /// it was larger than the limit: the rest of the case was skipped unread
    /// up to its `</Case>`.
    Part,
}

impl Oversized {
    /// The defect reason, for a person.
    pub(crate) fn reason(self, limit: usize) -> String {
        match self {
            Oversized::Case { size } => {
                format!("the case is {size} bytes, more than the limit of {limit} bytes; only its beginning is kept")
            }
            Oversized::Part => format!(
                "a text, tag or comment in the case is larger than the limit of {limit} bytes; \
                 only the case's beginning is kept"
            ),
        }
    }
}

#[derive(Debug)]
pub(crate) enum Item {
    Header(Header),
    Case(CaseItem),
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ParseError {
    /// Bad input: a readable reason (no payload content in it).
    Defect(String),
    /// The consumer stopped listening.
    Aborted,
}

pub(crate) const DOCTYPE_REASON: &str = "the page declares a DOCTYPE; entities are never expanded";
pub(crate) const XML_DECL: &str = r#"<?xml version="1.0" encoding="UTF-8"?>"#;
const ROOT: &str = "MediationFeed";
const CASE: &str = "Case";

fn defect(reason: impl Into<String>) -> ParseError {
    ParseError::Defect(reason.into())
}

struct CaseBuf {
    writer: Writer<Vec<u8>>,
    seq: Option<String>,
    /// Bytes the case would take if kept whole.
    size: usize,
    oversized: bool,
}

impl CaseBuf {
    fn write(&mut self, event: Event<'_>, raw_len: usize, max: usize) -> Result<(), ParseError> {
        self.size += raw_len;
        if self.oversized {
            return Ok(());
        }
        self.writer.write_event(event).map_err(|e| defect(format!("cannot re-serialize a case: {e}")))?;
        if self.writer.get_ref().len() > max {
            self.oversized = true;
            let buf = self.writer.get_mut();
            let mut cut = max;
            while cut > 0 && !is_char_boundary(buf, cut) {
                cut -= 1;
            }
            buf.truncate(cut);
            buf.shrink_to_fit();
        }
        Ok(())
    }
}

fn is_char_boundary(buf: &[u8], i: usize) -> bool {
    i >= buf.len() || (buf[i] as i8) >= -0x40
}

fn attr(e: &BytesStart<'_>, name: &str) -> Result<Option<String>, ParseError> {
    for a in e.attributes() {
        let a = a.map_err(|err| defect(format!("malformed attribute on <{}>: {err}", e.name().as_ref())))?;
        if a.key.as_ref() == name {
            let v = a
                .normalized_value(quick_xml::XmlVersion::default())
                .map_err(|err| defect(format!("malformed attribute value: {err}")))?;
            return Ok(Some(v.into_owned()));
        }
    }
    Ok(None)
}

fn check_attributes(e: &BytesStart<'_>) -> Result<(), ParseError> {
    for a in e.attributes() {
        a.map_err(|err| defect(format!("malformed attribute on <{}>: {err}", e.name().as_ref())))?;
    }
    Ok(())
}

fn header(e: &BytesStart<'_>) -> Result<Header, ParseError> {
    let name = e.name();
    if name.as_ref() != ROOT {
        let shown: String = name.as_ref().chars().take(40).collect();
        return Err(defect(format!("the root element is <{shown}>, not <{ROOT}>")));
    }
    check_attributes(e)?;
    let next = attr(e, "next")?.filter(|n| !n.is_empty());
    if next.is_none() {
        return Err(defect("the page has no `next` cursor on its root element"));
    }
    let more = matches!(attr(e, "more")?.as_deref().map(str::trim), Some("true" | "1"));
    Ok(Header { court: attr(e, "court")?, next, more })
}

fn start_case(e: &BytesStart<'_>) -> Result<CaseBuf, ParseError> {
    check_attributes(e)?;
    let mut writer = Writer::new(Vec::with_capacity(4096));
    writer.get_mut().extend_from_slice(XML_DECL.as_bytes());
    Ok(CaseBuf { writer, seq: attr(e, "seq")?, size: XML_DECL.len(), oversized: false })
}

fn finish_case(c: CaseBuf) -> CaseItem {
    let oversized = c.oversized.then_some(Oversized::Case { size: c.size });
    CaseItem { xml: c.writer.into_inner(), seq: c.seq, oversized }
}

/// The reader under quick-xml: it refuses to hand out more than `limit`
/// bytes for one event, so that no text node, tag or comment is buffered
/// whole however large (quick-xml keeps an event in one buffer). The parser
/// calls [`Bounded::next_event`] after each event.
struct Bounded<R> {
    inner: R,
    limit: usize,
    since_event: usize,
    tripped: bool,
}

impl<R: BufRead> Bounded<R> {
    fn next_event(&mut self) {
        self.since_event = 0;
    }

    /// Skips the input, without keeping it, up to and including the next
    /// `</Case>` end tag (`</Case >` too); false at the end of the input.
    fn skip_past_case_end(&mut self) -> io::Result<bool> {
        const END: &[u8] = b"</Case";
        // How much of END matched; then, once it all did, whether only
        // white space followed so far.
        let mut matched = 0usize;
        loop {
            let available = match self.inner.fill_buf() {
                Ok([]) => return Ok(false),
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            for (i, &b) in available.iter().enumerate() {
                if matched == END.len() {
                    if b == b'>' {
                        self.inner.consume(i + 1);
                        return Ok(true);
                    }
                    if b.is_ascii_whitespace() {
                        continue;
                    }
                    matched = 0;
                }
                if b == END[matched] {
                    matched += 1;
                } else {
                    matched = usize::from(b == b'<');
                }
            }
            let n = available.len();
            self.inner.consume(n);
        }
    }
}

impl<R: BufRead> Read for Bounded<R> {
    fn read(&mut self, dst: &mut [u8]) -> io::Result<usize> {
        let src = self.fill_buf()?;
        let n = src.len().min(dst.len());
        dst[..n].copy_from_slice(&src[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Bounded<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.since_event > self.limit {
            self.tripped = true;
            return Err(io::Error::other(format!("an XML token is larger than {} bytes", self.limit)));
        }
        self.inner.fill_buf()
    }

    fn consume(&mut self, n: usize) {
        self.since_event = self.since_event.saturating_add(n);
        self.inner.consume(n);
    }
}

type PageReader<R> = Reader<Bounded<BufReader<Decoded<R>>>>;

/// A quick-xml reader over `input`. `resumed`: it starts inside the root
/// element, after a skipped case, so the root's end tag has no start tag
/// for quick-xml to match (the parser checks that one itself).
fn page_reader<R: Read>(input: Bounded<BufReader<Decoded<R>>>, resumed: bool) -> PageReader<R> {
    let mut reader = Reader::from_reader(input);
    let cfg = reader.config_mut();
    cfg.check_end_names = true;
    cfg.expand_empty_elements = false;
    cfg.allow_unmatched_ends = resumed;
    cfg.allow_dangling_amp = false;
    cfg.trim_text_start = false;
    cfg.trim_text_end = false;
    reader
}

/// Parses a whole page from `raw` (in its declared encoding), calling `emit`
/// for the header and then for each case as soon as it closes. `emit`
/// returns false to stop. Memory: one case (at most `max_case_bytes`), one
/// XML event (at most about as much: a larger text, tag or comment cuts its
/// case short, and the page goes on after the case's end tag; outside a
/// case it makes the page a defect) plus the reader's buffers.
pub(crate) fn parse_page<R: Read>(
    raw: R,
    max_case_bytes: usize,
    emit: &mut dyn FnMut(Item) -> bool,
) -> Result<(), ParseError> {
    let decoded = Decoded::new(raw)?;
    let input = Bounded {
        inner: BufReader::with_capacity(64 * 1024, decoded),
        limit: max_case_bytes,
        since_event: 0,
        tripped: false,
    };
    let mut reader = page_reader(input, false);
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut depth = 0usize;
    let mut root_seen = false;
    let mut root_closed = false;
    let mut case: Option<CaseBuf> = None;
    loop {
        reader.get_mut().next_event();
        let event = match reader.read_event_into(&mut buf) {
            Ok(ev) => ev,
            Err(_) if reader.get_ref().tripped => {
                let Some(c) = case.take() else {
                    return Err(defect(format!(
                        "a text, tag or comment outside any case is larger than the limit of {max_case_bytes} bytes"
                    )));
                };
                // Skip the rest of the case unread and go on after it with a
                // fresh reader, one level inside the root.
                let mut input = reader.into_inner();
                input.tripped = false;
                match input.skip_past_case_end() {
                    Ok(true) => {}
                    Ok(false) => {
                        return Err(defect("the page ends in the middle of a case (truncated)"));
                    }
                    Err(e) => return Err(defect(format!("cannot read the page: {e}"))),
                }
                reader = page_reader(input, true);
                depth = 1;
                let mut item = finish_case(c);
                item.oversized = Some(Oversized::Part);
                if !emit(Item::Case(item)) {
                    return Err(ParseError::Aborted);
                }
                buf.clear();
                buf.shrink_to(64 * 1024);
                continue;
            }
            Err(quick_xml::Error::Syntax(e)) if e != quick_xml::errors::SyntaxError::InvalidBangMarkup => {
                return Err(defect(format!("the page ends in the middle of markup (truncated): {e}")));
            }
            Err(e) => {
                return Err(defect(format!("malformed XML near byte {}: {e}", reader.error_position())));
            }
        };
        let raw_len = event_len(&event);
        match event {
            Event::DocType(_) => return Err(defect(DOCTYPE_REASON)),
            Event::Decl(_) => {
                if root_seen {
                    return Err(defect("an XML declaration appears inside the document"));
                }
            }
            Event::Start(e) => {
                if root_closed {
                    return Err(defect("there is content after the root element"));
                }
                depth += 1;
                if depth == 1 {
                    root_seen = true;
                    if !emit(Item::Header(header(&e)?)) {
                        return Err(ParseError::Aborted);
                    }
                } else if let Some(c) = case.as_mut() {
                    check_attributes(&e)?;
                    c.write(Event::Start(e), raw_len, max_case_bytes)?;
                } else if depth == 2 && e.name().as_ref() == CASE {
                    let mut c = start_case(&e)?;
                    c.write(Event::Start(e), raw_len, max_case_bytes)?;
                    case = Some(c);
                } else {
                    check_attributes(&e)?;
                }
            }
            Event::Empty(e) => {
                if root_closed {
                    return Err(defect("there is content after the root element"));
                }
                if depth == 0 {
                    root_seen = true;
                    root_closed = true;
                    if !emit(Item::Header(header(&e)?)) {
                        return Err(ParseError::Aborted);
                    }
                } else if let Some(c) = case.as_mut() {
                    check_attributes(&e)?;
                    c.write(Event::Empty(e), raw_len, max_case_bytes)?;
                } else if depth == 1 && e.name().as_ref() == CASE {
                    let mut c = start_case(&e)?;
                    c.write(Event::Empty(e), raw_len, max_case_bytes)?;
                    if !emit(Item::Case(finish_case(c))) {
                        return Err(ParseError::Aborted);
                    }
                } else {
                    check_attributes(&e)?;
                }
            }
            Event::End(e) => {
                if depth == 0 {
                    return Err(defect("an end tag has no matching start tag"));
                }
                if depth == 1 && e.name().as_ref() != ROOT {
                    // Only after a skipped case: quick-xml checks the others.
                    return Err(defect(format!("the root element <{ROOT}> is closed by another end tag")));
                }
                if let Some(c) = case.as_mut() {
                    c.write(Event::End(e), raw_len, max_case_bytes)?;
                    if depth == 2 {
                        let c = case.take().expect("case in progress");
                        if !emit(Item::Case(finish_case(c))) {
                            return Err(ParseError::Aborted);
                        }
                    }
                }
                depth -= 1;
                if depth == 0 {
                    root_closed = true;
                }
            }
            Event::Text(t) => {
                if let Some(c) = case.as_mut() {
                    c.write(Event::Text(t), raw_len, max_case_bytes)?;
                } else if depth == 0 && !t.as_ref().trim().is_empty() {
                    return Err(defect("there is text outside the root element"));
                }
            }
            Event::GeneralRef(r) => {
                if let Some(c) = case.as_mut() {
                    c.write(Event::GeneralRef(r), raw_len, max_case_bytes)?;
                } else if depth == 0 {
                    return Err(defect("there is an entity reference outside the root element"));
                }
            }
            Event::CData(t) => {
                if let Some(c) = case.as_mut() {
                    c.write(Event::CData(t), raw_len, max_case_bytes)?;
                } else if depth == 0 {
                    return Err(defect("there is CDATA outside the root element"));
                }
            }
            ev @ (Event::Comment(_) | Event::PI(_)) => {
                if let Some(c) = case.as_mut() {
                    c.write(ev, raw_len, max_case_bytes)?;
                }
            }
            Event::Eof => {
                if !root_seen {
                    return Err(defect("the page has no root element (empty or not XML)"));
                }
                if !root_closed {
                    return Err(defect("the page ends before its root element is closed (truncated)"));
                }
                return Ok(());
            }
        }
        buf.clear();
    }
}

/// The `next` cursor on the root element of a page, read from its
/// beginning; for an operator moving past a page that cannot be parsed as a
/// whole (`hub court skip`). `None` when the beginning is not readable
/// either, or names no `next`.
pub fn page_next(raw: &[u8]) -> Option<String> {
    let decoded = Decoded::new(raw).ok()?;
    let input = Bounded { inner: BufReader::new(decoded), limit: 64 * 1024, since_event: 0, tripped: false };
    let mut reader = Reader::from_reader(input);
    let mut buf = Vec::new();
    loop {
        reader.get_mut().next_event();
        match reader.read_event_into(&mut buf).ok()? {
            Event::Start(e) | Event::Empty(e) => {
                return if e.name().as_ref() == ROOT { attr(&e, "next").ok()?.filter(|n| !n.is_empty()) } else { None };
            }
            Event::Eof => return None,
            _ => buf.clear(),
        }
    }
}

fn event_len(event: &Event<'_>) -> usize {
    match event {
        Event::Start(e) | Event::Empty(e) => e.len() + 3,
        Event::End(e) => e.len() + 3,
        Event::Text(t) | Event::Comment(t) | Event::DocType(t) => t.len() + 7,
        Event::CData(t) => t.len() + 12,
        Event::GeneralRef(r) => r.len() + 2,
        Event::PI(p) => p.len() + 4,
        Event::Decl(d) => d.len() + 4,
        Event::Eof => 0,
    }
}

/// Reads the raw bytes and yields UTF-8: the encoding comes from a BOM or the
/// XML declaration (UTF-8 when neither says otherwise). Undecodable bytes are
/// an `InvalidData` error, never silently replaced.
pub(crate) struct Decoded<R> {
    inner: R,
    decoder: Option<encoding_rs::Decoder>,
    encoding: &'static Encoding,
    inbuf: Vec<u8>,
    in_pos: usize,
    in_len: usize,
    in_eof: bool,
    out: Vec<u8>,
    out_pos: usize,
    out_len: usize,
    finished: bool,
}

const SNIFF: usize = 1024;

impl<R: Read> Decoded<R> {
    pub(crate) fn new(mut inner: R) -> Result<Self, ParseError> {
        let mut inbuf = vec![0u8; 16 * 1024];
        let mut len = 0;
        let mut in_eof = false;
        while len < SNIFF {
            match inner.read(&mut inbuf[len..SNIFF]) {
                Ok(0) => {
                    in_eof = true;
                    break;
                }
                Ok(n) => {
                    len += n;
                    if inbuf[..len].windows(2).any(|w| w == b"?>") {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(defect(format!("cannot read the page: {e}"))),
            }
        }
        let head = &inbuf[..len];
        let (encoding, skip) = match Encoding::for_bom(head) {
            Some((enc, bom)) => (enc, bom),
            None => (declared_encoding(head)?.unwrap_or(UTF_8), 0),
        };
        if !encoding.is_ascii_compatible() {
            return Err(defect(format!("unsupported encoding {}", encoding.name())));
        }
        let decoder = (encoding != UTF_8).then(|| encoding.new_decoder_without_bom_handling());
        Ok(Decoded {
            inner,
            decoder,
            encoding,
            inbuf,
            in_pos: skip,
            in_len: len,
            in_eof,
            out: vec![0u8; 32 * 1024],
            out_pos: 0,
            out_len: 0,
            finished: false,
        })
    }
}

/// The `encoding` of an XML declaration at the start of `head`, if any.
fn declared_encoding(head: &[u8]) -> Result<Option<&'static Encoding>, ParseError> {
    if !head.starts_with(b"<?xml") {
        return Ok(None);
    }
    let Some(end) = head.windows(2).position(|w| w == b"?>") else {
        return Ok(None);
    };
    let decl = String::from_utf8_lossy(&head[..end]);
    let Some(at) = decl.find("encoding") else { return Ok(None) };
    let rest = decl[at + "encoding".len()..].trim_start();
    let Some(rest) = rest.strip_prefix('=') else { return Ok(None) };
    let rest = rest.trim_start();
    let Some(quote) = rest.chars().next().filter(|c| *c == '"' || *c == '\'') else { return Ok(None) };
    let value = &rest[1..];
    let label = value.split(quote).next().unwrap_or("");
    match Encoding::for_label(label.trim().as_bytes()) {
        Some(enc) => Ok(Some(enc)),
        None => {
            let shown: String = label.chars().take(40).collect();
            Err(defect(format!("unsupported encoding `{shown}` in the XML declaration")))
        }
    }
}

impl<R: Read> Read for Decoded<R> {
    fn read(&mut self, dst: &mut [u8]) -> io::Result<usize> {
        if dst.is_empty() {
            return Ok(0);
        }
        let Some(decoder) = self.decoder.as_mut() else {
            // UTF-8: pass through (quick-xml validates it).
            if self.in_pos < self.in_len {
                let n = (self.in_len - self.in_pos).min(dst.len());
                dst[..n].copy_from_slice(&self.inbuf[self.in_pos..self.in_pos + n]);
                self.in_pos += n;
                return Ok(n);
            }
            if self.in_eof {
                return Ok(0);
            }
            return self.inner.read(dst);
        };
        loop {
            if self.out_pos < self.out_len {
                let n = (self.out_len - self.out_pos).min(dst.len());
                dst[..n].copy_from_slice(&self.out[self.out_pos..self.out_pos + n]);
                self.out_pos += n;
                return Ok(n);
            }
            if self.finished {
                return Ok(0);
            }
            if self.in_pos == self.in_len && !self.in_eof {
                let n = self.inner.read(&mut self.inbuf)?;
                self.in_pos = 0;
                self.in_len = n;
                self.in_eof = n == 0;
            }
            let last = self.in_eof;
            let (result, read, written) =
                decoder.decode_to_utf8_without_replacement(&self.inbuf[self.in_pos..self.in_len], &mut self.out, last);
            self.in_pos += read;
            self.out_pos = 0;
            self.out_len = written;
            match result {
                DecoderResult::InputEmpty => self.finished = last,
                DecoderResult::OutputFull => {}
                DecoderResult::Malformed(_, _) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("the page is not valid {}", self.encoding.name()),
                    ));
                }
            }
        }
    }
}
