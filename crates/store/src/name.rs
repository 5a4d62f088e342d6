//! Names of nodes: normalised to NFC and validated before they reach the database.

use unicode_normalization::{is_nfc, UnicodeNormalization};

use crate::{Result, StoreError};

/// The longest name accepted, in bytes, as on most local file systems.
pub const MAX_NAME_BYTES: usize = 255;

/// Returns the NFC form of `name`, or an error that says why the name is refused.
///
/// macOS sends names in NFD; storing every name in NFC makes both spellings one file.
pub fn normalize(name: &str) -> Result<String> {
    let refuse = |reason| StoreError::InvalidName {
        name: name.to_owned(),
        reason,
    };
    if name.is_empty() {
        return Err(refuse("empty"));
    }
    if name == "." || name == ".." {
        return Err(refuse("reserved"));
    }
    if name.contains('/') {
        return Err(refuse("contains '/'"));
    }
    if name.contains('\0') {
        return Err(refuse("contains NUL"));
    }
    if name.chars().any(|c| c.is_control()) {
        return Err(refuse("contains a control character"));
    }
    let nfc: String = if is_nfc(name) {
        name.to_owned()
    } else {
        name.nfc().collect()
    };
    if nfc.len() > MAX_NAME_BYTES {
        return Err(refuse("longer than 255 bytes"));
    }
    Ok(nfc)
}

/// Normalises every segment of a path.
pub fn normalize_path<S: AsRef<str>>(segments: &[S]) -> Result<Vec<String>> {
    segments.iter().map(|s| normalize(s.as_ref())).collect()
}

/// Renders path segments for messages, as `/a/b`.
pub fn display_path(segments: &[String]) -> String {
    format!("/{}", segments.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nfd_and_nfc_spellings_become_one_name() {
        let nfd = "e\u{301}te\u{301}.txt";
        assert_eq!(normalize(nfd).unwrap(), "\u{e9}t\u{e9}.txt");
        assert_eq!(normalize("\u{e9}t\u{e9}.txt").unwrap(), "\u{e9}t\u{e9}.txt");
    }

    #[test]
    fn names_keep_their_case() {
        assert_eq!(normalize("Rapport.ODT").unwrap(), "Rapport.ODT");
    }

    #[test]
    fn dangerous_names_are_refused() {
        for bad in ["", ".", "..", "a/b", "a\0b", "a\nb"] {
            assert!(normalize(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(normalize(&"x".repeat(256)).is_err());
        assert!(normalize(&"x".repeat(255)).is_ok());
    }

    #[test]
    fn leading_dots_are_ordinary_names() {
        assert!(normalize(".DS_Store").is_ok());
        assert!(normalize("._report.odt").is_ok());
        assert!(normalize("...").is_ok());
    }
}
