//! The litmus WebDAV conformance suites, run against the user's WebDAV root. Each
//! suite gets its own server, because litmus stops at the first suite that fails and
//! the point is to see every failure at once.

use std::time::Duration;

use ruche_e2e::{require_tool, run_tool, IsolatedHome, TestServer};

/// litmus needs a few seconds per suite; the locks suite is the slowest.
const SUITE_TIMEOUT: Duration = Duration::from_secs(180);

fn assert_suite_passes(suite: &str, expected_tests: usize) {
    let litmus = require_tool("litmus");
    let server = TestServer::start();
    // litmus writes debug.log into its working folder: keep it out of the tree.
    let home = IsolatedHome::new();

    let output = run_tool(
        home.command(litmus).env("TESTS", suite).args([
            server.dav_url().as_str(),
            server.user(),
            server.password(),
        ]),
        None,
        SUITE_TIMEOUT,
    );

    let transcript = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let problems = problems_in(&transcript, suite, expected_tests);
    assert!(
        problems.is_empty() && output.status.success(),
        "litmus `{suite}` did not pass cleanly (exit {}):\n{}\n\n--- failing lines ---\n{}\n\n\
         --- full output ---\n{transcript}",
        output.status,
        problems.join("\n"),
        failing_lines(&transcript).join("\n"),
    );
}

/// What is wrong in a litmus transcript: a missing or imperfect summary line, warnings.
fn problems_in(transcript: &str, suite: &str, expected_tests: usize) -> Vec<String> {
    let mut problems = Vec::new();

    let summary_prefix = format!("<- summary for `{suite}':");
    let expected_summary =
        format!("of {expected_tests} tests run: {expected_tests} passed, 0 failed.");
    match transcript
        .lines()
        .find(|line| line.starts_with(&summary_prefix))
    {
        None => problems.push(format!("no summary line for suite `{suite}`")),
        Some(summary) if !summary.contains(&expected_summary) => {
            problems.push(format!(
                "summary says {summary:?}, expected {expected_summary:?}"
            ));
        }
        Some(_) => {}
    }

    for line in transcript.lines().filter(|line| line.contains("WARNING")) {
        problems.push(format!("warning: {line}"));
    }
    problems
}

/// The lines worth showing first: failures, warnings, skips and summaries.
fn failing_lines(transcript: &str) -> Vec<&str> {
    const MARKERS: [&str; 6] = [
        "FAIL", "WARNING", "SKIPPED", "summary", "skipped", "warning",
    ];
    transcript
        .lines()
        .filter(|line| MARKERS.iter().any(|marker| line.contains(marker)))
        .collect()
}

#[test]
fn basic_suite_passes() {
    assert_suite_passes("basic", 16);
}

#[test]
fn copymove_suite_passes() {
    assert_suite_passes("copymove", 13);
}

#[test]
fn props_suite_passes() {
    assert_suite_passes("props", 30);
}

#[test]
fn locks_suite_passes() {
    assert_suite_passes("locks", 41);
}

#[test]
fn http_suite_passes() {
    assert_suite_passes("http", 4);
}

#[test]
fn a_transcript_with_a_failure_or_warning_is_rejected() {
    let transcript = "-> running `basic':\n 11. mkcol_again... FAIL (MKCOL on existing)\n\
                      WARNING: bogus\n<- summary for `basic': of 16 tests run: 15 passed, 1 failed. 93.8%\n";

    let problems = problems_in(transcript, "basic", 16);

    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems_in(transcript, "copymove", 13)[0].contains("no summary line"));
    let clean = "<- summary for `http': of 4 tests run: 4 passed, 0 failed. 100.0%\n";
    assert!(problems_in(clean, "http", 4).is_empty());
}
