//! URLs of nodes, as they appear in `href` elements and lock roots.

use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};

/// Characters escaped in a path segment of a URL.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b']')
    .add(b'\\')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}')
    .add(b'/');

/// The URL path of a node: the prefix, then each segment escaped; folders end with `/`.
pub(crate) fn href<S: AsRef<str>>(prefix: &str, segments: &[S], is_dir: bool) -> String {
    let mut out = String::from(prefix);
    for segment in segments {
        out.push('/');
        out.extend(utf8_percent_encode(segment.as_ref(), SEGMENT));
    }
    if is_dir || segments.is_empty() {
        out.push('/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_escaped_and_folders_end_with_a_slash() {
        assert_eq!(href("/dav", &["a b", "c#d%"], false), "/dav/a%20b/c%23d%25");
        assert_eq!(href("/dav", &["été"], true), "/dav/%C3%A9t%C3%A9/");
        assert_eq!(href::<&str>("/dav", &[], true), "/dav/");
    }
}
