//! `-o FORMAT[=PATH]`: which printers run and where they write.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::Context;

use super::UsageError;
use crate::report::Format;

/// One requested output: a format and, unless it goes to stdout, a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputSpec {
    pub format: Format,
    pub path: Option<PathBuf>,
}

/// Parses every `-o` value (and `--json`). At most one format may go to
/// stdout; with none, stdout gets the table.
pub fn parse_outputs(values: &[String], json: bool) -> Result<Vec<OutputSpec>, UsageError> {
    let mut specs = Vec::new();
    for value in values {
        let (name, path) = match value.split_once('=') {
            Some((name, path)) => {
                if path.is_empty() {
                    return Err(UsageError::new(format!(
                        "output {value:?}: missing file name after '='"
                    )));
                }
                (name, Some(PathBuf::from(path)))
            }
            None => (value.as_str(), None),
        };
        let format: Format = name
            .parse()
            .map_err(|e| UsageError::new(format!("output {value:?}: {e}")))?;
        specs.push(OutputSpec { format, path });
    }
    if json {
        specs.push(OutputSpec {
            format: Format::Json,
            path: None,
        });
    }
    let on_stdout = specs.iter().filter(|s| s.path.is_none()).count();
    if on_stdout > 1 {
        return Err(UsageError::new(
            "only one output format can go to stdout; write the others to files with -o FORMAT=PATH",
        ));
    }
    if on_stdout == 0 {
        specs.insert(
            0,
            OutputSpec {
                format: Format::Table,
                path: None,
            },
        );
    }
    Ok(specs)
}

/// Opens (creates or truncates) the file of an output spec, buffered.
pub fn open_file(path: &PathBuf) -> anyhow::Result<Box<dyn Write + Send>> {
    let file = File::create(path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(Box::new(BufWriter::with_capacity(64 * 1024, file)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(values: &[&str], json: bool) -> Result<Vec<OutputSpec>, UsageError> {
        let values: Vec<String> = values.iter().map(|s| s.to_string()).collect();
        parse_outputs(&values, json)
    }

    #[test]
    fn default_is_table_on_stdout() {
        let specs = parse(&[], false).expect("valid");
        assert_eq!(
            specs,
            vec![OutputSpec {
                format: Format::Table,
                path: None
            }]
        );
    }

    #[test]
    fn files_keep_the_table_on_stdout() {
        let specs = parse(&["xml=a.xml", "json=b.jsonl"], false).expect("valid");
        assert_eq!(specs.len(), 3);
        assert_eq!(
            specs[0],
            OutputSpec {
                format: Format::Table,
                path: None
            }
        );
        assert_eq!(specs[1].path, Some(PathBuf::from("a.xml")));
    }

    #[test]
    fn one_stdout_format_replaces_the_table() {
        let specs = parse(&["json"], false).expect("valid");
        assert_eq!(
            specs,
            vec![OutputSpec {
                format: Format::Json,
                path: None
            }]
        );
        let specs = parse(&[], true).expect("valid");
        assert_eq!(
            specs,
            vec![OutputSpec {
                format: Format::Json,
                path: None
            }]
        );
    }

    #[test]
    fn bad_outputs_are_usage_errors() {
        assert!(parse(&["json", "xml"], false).is_err());
        assert!(parse(&["yaml"], false).is_err());
        assert!(parse(&["xml="], false).is_err());
    }
}
