//! The printers of a plan's verdicts: a table for people, JSON Lines for
//! scripts, JUnit XML for CI systems (Jenkins, GitLab, GitHub test
//! reporters), TAP (version 14) for `prove` and friends, and one
//! self-contained HTML page (in [`super::html`]). Each takes the
//! verdicts in plan order and a summary, and writes to any `Write`.

use std::io::{self, Write};

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};
use serde::Serialize;

use super::check::{CheckResult, PlanSummary};

/// The formats `exercise run -o` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanFormat {
    Table,
    Json,
    Junit,
    Tap,
    /// One self-contained HTML page: the expected-versus-observed matrix.
    Html,
}

impl std::str::FromStr for PlanFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "table" => PlanFormat::Table,
            "json" | "jsonl" => PlanFormat::Json,
            "junit" | "xml" => PlanFormat::Junit,
            "tap" => PlanFormat::Tap,
            "html" => PlanFormat::Html,
            other => {
                return Err(format!(
                    "unknown format {other:?}: expected table, json, junit, tap or html"
                ));
            }
        })
    }
}

/// Writes `results` (in plan order) in `format`.
pub fn write<T: Serialize>(
    format: PlanFormat,
    out: &mut dyn Write,
    results: &[CheckResult<T>],
    summary: &PlanSummary,
) -> io::Result<()> {
    match format {
        PlanFormat::Table => table(out, results, summary),
        PlanFormat::Json => json_lines(out, results, summary),
        PlanFormat::Junit => junit(out, results, summary),
        PlanFormat::Tap => tap(out, results, summary),
        PlanFormat::Html => super::html::write_checks(out, results, summary),
    }
}

/// One check of a plan as `exercise check` lists it.
#[derive(Debug, Clone, Copy)]
pub struct ListedCheck<'a> {
    pub name: &'a str,
    /// The kind of check: `connect`, `probe`, `talk`...
    pub kind: &'a str,
    pub target: &'a str,
    /// What it expects, in words.
    pub expect: &'a str,
}

/// `exercise check`'s listing: one tab-separated line per check (name,
/// kind, target, expectation), then the count.
pub fn listing<'a>(
    out: &mut dyn Write,
    checks: impl ExactSizeIterator<Item = ListedCheck<'a>>,
) -> io::Result<()> {
    let n = checks.len();
    for c in checks {
        writeln!(out, "{}\t{}\t{}\t{}", c.name, c.kind, c.target, c.expect)?;
    }
    writeln!(out, "{n} checks; the plan is valid")?;
    out.flush()
}

#[derive(Serialize)]
struct JsonCheck<'a, T> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(flatten)]
    result: &'a CheckResult<T>,
}

/// One `{"type":"check",...}` object per check, then `{"type":"summary",...}`.
pub fn json_lines<T: Serialize>(
    out: &mut dyn Write,
    results: &[CheckResult<T>],
    summary: &PlanSummary,
) -> io::Result<()> {
    for r in results {
        serde_json::to_writer(
            &mut *out,
            &JsonCheck {
                kind: "check",
                result: r,
            },
        )?;
        out.write_all(b"\n")?;
    }
    serde_json::to_writer(&mut *out, summary)?;
    out.write_all(b"\n")?;
    out.flush()
}

/// Text cut to `max` characters, on one line.
fn cell(text: &str, max: usize) -> String {
    let one: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if one.chars().count() <= max {
        one
    } else {
        let mut s: String = one.chars().take(max.saturating_sub(3)).collect();
        s.push_str("...");
        s
    }
}

