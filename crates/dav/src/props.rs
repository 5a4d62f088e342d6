//! Properties beyond the ones dav-server computes: the ownCloud live properties that sync
//! clients read, dead properties kept in the store, and the Windows properties that set a
//! file's modification time.

use std::io::Cursor;

use dav_server::fs::{DavProp, FsError, FsResult};
use http::StatusCode;
use ruche_store::{DeadProp, Node, PropChange, Store};

use crate::fs::fs_error;

/// Namespace of the ownCloud/Nextcloud properties.
pub const OC_NS: &str = "http://owncloud.org/ns";
const MS_NS: &str = "urn:schemas-microsoft-com:";
/// Namespaces of properties dav-server keeps to itself in a PROPPATCH (it refuses to set
/// `DAV:getlastmodified` and pretends to set the Windows times) are moved under this
/// prefix, so that the request reaches the file system, which really applies them.
const REDIRECTED: &str = "urn:ruche:redirected:";

/// The properties desktop clients set and the drive honours.
const SETTABLE: &[(&str, &str)] = &[
    ("DAV:", "getlastmodified"),
    (MS_NS, "Win32LastModifiedTime"),
    (MS_NS, "Win32CreationTime"),
    (MS_NS, "Win32LastAccessTime"),
    (MS_NS, "Win32FileAttributes"),
];

/// Rewrites a PROPPATCH body so that the settable properties reach the file system.
/// Returns `None` when there is nothing to rewrite (or no XML at all, which dav-server
/// refuses by itself).
pub(crate) fn redirect_settable(body: &[u8]) -> Option<Vec<u8>> {
    let mut root = xmltree::Element::parse(Cursor::new(body)).ok()?;
    let mut found = false;
    for action in root.children.iter_mut().filter_map(|n| n.as_mut_element()) {
        if action.name != "set" {
            continue;
        }
        for prop in action
            .children
            .iter_mut()
            .filter_map(|n| n.as_mut_element())
        {
            for value in prop.children.iter_mut().filter_map(|n| n.as_mut_element()) {
                let namespace = value.namespace.clone().unwrap_or_default();
                if !SETTABLE.contains(&(namespace.as_str(), value.name.as_str())) {
                    continue;
                }
                let moved = format!("{REDIRECTED}{namespace}");
                let mut namespaces = value
                    .namespaces
                    .take()
                    .unwrap_or_else(xmltree::Namespace::empty);
                namespaces.put("R", moved.as_str());
                value.namespaces = Some(namespaces);
                value.namespace = Some(moved);
                value.prefix = Some("R".to_owned());
                found = true;
            }
        }
    }
    if !found {
        return None;
    }
    let mut out = Vec::with_capacity(body.len() + 64);
    root.write(&mut out).ok()?;
    Some(out)
}

/// The namespace a redirected property really has, if `prop` was redirected.
fn original_namespace(prop: &DavProp) -> Option<&str> {
    prop.namespace.as_deref()?.strip_prefix(REDIRECTED)
}

/// Whether a property sets the file's modification time.
fn sets_modified(namespace: &str, name: &str) -> bool {
    (namespace, name) == ("DAV:", "getlastmodified")
        || (namespace, name) == (MS_NS, "Win32LastModifiedTime")
}

/// The id sync clients know a node by (`oc:id`, `OC-FileId`): the file id, padded, then an
/// instance name, as Nextcloud writes it.
pub(crate) fn oc_id(node: &Node) -> String {
    format!("{:08}ruche", node.id.0)
}

/// The value of a live ownCloud property of `node`, if `name` is one.
pub(crate) fn live_value(node: &Node, name: &str) -> Option<String> {
    let value = match name {
        "fileid" => node.id.0.to_string(),
        "id" => oc_id(node),
        "size" => node.size.to_string(),
        // R: shareable, D: deletable, N: renamable, V: movable, W/CK: writable file/folder.
        "permissions" if node.is_dir => "RDNVCK".to_owned(),
        "permissions" => "RDNVW".to_owned(),
        _ => return None,
    };
    Some(value)
}

fn live_xml(name: &str, value: &str) -> Vec<u8> {
    format!("<oc:{name} xmlns:oc=\"{OC_NS}\">{value}</oc:{name}>").into_bytes()
}

/// One property of a node, live or dead, as a complete XML element.
pub(crate) fn one(store: &Store, node: &Node, prop: &DavProp) -> FsResult<Vec<u8>> {
    let namespace = prop.namespace.as_deref().unwrap_or("");
    if namespace == OC_NS {
        if let Some(value) = live_value(node, &prop.name) {
            return Ok(live_xml(&prop.name, &value));
        }
    }
    store
        .dead_prop(node.id, namespace, &prop.name)
        .map_err(fs_error)?
        .ok_or(FsError::NotFound)
}

/// Every dead property of a node, with or without values.
pub(crate) fn all_dead(store: &Store, node: &Node, with_values: bool) -> FsResult<Vec<DavProp>> {
    let props = store.dead_props(node.id).map_err(fs_error)?;
    Ok(props
        .into_iter()
        .map(|p| DavProp {
            name: p.name,
            prefix: None,
            namespace: (!p.namespace.is_empty()).then_some(p.namespace),
            xml: with_values.then_some(p.xml),
        })
        .collect())
}

fn is_live(prop: &DavProp) -> bool {
    prop.namespace.as_deref() == Some(OC_NS)
        && matches!(prop.name.as_str(), "fileid" | "id" | "size" | "permissions")
}

