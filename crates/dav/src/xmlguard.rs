//! A cheap scan of XML bodies before any parser sees them.
//!
//! The XML parsers used here build trees recursively: a body of a few hundred kilobytes of
//! nested elements would exhaust the stack. No WebDAV body needs more than a handful of
//! levels, so bodies nested deeper than [`MAX_DEPTH`] are refused unparsed.

/// Deepest element nesting accepted in a request body.
pub(crate) const MAX_DEPTH: usize = 64;

/// Whether the elements of `body` nest at most `max` levels deep. The scan errs on the
/// side of counting too deep (it ignores comments and CDATA), which only refuses bodies
/// that no client sends.
pub(crate) fn depth_within(body: &[u8], max: usize) -> bool {
    let mut depth = 0usize;
    let mut i = 0;
    while let Some(offset) = body[i..].iter().position(|&b| b == b'<') {
        let start = i + offset;
        let next = body.get(start + 1).copied();
        let end = body[start..]
            .iter()
            .position(|&b| b == b'>')
            .map(|e| start + e);
        match next {
            Some(b'/') => depth = depth.saturating_sub(1),
            Some(b'?') | Some(b'!') => {}
            _ => {
                let self_closing = end.is_some_and(|e| e > start && body[e - 1] == b'/');
                if !self_closing {
                    depth += 1;
                    if depth > max {
                        return false;
                    }
                }
            }
        }
        i = end.map_or(body.len(), |e| e + 1);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_bodies_pass() {
        let body = br#"<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:getetag/>
            <D:resourcetype/></D:prop></D:propfind>"#;
        assert!(depth_within(body, 3));
        assert!(!depth_within(body, 1));
    }

    #[test]
    fn deep_nesting_is_refused() {
        let body = format!("{}{}", "<a>".repeat(100_000), "</a>".repeat(100_000));
        assert!(!depth_within(body.as_bytes(), MAX_DEPTH));
    }

    #[test]
    fn siblings_do_not_add_up() {
        let body = format!("<r>{}</r>", "<a>x</a><b/>".repeat(10_000));
        assert!(depth_within(body.as_bytes(), 2));
    }
}