/// PASS/FAIL, the check, what was expected and what happened; then the
/// seed's `RESULT:` line of every failed check, and the totals.
pub fn table<T>(
    out: &mut dyn Write,
    results: &[CheckResult<T>],
    summary: &PlanSummary,
) -> io::Result<()> {
    let rows: Vec<[String; 6]> = results
        .iter()
        .map(|r| {
            [
                if r.passed { "PASS" } else { "FAIL" }.to_string(),
                cell(&r.name, 40),
                cell(
                    &match &r.on {
                        Some(agent) => format!("{} {} on {agent}", r.kind, r.target),
                        None => format!("{} {}", r.kind, r.target),
                    },
                    34,
                ),
                cell(&r.expected, 30),
                cell(&r.actual, 30),
                format!("{} ms", r.elapsed_ms),
            ]
        })
        .collect();
    let head = ["", "CHECK", "WHAT", "EXPECTED", "ACTUAL", "TIME"];
    let mut widths = head.map(str::len);
    for row in &rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |out: &mut dyn Write, cells: &[&str]| -> io::Result<()> {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(c);
                s.push_str(&" ".repeat(w - c.chars().count() + 2));
            }
        }
        writeln!(out, "{}", s.trim_end())
    };
    line(out, &head)?;
    for row in &rows {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        line(out, &cells)?;
    }
    let failed: Vec<&CheckResult<T>> = results.iter().filter(|r| !r.passed).collect();
    if !failed.is_empty() {
        writeln!(out)?;
        for r in failed {
            writeln!(
                out,
                "FAIL {}: expected {}, got {}. RESULT: {}",
                r.name, r.expected, r.actual, r.result
            )?;
        }
    }
    writeln!(
        out,
        "\n{} checks: {} passed, {} failed in {:.1} s",
        summary.checks,
        summary.passed,
        summary.failed,
        summary.elapsed_ms as f64 / 1000.0
    )?;
    out.flush()
}

/// TAP version 14: `ok N - name`, a YAML block under each failure.
pub fn tap<T>(
    out: &mut dyn Write,
    results: &[CheckResult<T>],
    _summary: &PlanSummary,
) -> io::Result<()> {
    writeln!(out, "TAP version 14")?;
    writeln!(out, "1..{}", results.len())?;
    for (i, r) in results.iter().enumerate() {
        // '#' starts a directive in TAP: keep it out of the description.
        let name = cell(&r.name, 200).replace('#', "\\#");
        if r.passed {
            writeln!(out, "ok {} - {name}", i + 1)?;
        } else {
            writeln!(out, "not ok {} - {name}", i + 1)?;
            writeln!(out, "  ---")?;
            writeln!(out, "  kind: {}", r.kind)?;
            writeln!(out, "  target: {}", yaml_str(&r.target))?;
            writeln!(out, "  expected: {}", yaml_str(&r.expected))?;
            writeln!(out, "  actual: {}", yaml_str(&r.actual))?;
            writeln!(out, "  result: {}", yaml_str(&r.result))?;
            writeln!(out, "  ...")?;
        }
    }
    out.flush()
}

/// A YAML double-quoted scalar (JSON's escaping is valid YAML).
fn yaml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// JUnit XML: one `<testsuite>` for the plan, a `<testcase>` per check
/// (classname = the kind), `<failure>` with the expectation and the result.
pub fn junit<T>(
    out: &mut dyn Write,
    results: &[CheckResult<T>],
    summary: &PlanSummary,
) -> io::Result<()> {
    let mut w = Writer::new_with_indent(&mut *out, b' ', 2);
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    let secs = |ms: u64| format!("{:.3}", ms as f64 / 1000.0);
    let tests = summary.checks.to_string();
    let failures = summary.failed.to_string();
    let time = secs(summary.elapsed_ms);
    w.create_element("testsuites")
        .with_attribute(("name", summary.plan.as_str()))
        .with_attribute(("tests", tests.as_str()))
        .with_attribute(("failures", failures.as_str()))
        .with_attribute(("errors", "0"))
        .with_attribute(("time", time.as_str()))
        .write_inner_content(|w| {
            w.create_element("testsuite")
                .with_attribute(("name", summary.plan.as_str()))
                .with_attribute(("tests", tests.as_str()))
                .with_attribute(("failures", failures.as_str()))
                .with_attribute(("errors", "0"))
                .with_attribute(("skipped", "0"))
                .with_attribute(("time", time.as_str()))
                .write_inner_content(|w| {
                    for r in results {
                        let t = secs(r.elapsed_ms);
                        let classname = format!("exercise.{}", r.kind);
                        let case = w
                            .create_element("testcase")
                            .with_attribute(("name", r.name.as_str()))
                            .with_attribute(("classname", classname.as_str()))
                            .with_attribute(("time", t.as_str()));
                        if r.passed {
                            case.write_empty()?;
                        } else {
                            let message = format!("expected {}, got {}", r.expected, r.actual);
                            let body = format!(
                                "target: {}\nexpected: {}\nactual: {}\nRESULT: {}",
                                r.target, r.expected, r.actual, r.result
                            );
                            case.write_inner_content(|w| {
                                w.create_element("failure")
                                    .with_attribute(("message", message.as_str()))
                                    .with_attribute(("type", "expectation"))
                                    .write_text_content(BytesText::new(&xml_clean(&body)))?;
                                Ok(())
                            })?;
                        }
                    }
                    Ok(())
                })?;
            Ok(())
        })?;
    out.write_all(b"\n")?;
    out.flush()
}