/// Applies a PROPPATCH all or nothing: live ownCloud properties cannot be set, and when one
/// is in the request nothing else is applied either.
pub(crate) fn patch(
    store: &Store,
    node: &Node,
    patch: Vec<(bool, DavProp)>,
) -> FsResult<Vec<(StatusCode, DavProp)>> {
    if patch.iter().any(|(_, prop)| is_live(prop)) {
        return Ok(refuse_all(patch, is_live, StatusCode::FORBIDDEN));
    }
    let mut changes = Vec::with_capacity(patch.len());
    let mut modified = None;
    for (set, prop) in &patch {
        if let Some(namespace) = original_namespace(prop) {
            let text = text_of(prop.xml.as_deref().unwrap_or_default()).unwrap_or_default();
            if sets_modified(namespace, &prop.name) {
                let Ok(time) = httpdate::parse_http_date(text.trim()) else {
                    let unparsable = |p: &DavProp| {
                        original_namespace(p).is_some_and(|ns| sets_modified(ns, &p.name))
                    };
                    return Ok(refuse_all(patch, unparsable, StatusCode::CONFLICT));
                };
                modified = Some(time);
            }
            if namespace != "DAV:" {
                changes.push(PropChange::Set(DeadProp {
                    namespace: namespace.to_owned(),
                    name: prop.name.clone(),
                    xml: value_element(namespace, &prop.name, &text),
                }));
            }
            continue;
        }
        let namespace = prop.namespace.clone().unwrap_or_default();
        if !set {
            changes.push(PropChange::Remove {
                namespace,
                name: prop.name.clone(),
            });
            continue;
        }
        let xml = prop.xml.clone().unwrap_or_default();
        changes.push(PropChange::Set(DeadProp {
            namespace,
            name: prop.name.clone(),
            xml,
        }));
    }
    store
        .patch_dead_props(node.id, &changes)
        .map_err(fs_error)?;
    if let Some(time) = modified {
        store.set_modified(node.id, time.into()).map_err(fs_error)?;
    }
    Ok(patch
        .into_iter()
        .map(|(_, prop)| (StatusCode::OK, answer_name(prop)))
        .collect())
}

/// Fails a whole PROPPATCH: `status` for the properties `culprit` picks, 424 for the rest.
fn refuse_all(
    patch: Vec<(bool, DavProp)>,
    culprit: impl Fn(&DavProp) -> bool,
    status: StatusCode,
) -> Vec<(StatusCode, DavProp)> {
    patch
        .into_iter()
        .map(|(_, prop)| {
            let code = if culprit(&prop) {
                status
            } else {
                StatusCode::FAILED_DEPENDENCY
            };
            (code, answer_name(prop))
        })
        .collect()
}

/// The property as the answer names it: without its value, and under its real name.
fn answer_name(prop: DavProp) -> DavProp {
    let Some(namespace) = original_namespace(&prop).map(str::to_owned) else {
        return without_value(prop);
    };
    let prefix = if namespace == "DAV:" { "D" } else { "Z" };
    DavProp {
        name: prop.name,
        prefix: Some(prefix.to_owned()),
        namespace: Some(namespace),
        xml: None,
    }
}

/// A property element with a text value, as a client would have sent it.
fn value_element(namespace: &str, name: &str, text: &str) -> Vec<u8> {
    let mut element = xmltree::Element::new(name);
    element.prefix = Some("Z".to_owned());
    element.namespace = Some(namespace.to_owned());
    let mut namespaces = xmltree::Namespace::empty();
    namespaces.put("Z", namespace);
    element.namespaces = Some(namespaces);
    element
        .children
        .push(xmltree::XMLNode::Text(text.to_owned()));
    let mut xml = Vec::new();
    let _ = element.write(&mut xml);
    xml
}

fn without_value(prop: DavProp) -> DavProp {
    DavProp { xml: None, ..prop }
}

fn text_of(xml: &[u8]) -> Option<String> {
    let element = xmltree::Element::parse(Cursor::new(xml)).ok()?;
    element.get_text().map(|t| t.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_read_from_a_property_element() {
        let xml = br#"<Z:Win32LastModifiedTime xmlns:Z="urn:schemas-microsoft-com:">Thu, 01 Jan 2026 10:00:00 GMT</Z:Win32LastModifiedTime>"#;
        assert_eq!(
            text_of(xml).as_deref(),
            Some("Thu, 01 Jan 2026 10:00:00 GMT")
        );
    }

    #[test]
    fn settable_properties_are_redirected_to_the_file_system() {
        let body = br#"<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:"><D:set><D:prop>
            <D:getlastmodified>Thu, 01 Jan 2026 10:00:00 GMT</D:getlastmodified>
            </D:prop></D:set></D:propertyupdate>"#;
        let rewritten = redirect_settable(body).expect("rewritten");
        let text = String::from_utf8(rewritten).unwrap();
        assert!(text.contains("urn:ruche:redirected:DAV:"), "{text}");
        assert!(text.contains("Thu, 01 Jan 2026 10:00:00 GMT"));
        let untouched = br#"<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><x xmlns="urn:a">1</x></D:prop></D:set></D:propertyupdate>"#;
        assert!(redirect_settable(untouched).is_none());
    }

    #[test]
    fn ownership_properties_are_live() {
        let prop = DavProp {
            name: "fileid".into(),
            prefix: None,
            namespace: Some(OC_NS.into()),
            xml: None,
        };
        assert!(is_live(&prop));
    }
}
