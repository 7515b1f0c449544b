//! The layer rule of `docs/architecture.md`, checked: every `crate::NAME`
//! path in `src/` must name the module's own folder or a module of a lower
//! layer. The layer table is read from the document itself, so the rule and
//! its description cannot drift apart.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Module name -> layer number, from the "## Layers" table of the document.
fn layer_table(doc: &str) -> BTreeMap<String, u32> {
    let mut layers = BTreeMap::new();
    let section = doc
        .split("## Layers")
        .nth(1)
        .expect("docs/architecture.md has a '## Layers' section");
    for line in section.lines().take_while(|l| !l.starts_with("## ")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // | layer | modules | what |  ->  ["", layer, modules, what, ""]
        if cells.len() < 4 {
            continue;
        }
        let Ok(layer) = cells[1].parse::<u32>() else {
            continue;
        };
        for module in cells[2].split(',') {
            layers.insert(module.trim().to_string(), layer);
        }
    }
    layers
}

/// The text with `//` comments removed (doc comments mention paths freely).
fn without_comments(text: &str) -> String {
    text.lines()
        .map(|line| match line.find("//") {
            // A `//` inside a string literal ("http://") is rare in paths we
            // look for; cutting there only hides text, it never invents a path.
            Some(i) => &line[..i],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level modules a source text reaches through `crate::`, in
/// `crate::a::b` paths and in grouped `use crate::{a, b::c, d::{e, f}}`.
fn crate_uses(text: &str) -> Vec<String> {
    let text = without_comments(text);
    let mut found = Vec::new();
    let mut rest = text.as_str();
    while let Some(i) = rest.find("crate::") {
        // `sockeye_proto::crate::` does not exist; but `my_crate::` would
        // match: require a non-identifier character before.
        let before = rest[..i].chars().next_back();
        let after = &rest[i + "crate::".len()..];
        rest = after;
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(group) = after.strip_prefix('{') {
            // Top-level names of the group: split on commas at depth 0.
            let mut depth = 0;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        found.push(head(&item));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                item.push(c);
            }
            found.push(head(&item));
        } else {
            found.push(head(after));
        }
    }
    found.retain(|m| !m.is_empty() && m != "self");
    found
}

/// The first identifier of a path.
fn head(path: &str) -> String {
    path.trim_start()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// The top-level module a file of `src/` belongs to (`src/scan/engine.rs`
/// and `src/scan.rs` -> `scan`); `None` for the crate root and `main.rs`.
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel
        .components()
        .next()?
        .as_os_str()
        .to_string_lossy()
        .into_owned();
    let name = first.strip_suffix(".rs").unwrap_or(&first).to_string();
    (name != "lib" && name != "main").then_some(name)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src/") {
        let path = entry.expect("read src/").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every breach of the rule, one line each: "src/x.rs: a (layer 3) uses b (layer 5)".
fn breaches(layers: &BTreeMap<String, u32>, files: &[(String, String, String)]) -> Vec<String> {
    let mut out = Vec::new();
    for (path, module, text) in files {
        let Some(&own) = layers.get(module) else {
            out.push(format!(
                "{path}: module {module} is in no layer of docs/architecture.md"
            ));
            continue;
        };
        let mut seen = Vec::new();
        for used in crate_uses(text) {
            if used == *module || seen.contains(&used) {
                continue;
            }
            seen.push(used.clone());
            match layers.get(&used) {
                None => out.push(format!("{path}: uses crate::{used}, which is in no layer")),
                Some(&theirs) if theirs >= own => out.push(format!(
                    "{path}: {module} (layer {own}) uses {used} (layer {theirs}): \
                     only lower layers may be used"
                )),
                Some(_) => {}
            }
        }
    }
    out
}

#[test]
fn every_import_points_down_a_layer() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("docs/architecture.md")).expect("read the doc");
    let layers = layer_table(&doc);
    assert!(layers.len() >= 8, "layer table not found: {layers:?}");
    let src = root.join("src");
    let mut paths = Vec::new();
    rust_files(&src, &mut paths);
    paths.sort();
    let files: Vec<(String, String, String)> = paths
        .iter()
        .filter_map(|p| {
            let module = module_of(&src, p)?;
            let text = std::fs::read_to_string(p).expect("read a source file");
            Some((
                p.strip_prefix(root).unwrap().display().to_string(),
                module,
                text,
            ))
        })
        .collect();
    assert!(
        files.len() > 50,
        "too few source files found: {}",
        files.len()
    );
    let found = breaches(&layers, &files);
    assert!(found.is_empty(), "layer rule broken:\n{}", found.join("\n"));
}

#[test]
fn the_checker_sees_what_it_must() {
    let layers: BTreeMap<String, u32> = [("target", 1), ("tls", 3), ("probe", 5), ("talk", 5)]
        .into_iter()
        .map(|(m, l)| (m.to_string(), l))
        .collect();
    let file = |module: &str, text: &str| {
        (
            format!("src/{module}/x.rs"),
            module.to_string(),
            text.to_string(),
        )
    };
    // Downward, own module, comments and other crates: fine.
    let fine = [
        file(
            "probe",
            "use crate::tls::Scanner;\nuse crate::target::{self, Proto};",
        ),
        file(
            "probe",
            "use crate::probe::conn;\n// use crate::talk::x;\nlet a = my_crate::talk;",
        ),
        file("tls", "use super::x; use sockeye_proto::calc;"),
    ];
    assert_eq!(breaches(&layers, &fine), Vec::<String>::new());
    // Upward, sideways, grouped, nested group, inline path, unknown module.
    let cases = [
        (
            file("tls", "use crate::probe::conn::Conn;"),
            "tls (layer 3) uses probe (layer 5)",
        ),
        (
            file("talk", "use crate::{tls, probe::conn};"),
            "talk (layer 5) uses probe (layer 5)",
        ),
        (
            file(
                "talk",
                "use crate::{\n  target::{a, b},\n  probe::{c, d},\n};",
            ),
            "uses probe",
        ),
        (
            file("target", "let x = crate::tls::provider();"),
            "target (layer 1) uses tls",
        ),
        (
            file("talk", "use crate::nowhere::X;"),
            "crate::nowhere, which is in no layer",
        ),
        (
            file("newmod", "use crate::tls;"),
            "module newmod is in no layer",
        ),
    ];
    for (f, want) in cases {
        let got = breaches(&layers, std::slice::from_ref(&f));
        assert!(
            got.len() == 1 && got[0].contains(want),
            "{}: {got:?}, wanted {want:?}",
            f.2
        );
    }
}
