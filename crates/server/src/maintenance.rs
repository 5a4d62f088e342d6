//! `ruche fsck`, `ruche backup` and `ruche restore`. Long runs show progress on a terminal
//! and stay quiet in scripts.

use std::io::{IsTerminal, Write};
use std::path::Path;

use anyhow::Context;
use ruche_store::{Store, StoreConfig};

/// Draws `label: done/total` on one terminal line, or nothing when stderr is not a terminal.
fn progress(label: &'static str) -> impl FnMut(u64, u64) {
    let shown = std::io::stderr().is_terminal();
    move |done, total| {
        if shown {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r{label}: {done}/{total}");
            if done == total {
                let _ = writeln!(err);
            }
        }
    }
}

/// Checks a stopped data folder; returns whether it is clean.
pub fn fsck(data: &Path, repair: bool) -> anyhow::Result<bool> {
    let report = ruche_store::fsck(data, repair, &mut progress("checking contents"))
        .with_context(|| format!("{}: cannot check", data.display()))?;
    for finding in &report.findings {
        let mark = if finding.repaired {
            "repaired"
        } else {
            "problem"
        };
        println!("{mark}: {}", finding.problem);
    }
    let verdict = if report.is_clean() {
        "clean"
    } else {
        "NOT clean"
    };
    println!(
        "{}: {} nodes and {} contents checked, {} findings; {verdict}",
        data.display(),
        report.nodes,
        report.contents,
        report.findings.len()
    );
    Ok(report.is_clean())
}

/// Copies a consistent snapshot of a data folder, which a server may be using, to `to`.
pub fn backup(data: &Path, to: &Path) -> anyhow::Result<()> {
    let store = Store::open(StoreConfig {
        data_dir: data.to_owned(),
        default_quota: None,
    })
    .with_context(|| format!("{}: cannot open the data folder", data.display()))?;
    let copied = store
        .backup(to, &mut progress("copying contents"))
        .with_context(|| format!("{}: backup failed", to.display()))?;
    println!(
        "backup written to {} (database and {} content files, {} bytes)",
        to.display(),
        copied.blob_files,
        copied.blob_bytes
    );
    Ok(())
}

/// Brings a backup back into a new data folder.
pub fn restore(from: &Path, data: &Path) -> anyhow::Result<()> {
    let copied = ruche_store::restore(from, data, &mut progress("copying contents"))
        .with_context(|| format!("{}: restore failed", data.display()))?;
    println!(
        "restored {} into {} ({} content files, {} bytes)",
        from.display(),
        data.display(),
        copied.blob_files,
        copied.blob_bytes
    );
    Ok(())
}

/// Writes the activity log to standard output as JSON lines, oldest first, from the entry
/// after `after`: an administrator's export of the audit log.
pub fn audit(data: &Path, after: i64) -> anyhow::Result<()> {
    use std::io::Write;

    let store = Store::open(StoreConfig {
        data_dir: data.to_owned(),
        default_quota: None,
    })
    .with_context(|| format!("{}: cannot open the data folder", data.display()))?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    store
        .export_activity(after, |entry| {
            writeln!(out, "{}", crate::activity::entry_json(&entry))
        })
        .context("exporting the activity log failed")?;
    out.flush().context("writing the export failed")?;
    Ok(())
}
