//! What the run needs to know about this machine: the ruche binary under test, the
//! core count, CPU, kernel, the file system of the temporary folder, and the date.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use crate::report::Machine;

/// The `ruche` binary to measure: `RUCHE_BIN`, or `ruche` beside this program. Under
/// `cargo run` it is rebuilt first (a no-op when fresh), so that the figures are those
/// of the code in the work tree; if that build fails, the existing binary is used.
pub fn ruche_binary() -> PathBuf {
    if let Some(path) = env::var_os("RUCHE_BIN") {
        return PathBuf::from(path);
    }
    let exe = env::current_exe().unwrap_or_default();
    let folder = exe.parent().unwrap_or(Path::new("."));
    if let Some(cargo) = env::var_os("CARGO") {
        build_ruche(&cargo, folder.ends_with("release"));
    }
    folder.join("ruche")
}

fn build_ruche(cargo: &std::ffi::OsStr, release: bool) {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut build = Command::new(cargo);
    build.args(["build", "-p", "ruche-server", "--bin", "ruche"]);
    if release {
        build.arg("--release");
    }
    eprintln!("building the server under test: {build:?}");
    match build.current_dir(&workspace).status() {
        Ok(status) if status.success() => {}
        Ok(status) => eprintln!("building ruche failed ({status}); using the existing binary"),
        Err(err) => eprintln!("cannot run cargo ({err}); using the existing binary"),
    }
}

/// Describes this machine; `temp` is where the servers' data goes.
pub fn describe(temp: &Path) -> Machine {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find(|line| line.starts_with("model name"))
        .and_then(|line| line.split(':').nth(1))
        .map_or("unknown CPU".to_owned(), |model| model.trim().to_owned());
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    Machine {
        date: utc_date(SystemTime::now()),
        cores,
        cpu,
        kernel: kernel.trim().to_owned(),
        temp_dir: format!("{} ({})", temp.display(), file_system(temp)),
    }
}

/// The type of the file system holding `path`, from the longest matching mount point.
fn file_system(path: &Path) -> String {
    let mounts = fs::read_to_string("/proc/mounts").unwrap_or_default();
    let path = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    mounts
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            Some((*fields.get(1)?, *fields.get(2)?))
        })
        .filter(|(mount, _)| path.starts_with(mount))
        .max_by_key(|(mount, _)| mount.len())
        .map_or("unknown file system".to_owned(), |(_, kind)| {
            kind.to_owned()
        })
}

/// `YYYY-MM-DD HH:MM UTC` for a point in time.
pub fn utc_date(time: SystemTime) -> String {
    let seconds = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    let (hour, minute) = (rest / 3600, rest % 3600 / 60);
    format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02} UTC")
}

/// The proleptic Gregorian date of a count of days since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Counts in 400-year eras that start on 1 March, so leap days fall at an era's end.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * shifted_month + 2) / 5 + 1) as u32;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn dates_are_printed_in_utc() {
        assert_eq!(utc_date(SystemTime::UNIX_EPOCH), "1970-01-01 00:00 UTC");
        let leap_day = SystemTime::UNIX_EPOCH + Duration::from_secs(1_709_210_096);
        assert_eq!(utc_date(leap_day), "2024-02-29 12:34 UTC");
    }
}
