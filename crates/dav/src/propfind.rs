//! PROPFIND, answered from the index alone.
//!
//! dav-server's PROPFIND drops requested properties that do not exist instead of listing
//! them with a 404 status, and writes unquoted ETags; sync clients also ask for ownCloud
//! properties in bulk. This module answers the method itself: one query for a folder's
//! children, one for their dead properties, and no content ever opened.

use std::collections::HashMap;
use std::fmt::Write;
use std::io::Cursor;

use ruche_store::{DeadProp, LockRecord, Node, NodeId, Space, Store, StoreError, Timestamp};

use crate::href::href;
use crate::locks::covers;
use crate::props::OC_NS;

const DAV_NS: &str = "DAV:";
pub(crate) const NC_NS: &str = "http://nextcloud.org/ns";

/// A property name: namespace URI (empty for none) and local name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct PropName {
    ns: String,
    name: String,
}

impl PropName {
    fn new(ns: &str, name: &str) -> PropName {
        PropName {
            ns: ns.to_owned(),
            name: name.to_owned(),
        }
    }
}

/// What a PROPFIND body asks for.
#[derive(Debug, PartialEq)]
pub(crate) enum Request {
    AllProp,
    PropName,
    Props(Vec<PropName>),
}

/// The properties named in a `DAV:prop` element.
pub(crate) fn prop_names(prop: &xmltree::Element) -> Vec<PropName> {
    prop.children
        .iter()
        .filter_map(|n| n.as_element())
        .map(|e| PropName::new(e.namespace.as_deref().unwrap_or(""), &e.name))
        .collect()
}

/// Reads a PROPFIND body; an empty body means `allprop`.
pub(crate) fn parse(body: &[u8]) -> Result<Request, &'static str> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Request::AllProp);
    }
    let root = xmltree::Element::parse(Cursor::new(body)).map_err(|_| "malformed XML body")?;
    if root.name != "propfind" || root.namespace.as_deref() != Some(DAV_NS) {
        return Err("the body must be a DAV:propfind element");
    }
    let mut children = root.children.iter().filter_map(|n| n.as_element());
    let first = children.next().ok_or("empty DAV:propfind")?;
    if first.namespace.as_deref() != Some(DAV_NS) {
        return Err("unknown element in DAV:propfind");
    }
    match first.name.as_str() {
        "allprop" => Ok(Request::AllProp),
        "propname" => Ok(Request::PropName),
        "prop" => Ok(Request::Props(prop_names(first))),
        _ => Err("unknown element in DAV:propfind"),
    }
}

/// The live properties every resource shows under `allprop` and `propname`.
const ALLPROP_LIVE: &[&str] = &[
    "creationdate",
    "getcontentlength",
    "getcontenttype",
    "getetag",
    "getlastmodified",
    "resourcetype",
    "supportedlock",
    "lockdiscovery",
];

/// One resource of the answer.
pub(crate) struct Entry {
    pub(crate) node: Node,
    pub(crate) segments: Vec<String>,
}

/// Everything needed to describe the resources of one answer.
pub(crate) struct Context<'a> {
    pub(crate) store: &'a Store,
    pub(crate) prefix: &'a str,
    pub(crate) space: Space,
    pub(crate) locks: Vec<LockRecord>,
    pub(crate) dead: HashMap<NodeId, Vec<DeadProp>>,
    /// SHA-1 of the files, loaded only when `oc:checksums` is asked for.
    pub(crate) checksums: HashMap<NodeId, String>,
}

impl Request {
    /// Whether the answer needs the SHA-1 of the files.
    pub(crate) fn wants_checksums(&self) -> bool {
        match self {
            Request::Props(names) => names.iter().any(|p| p.ns == OC_NS && p.name == "checksums"),
            _ => false,
        }
    }
}

/// Loads the SHA-1 of the entries when the request asks for them, in two queries at most.
pub(crate) fn load_checksums(
    store: &Store,
    request: &Request,
    target: &Node,
    with_children: bool,
) -> Result<HashMap<NodeId, String>, StoreError> {
    if !request.wants_checksums() {
        return Ok(HashMap::new());
    }
    let mut checksums = if with_children {
        store.sha1_of_children(target.id)?
    } else {
        HashMap::new()
    };
    if let Some(sha1) = store.sha1_of(target)? {
        checksums.insert(target.id, sha1);
    }
    Ok(checksums)
}

/// Loads the dead properties of the entries, in two queries at most.
pub(crate) fn load_dead_props(
    store: &Store,
    target: &Node,
    with_children: bool,
) -> Result<HashMap<NodeId, Vec<DeadProp>>, StoreError> {
    let mut dead: HashMap<NodeId, Vec<DeadProp>> = HashMap::new();
    dead.insert(target.id, store.dead_props(target.id)?);
    if with_children {
        for (id, prop) in store.dead_props_of_children(target.id)? {
            dead.entry(id).or_default().push(prop);
        }
    }
    Ok(dead)
}

