//! Reading a WebDAV `207 Multi-Status` body the way a client does: by namespace and
//! local name, whatever prefixes the server chose.

use xmltree::{Element, XMLNode};

/// The WebDAV namespace.
pub const DAV_NS: &str = "DAV:";
/// The ownCloud namespace (`oc:fileid`, `oc:checksums`, ...).
pub const OC_NS: &str = "http://owncloud.org/ns";
/// The namespace of the properties Windows Explorer sets (`Win32LastModifiedTime`, ...).
pub const MS_NS: &str = "urn:schemas-microsoft-com:";

/// One `<D:response>` of a multistatus body.
#[derive(Debug, Clone)]
pub struct PropResponse {
    /// The `href`, percent-decoded.
    pub href: String,
    /// The response-level status, when the server sent one instead of propstats.
    pub status: Option<u16>,
    props: Vec<Prop>,
}

#[derive(Debug, Clone)]
struct Prop {
    status: u16,
    element: Element,
}

impl PropResponse {
    /// The text of a property the server reported with status 200, if any.
    pub fn prop(&self, namespace: &str, name: &str) -> Option<String> {
        self.found(namespace, name)
            .map(|prop| text_of(&prop.element))
    }

    /// The status the server gave for a property, if the property was mentioned.
    pub fn prop_status(&self, namespace: &str, name: &str) -> Option<u16> {
        self.props
            .iter()
            .find(|prop| prop.element.matches((name, namespace)))
            .map(|prop| prop.status)
    }

    /// Whether `resourcetype` contains `<D:collection/>`.
    pub fn is_collection(&self) -> bool {
        self.found(DAV_NS, "resourcetype")
            .is_some_and(|prop| prop.element.get_child(("collection", DAV_NS)).is_some())
    }

    /// The statuses of every property, to check that none failed.
    pub fn prop_statuses(&self) -> Vec<(String, u16)> {
        self.props
            .iter()
            .map(|prop| (prop.element.name.clone(), prop.status))
            .collect()
    }

    fn found(&self, namespace: &str, name: &str) -> Option<&Prop> {
        self.props
            .iter()
            .find(|prop| prop.status == 200 && prop.element.matches((name, namespace)))
    }
}

/// Parses a multistatus body, panicking with the body if it is not one.
pub fn multistatus(body: &str) -> Vec<PropResponse> {
    let root = Element::parse(body.as_bytes())
        .unwrap_or_else(|err| panic!("multistatus body is not XML ({err}):\n{body}"));
    assert!(
        root.matches(("multistatus", DAV_NS)),
        "expected a DAV:multistatus root element, got <{}>:\n{body}",
        root.name
    );

    children(&root, "response")
        .map(|response| parse_response(response, body))
        .collect()
}

fn parse_response(response: &Element, body: &str) -> PropResponse {
    let href = response
        .get_child(("href", DAV_NS))
        .map(text_of)
        .unwrap_or_else(|| panic!("a response without href:\n{body}"));
    let status = response
        .get_child(("status", DAV_NS))
        .map(|s| parse_status(&text_of(s)));

    let mut props = Vec::new();
    for propstat in children(response, "propstat") {
        let status = propstat
            .get_child(("status", DAV_NS))
            .map(|s| parse_status(&text_of(s)))
            .unwrap_or_else(|| panic!("a propstat without status:\n{body}"));
        let Some(prop) = propstat.get_child(("prop", DAV_NS)) else {
            continue;
        };
        for element in prop.children.iter().filter_map(XMLNode::as_element) {
            props.push(Prop {
                status,
                element: element.clone(),
            });
        }
    }

    PropResponse {
        href: percent_decode(&href),
        status,
        props,
    }
}

fn children<'a>(parent: &'a Element, name: &'a str) -> impl Iterator<Item = &'a Element> {
    parent
        .children
        .iter()
        .filter_map(XMLNode::as_element)
        .filter(move |child| child.matches((name, DAV_NS)))
}

/// The text of a property: its own text, or else the text of its elements, space-separated
/// (`<oc:checksums><oc:checksum>SHA1:…</oc:checksum></oc:checksums>`).
fn text_of(element: &Element) -> String {
    if let Some(text) = element.get_text() {
        return text.trim().to_owned();
    }
    let parts: Vec<String> = element
        .children
        .iter()
        .filter_map(XMLNode::as_element)
        .map(text_of)
        .filter(|t| !t.is_empty())
        .collect();
    parts.join(" ")
}

/// `HTTP/1.1 200 OK` → 200.
fn parse_status(line: &str) -> u16 {
    line.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not a status line: {line:?}"))
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| text.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                decoded.push(byte);
                i += 3;
            }
            None => {
                decoded.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<d:multistatus xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns">
  <d:response>
    <d:href>/dav/caf%C3%A9/</d:href>
    <d:propstat>
      <d:prop><d:resourcetype><d:collection/></d:resourcetype><oc:fileid>42</oc:fileid></d:prop>
      <d:status>HTTP/1.1 200 OK</d:status>
    </d:propstat>
    <d:propstat>
      <d:prop><d:getcontentlength/></d:prop>
      <d:status>HTTP/1.1 404 Not Found</d:status>
    </d:propstat>
  </d:response>
</d:multistatus>"#;

    #[test]
    fn reads_properties_by_namespace_and_status() {
        let responses = multistatus(BODY);

        assert_eq!(responses.len(), 1);
        assert_eq!(responses[0].href, "/dav/café/");
        assert!(responses[0].is_collection());
        assert_eq!(responses[0].prop(OC_NS, "fileid").as_deref(), Some("42"));
        assert_eq!(responses[0].prop(DAV_NS, "getcontentlength"), None);
        assert_eq!(
            responses[0].prop_status(DAV_NS, "getcontentlength"),
            Some(404)
        );
    }
}
