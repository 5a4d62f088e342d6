//! Names and paths from the network are normalised or refused, never a panic.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let segments: Vec<&str> = text.split('/').collect();
        if let Ok(normalised) = ruche_store::normalize_path(&segments) {
            // Normalising is idempotent.
            assert_eq!(ruche_store::normalize_path(&normalised).ok(), Some(normalised));
        }
    }
});