/// Writes the whole multistatus answer.
pub(crate) fn render(ctx: &Context<'_>, request: &Request, entries: &[Entry]) -> String {
    render_with(ctx, request, entries, "")
}

/// Writes a multistatus answer with `extra` (more responses, a sync token) at its end.
pub(crate) fn render_with(
    ctx: &Context<'_>,
    request: &Request,
    entries: &[Entry],
    extra: &str,
) -> String {
    let mut out = String::with_capacity(512 + entries.len() * 640);
    out.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
    let _ = write!(
        out,
        "<D:multistatus xmlns:D=\"DAV:\" xmlns:oc=\"{OC_NS}\" xmlns:nc=\"{NC_NS}\">"
    );
    for entry in entries {
        render_entry(ctx, request, entry, &mut out);
    }
    out.push_str(extra);
    out.push_str("</D:multistatus>\n");
    out
}

fn render_entry(ctx: &Context<'_>, request: &Request, entry: &Entry, out: &mut String) {
    let dead = ctx
        .dead
        .get(&entry.node.id)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let _ = write!(
        out,
        "<D:response><D:href>{}</D:href>",
        escape(&href(ctx.prefix, &entry.segments, entry.node.is_dir))
    );
    let mut found = String::new();
    let mut missing = String::new();
    match request {
        Request::AllProp | Request::PropName => {
            let names_only = *request == Request::PropName;
            for name in ALLPROP_LIVE {
                let prop = PropName::new(DAV_NS, name);
                if let Some(value) = live_value(ctx, entry, &prop) {
                    let value = if names_only { String::new() } else { value };
                    element(&mut found, &prop, &value);
                }
            }
            for prop in dead {
                if names_only {
                    element(&mut found, &PropName::new(&prop.namespace, &prop.name), "");
                } else {
                    found.push_str(stored_element(&prop.xml));
                }
            }
        }
        Request::Props(names) => {
            for prop in names {
                if let Some(value) = live_value(ctx, entry, prop) {
                    element(&mut found, prop, &value);
                } else if let Some(stored) = dead
                    .iter()
                    .find(|d| d.namespace == prop.ns && d.name == prop.name)
                {
                    found.push_str(stored_element(&stored.xml));
                } else {
                    element(&mut missing, prop, "");
                }
            }
        }
    }
    propstat(out, &found, "200 OK");
    propstat(out, &missing, "404 Not Found");
    out.push_str("</D:response>");
}

fn propstat(out: &mut String, props: &str, status: &str) {
    if !props.is_empty() {
        let _ = write!(
            out,
            "<D:propstat><D:prop>{props}</D:prop><D:status>HTTP/1.1 {status}</D:status></D:propstat>"
        );
    }
}

/// Writes `<prefix:name>value</prefix:name>`, declaring namespaces other than the usual ones.
fn element(out: &mut String, prop: &PropName, value: &str) {
    let (open, close) = match prop.ns.as_str() {
        DAV_NS => (format!("D:{}", prop.name), format!("D:{}", prop.name)),
        OC_NS => (format!("oc:{}", prop.name), format!("oc:{}", prop.name)),
        NC_NS => (format!("nc:{}", prop.name), format!("nc:{}", prop.name)),
        ns => (
            format!("{} xmlns=\"{}\"", prop.name, escape(ns)),
            prop.name.clone(),
        ),
    };
    if value.is_empty() {
        let _ = write!(out, "<{open}/>");
    } else {
        let _ = write!(out, "<{open}>{value}</{close}>");
    }
}

/// A dead property as stored: a complete element, minus any XML declaration.
fn stored_element(xml: &[u8]) -> &str {
    let text = std::str::from_utf8(xml).unwrap_or("");
    let text = text.trim_start();
    match text
        .strip_prefix("<?xml")
        .and_then(|rest| rest.split_once("?>"))
    {
        Some((_, element)) => element.trim_start(),
        None => text,
    }
}

/// The inner XML of a live property, or `None` when the resource has no such property.
fn live_value(ctx: &Context<'_>, entry: &Entry, prop: &PropName) -> Option<String> {
    let node = &entry.node;
    match prop.ns.as_str() {
        DAV_NS => dav_value(ctx, entry, &prop.name),
        OC_NS => match prop.name.as_str() {
            "size" if node.is_dir => ctx.store.tree_size(node.id).ok().map(|s| s.to_string()),
            "checksums" if !node.is_dir => ctx
                .checksums
                .get(&node.id)
                .map(|sha1| format!("<oc:checksum>SHA1:{sha1}</oc:checksum>")),
            name => crate::props::live_value(node, name).map(|v| escape(&v)),
        },
        _ => None,
    }
}

