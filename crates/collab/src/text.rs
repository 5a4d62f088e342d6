//! The text of a document: seeding it from a file, reading it back, and merging a write
//! that arrived over WebDAV while the document was open.
//!
//! A WebDAV client that saves a file is a peer that forked at the text it read. Its save is
//! replayed as edits on a copy of the document at that fork point, under a client id of its
//! own; the resulting update then merges into the live document like any peer's, so that
//! neither the browser's edits nor the desktop's are lost.

use similar::{capture_diff_slices, Algorithm, DiffOp};
use yrs::updates::decoder::Decode;
use yrs::{Doc, GetString, ReadTxn, StateVector, Text, Transact, Update};

/// The shared type holding the text; the name the stock CodeMirror binding examples use.
pub const TEXT_NAME: &str = "codemirror";

/// The document's text.
pub fn text_of(doc: &Doc) -> String {
    let text = doc.get_or_insert_text(TEXT_NAME);
    text.get_string(&doc.transact())
}

/// The update that writes `content` into an empty document.
pub fn seed_update(content: &str) -> Vec<u8> {
    let doc = Doc::new();
    let text = doc.get_or_insert_text(TEXT_NAME);
    text.insert(&mut doc.transact_mut(), 0, content);
    let update = doc.transact().encode_diff_v1(&StateVector::default());
    update
}

/// The update that turns the document whose state is `base` (whose text is `base_text`)
/// into one whose text is `new_text`, made by a peer of its own.
pub fn fork_update(base: &[u8], base_text: &str, new_text: &str) -> Result<Vec<u8>, String> {
    let fork = Doc::new();
    let update = Update::decode_v1(base).map_err(|e| e.to_string())?;
    fork.transact_mut()
        .apply_update(update)
        .map_err(|e| e.to_string())?;
    let before = fork.transact().state_vector();
    let field = fork.get_or_insert_text(TEXT_NAME);
    let old: Vec<char> = base_text.chars().collect();
    let new: Vec<char> = new_text.chars().collect();
    let mut txn = fork.transact_mut();
    // Offsets are in bytes (the document's default); `cursor` walks the text as edited.
    let mut cursor: u32 = 0;
    let bytes = |chars: &[char]| chars.iter().map(|c| c.len_utf8() as u32).sum::<u32>();
    for op in capture_diff_slices(Algorithm::Myers, &old, &new) {
        match op {
            DiffOp::Equal { old_index, len, .. } => {
                cursor += bytes(&old[old_index..old_index + len]);
            }
            DiffOp::Delete {
                old_index, old_len, ..
            } => {
                field.remove_range(
                    &mut txn,
                    cursor,
                    bytes(&old[old_index..old_index + old_len]),
                );
            }
            DiffOp::Insert {
                new_index, new_len, ..
            } => {
                let inserted: String = new[new_index..new_index + new_len].iter().collect();
                field.insert(&mut txn, cursor, &inserted);
                cursor += inserted.len() as u32;
            }
            DiffOp::Replace {
                old_index,
                old_len,
                new_index,
                new_len,
            } => {
                field.remove_range(
                    &mut txn,
                    cursor,
                    bytes(&old[old_index..old_index + old_len]),
                );
                let inserted: String = new[new_index..new_index + new_len].iter().collect();
                field.insert(&mut txn, cursor, &inserted);
                cursor += inserted.len() as u32;
            }
        }
    }
    drop(txn);
    let update = fork.transact().encode_diff_v1(&before);
    Ok(update)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc_from(update: &[u8]) -> Doc {
        let doc = Doc::new();
        doc.transact_mut()
            .apply_update(Update::decode_v1(update).unwrap())
            .unwrap();
        doc
    }

    #[test]
    fn a_seeded_document_reads_back_its_text() {
        let doc = doc_from(&seed_update("Ligne 1\nÉté ☀\n"));
        assert_eq!(text_of(&doc), "Ligne 1\nÉté ☀\n");
    }

    #[test]
    fn a_webdav_save_merges_with_live_edits() {
        let base_text = "Ordre du jour\n1. budget\n2. locaux\n";
        let base = seed_update(base_text);
        // The browser adds a line at the end while the desktop edits the first line.
        let live = doc_from(&base);
        let field = live.get_or_insert_text(TEXT_NAME);
        let len = field.len(&live.transact());
        field.insert(&mut live.transact_mut(), len, "3. divers\n");

        let desktop = "Ordre du jour du 4 décembre\n1. budget\n2. locaux\n";
        let update = fork_update(&base, base_text, desktop).unwrap();
        live.transact_mut()
            .apply_update(Update::decode_v1(&update).unwrap())
            .unwrap();
        assert_eq!(
            text_of(&live),
            "Ordre du jour du 4 décembre\n1. budget\n2. locaux\n3. divers\n"
        );
    }

    /// A random text over a small alphabet with multi-byte characters, so that edits
    /// collide and offsets are tested off ASCII.
    fn random_text(rng: &mut impl rand::Rng, max: usize) -> String {
        const ALPHABET: [char; 8] = ['a', 'b', ' ', '\n', 'é', '€', '😀', 'z'];
        let len = rng.random_range(0..=max);
        (0..len)
            .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())])
            .collect()
    }

    #[test]
    fn random_saves_merge_without_losing_either_side() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
        for _ in 0..300 {
            let before = random_text(&mut rng, 40);
            let after = random_text(&mut rng, 40);
            let base = seed_update(&before);
            // Alone, a save turns the text into exactly the saved text.
            let update = fork_update(&base, &before, &after).unwrap();
            let doc = doc_from(&base);
            doc.transact_mut()
                .apply_update(Update::decode_v1(&update).unwrap())
                .unwrap();
            assert_eq!(text_of(&doc), after, "{before:?} -> {after:?}");

            // With a live edit at the end, both the save and the edit survive.
            let live = doc_from(&base);
            let field = live.get_or_insert_text(TEXT_NAME);
            let end = field.len(&live.transact());
            let marker = if rng.random_bool(0.5) {
                "[live]"
            } else {
                "[é€]"
            };
            field.insert(&mut live.transact_mut(), end, marker);
            live.transact_mut()
                .apply_update(Update::decode_v1(&update).unwrap())
                .unwrap();
            let merged = text_of(&live);
            assert!(merged.contains(marker), "{merged:?} lost the live edit");
            assert_eq!(
                merged.replace(marker, ""),
                after,
                "{merged:?} lost the save"
            );
        }
    }

    #[test]
    fn every_kind_of_edit_reproduces_the_new_text() {
        let cases = [
            ("", "tout neuf"),
            ("à effacer", ""),
            ("abc déf ghi", "abX déf ghiY"),
            ("ü😀x", "😀yü"),
        ];
        for (before, after) in cases {
            let base = seed_update(before);
            let update = fork_update(&base, before, after).unwrap();
            let doc = doc_from(&base);
            doc.transact_mut()
                .apply_update(Update::decode_v1(&update).unwrap())
                .unwrap();
            assert_eq!(text_of(&doc), after, "{before:?} -> {after:?}");
        }
    }
}