/// XML 1.0 cannot carry most control characters even escaped: drop them.
fn xml_clean(s: &str) -> String {
    s.chars()
        .filter(|&c| c == '\n' || c == '\t' || c == '\r' || !c.is_control())
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn result(i: usize, name: &str, passed: bool) -> CheckResult<()> {
        CheckResult {
            index: i,
            name: name.into(),
            kind: "talk",
            target: "198.18.0.2:21".into(),
            on: None,
            passed,
            expected: "fail".into(),
            actual: if passed { "fail at connect" } else { "success" }.into(),
            result: if passed {
                "Fail Timeout at Name prompt"
            } else {
                "Success"
            }
            .into(),
            elapsed_ms: 12,
            talk: None,
            service: None,
            mail: None,
            flow: None,
            recorded: Default::default(),
        }
    }

    fn render(format: PlanFormat, results: &[CheckResult<()>]) -> String {
        let summary = PlanSummary::new("p", results, Duration::from_millis(1500));
        let mut out = Vec::new();
        write(format, &mut out, results, &summary).expect("write");
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn tap_numbers_checks_and_explains_failures() {
        let text = render(
            PlanFormat::Tap,
            &[result(0, "bad address", true), result(1, "a # b", false)],
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "TAP version 14");
        assert_eq!(lines[1], "1..2");
        assert_eq!(lines[2], "ok 1 - bad address");
        assert_eq!(lines[3], "not ok 2 - a \\# b");
        assert_eq!(lines[4], "  ---");
        assert!(text.contains("  result: \"Success\""), "{text}");
    }

    #[test]
    fn junit_counts_failures_and_escapes_names() {
        let text = render(
            PlanFormat::Junit,
            &[result(0, "a <b> & c", true), result(1, "x", false)],
        );
        assert!(text.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"));
        assert!(text.contains(r#"tests="2" failures="1""#), "{text}");
        assert!(text.contains("a &lt;b&gt; &amp; c"), "{text}");
        assert_eq!(text.matches("<failure ").count(), 1, "{text}");
        assert!(text.contains(r#"classname="exercise.talk""#));
    }

    #[test]
    fn json_lines_end_with_a_summary() {
        let text = render(
            PlanFormat::Json,
            &[result(0, "a", true), result(1, "b", false)],
        );
        let values: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect();
        assert_eq!(values.len(), 3);
        assert_eq!(values[0]["type"], "check");
        assert_eq!(values[0]["passed"], true);
        assert_eq!(values[2]["type"], "summary");
        assert_eq!(
            (values[2]["passed"].as_u64(), values[2]["failed"].as_u64()),
            (Some(1), Some(1))
        );
    }

    #[test]
    fn the_table_lists_failures_with_their_result_line() {
        let text = render(
            PlanFormat::Table,
            &[result(0, "a", true), result(1, "b", false)],
        );
        assert!(text.lines().next().expect("head").contains("EXPECTED"));
        assert!(
            text.contains("FAIL b: expected fail, got success. RESULT: Success"),
            "{text}"
        );
        assert!(
            text.contains("2 checks: 1 passed, 1 failed in 1.5 s"),
            "{text}"
        );
    }
}