fn dav_value(ctx: &Context<'_>, entry: &Entry, name: &str) -> Option<String> {
    let node = &entry.node;
    let value = match name {
        "creationdate" => rfc3339(node.created),
        "getcontentlength" if !node.is_dir => node.size.to_string(),
        "getcontenttype" if node.is_dir => "httpd/unix-directory".to_owned(),
        "getcontenttype" => escape(
            mime_guess::from_path(&node.name)
                .first_or_octet_stream()
                .essence_str(),
        ),
        "getetag" => format!("\"{}\"", node.etag()),
        "getlastmodified" => httpdate::fmt_http_date(node.modified.into()),
        "resourcetype" if node.is_dir => "<D:collection/>".to_owned(),
        "resourcetype" => String::new(),
        "supportedlock" => SUPPORTED_LOCK.to_owned(),
        "lockdiscovery" => lock_discovery(ctx, entry),
        "sync-token" if node.is_dir => {
            escape(&crate::sync::token_uri(ctx.store.change_counter().ok()?))
        }
        "quota-used-bytes" if node.is_dir => ctx.space.used.to_string(),
        "quota-available-bytes" if node.is_dir => ctx.space.available()?.to_string(),
        _ => return None,
    };
    Some(value)
}

const SUPPORTED_LOCK: &str = "<D:lockentry><D:lockscope><D:exclusive/></D:lockscope>\
    <D:locktype><D:write/></D:locktype></D:lockentry>\
    <D:lockentry><D:lockscope><D:shared/></D:lockscope>\
    <D:locktype><D:write/></D:locktype></D:lockentry>";

fn lock_discovery(ctx: &Context<'_>, entry: &Entry) -> String {
    let key = entry.segments.join("/");
    let mut out = String::new();
    for lock in ctx.locks.iter().filter(|l| covers(l, &key)) {
        let scope = if lock.shared { "shared" } else { "exclusive" };
        let depth = if lock.deep { "infinity" } else { "0" };
        let timeout = match lock.expires {
            Some(expires) => {
                let left = (expires.0 - Timestamp::now().0).max(0) / 1_000_000_000;
                format!("Second-{left}")
            }
            None => "Infinite".to_owned(),
        };
        let owner = lock.owner_xml.as_deref().map(stored_element).unwrap_or("");
        let root: Vec<&str> = lock.path.split('/').filter(|s| !s.is_empty()).collect();
        let _ = write!(
            out,
            "<D:activelock><D:locktype><D:write/></D:locktype>\
             <D:lockscope><D:{scope}/></D:lockscope><D:depth>{depth}</D:depth>{owner}\
             <D:timeout>{timeout}</D:timeout>\
             <D:locktoken><D:href>{}</D:href></D:locktoken>\
             <D:lockroot><D:href>{}</D:href></D:lockroot></D:activelock>",
            escape(&lock.token),
            escape(&href(ctx.prefix, &root, false)),
        );
    }
    out
}

fn rfc3339(time: Timestamp) -> String {
    let secs = time.as_secs();
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Converts days since 1970-01-01 to a proleptic Gregorian date.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Escapes text for XML content and attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_body_asks_for_everything() {
        assert_eq!(parse(b""), Ok(Request::AllProp));
        assert_eq!(parse(b"  \n"), Ok(Request::AllProp));
    }

    #[test]
    fn named_properties_keep_their_namespaces() {
        let body =
            br#"<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns">
            <d:prop><d:getetag/><oc:fileid/><x xmlns=""/></d:prop></d:propfind>"#;
        let Ok(Request::Props(names)) = parse(body) else {
            panic!("not parsed")
        };
        assert_eq!(names[0], PropName::new("DAV:", "getetag"));
        assert_eq!(names[1], PropName::new(OC_NS, "fileid"));
        assert_eq!(names[2], PropName::new("", "x"));
    }

    #[test]
    fn bodies_that_are_not_propfind_are_refused() {
        assert!(parse(b"<a/>").is_err());
        assert!(parse(b"<D:propfind xmlns:D=\"DAV:\"><D:bogus/></D:propfind>").is_err());
        assert!(parse(b"not xml").is_err());
    }

    #[test]
    fn stored_elements_lose_their_declaration() {
        let xml = b"<?xml version=\"1.0\" encoding=\"utf-8\"?><a xmlns=\"urn:x\">1</a>";
        assert_eq!(stored_element(xml), "<a xmlns=\"urn:x\">1</a>");
    }

    #[test]
    fn creation_dates_are_rfc3339() {
        assert_eq!(rfc3339(Timestamp::from_secs(0)), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(Timestamp::from_secs(1_767_225_600)),
            "2026-01-01T00:00:00Z"
        );
        assert_eq!(
            rfc3339(Timestamp::from_secs(951_782_400)),
            "2000-02-29T00:00:00Z"
        );
    }
}
