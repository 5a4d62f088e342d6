//! Formatting for the Markdown tables: numbers with about three significant digits,
//! cells with a median and its range, and the table itself. Pure functions.

use crate::report::Series;

/// A cell: the median with (min–max), one value when they agree, or "failed".
pub fn cell(series: &Series) -> String {
    match series.summary() {
        Some(s) if s.min == s.max => format_value(s.median),
        Some(s) => format!(
            "{} ({}–{})",
            format_value(s.median),
            format_value(s.min),
            format_value(s.max)
        ),
        None if series.failure.is_some() => "failed".to_owned(),
        None => "–".to_owned(),
    }
}

/// A value with three significant digits or so, never in exponent form.
pub fn format_value(value: f64) -> String {
    let magnitude = value.abs();
    if value == 0.0 {
        "0".to_owned()
    } else if magnitude >= 100.0 {
        format!("{value:.0}")
    } else if magnitude >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

/// A ratio with two decimals, or a dash when there is none.
pub fn format_ratio(value: Option<f64>) -> String {
    value.map_or("–".to_owned(), |v| format!("{v:.2}"))
}

/// A Markdown table; columns from `first_numeric` on are right-aligned.
pub fn markdown_table(header: &[String], rows: &[Vec<String>], first_numeric: usize) -> String {
    let line = |cells: &[String]| format!("| {} |\n", cells.join(" | "));
    let rule: Vec<String> = (0..header.len())
        .map(|i| if i < first_numeric { "---" } else { "---:" }.to_owned())
        .collect();
    let mut out = line(header) + &line(&rule);
    for row in rows {
        out.push_str(&line(row));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_keep_about_three_significant_digits() {
        assert_eq!(format_value(1234.4), "1234");
        assert_eq!(format_value(12.345), "12.3");
        assert_eq!(format_value(0.1234), "0.12");
        assert_eq!(format_ratio(Some(0.456)), "0.46");
        assert_eq!(format_ratio(None), "–");
    }

    #[test]
    fn cells_show_median_and_range_or_failure() {
        let series = Series {
            samples: vec![3.0, 1.0, 2.0],
            failure: None,
        };
        assert_eq!(cell(&series), "2.00 (1.00–3.00)");
        let failed = Series {
            samples: vec![],
            failure: Some("PUT /x: unexpected 500".to_owned()),
        };
        assert_eq!(cell(&failed), "failed");
    }

    #[test]
    fn tables_align_numbers_right() {
        let header = ["a", "b"].map(String::from);
        let rows = vec![vec!["x".to_owned(), "1".to_owned()]];
        let table = markdown_table(&header, &rows, 1);
        assert_eq!(table, "| a | b |\n| --- | ---: |\n| x | 1 |\n");
    }
}
