//! The crate's module layering, checked: every module imports only from
//! modules of a lower layer (no import circle, nothing reaching up), counting
//! the crate root's re-exports as the module they come from. Doc comments are
//! not imports. (`src/http` checks its own inner layering in `http/layers.rs`.)

use std::collections::BTreeMap;
use std::path::Path;

/// Each top-level module and its layer.
const LAYERS: &[(&str, u8)] = &[
    ("clock", 0),
    ("status", 0),
    ("duration", 0),
    ("retry", 0),
    ("location", 0),
    ("job_id", 0),
    ("job", 1),
    ("error", 2),
    ("state", 2),
    ("new_job", 4),
    ("filter", 5),
    ("id_prefix", 3),
    ("stats", 3),
    ("overview", 3),
    ("queues", 3),
    ("workers", 4),
    ("unique", 3),
    ("transfer", 4),
    ("schedule", 5),
    ("token", 5),
    ("failure", 4),
    ("metrics", 4),
    ("catalog", 6),
    ("store", 7),
    ("queue", 8),
    ("worker", 9),
    ("http", 10),
];

fn src() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The code of a module (a file, or every file of its folder), doc comments left out.
fn code_of(module: &str) -> String {
    let file = src().join(format!("{module}.rs"));
    let mut files = Vec::new();
    if file.exists() {
        files.push(file);
    } else {
        let mut stack = vec![src().join(module)];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let p = entry.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|e| e == "rs") {
                    files.push(p);
                }
            }
        }
    }
    let mut code = String::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for line in text.lines() {
            let t = line.trim_start();
            if !(t.starts_with("///") || t.starts_with("//!")) {
                code.push_str(line);
                code.push('\n');
            }
        }
    }
    code
}

/// The crate root's re-exports: name -> the module it comes from.
fn reexports() -> BTreeMap<String, String> {
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    let mut out = BTreeMap::new();
    for item in lib.split("pub use ").skip(1) {
        let item = item.split(';').next().unwrap_or("");
        let Some((module, names)) = item.split_once("::") else {
            continue;
        };
        let names = names.trim().trim_start_matches('{').trim_end_matches('}');
        for name in names.split(',') {
            let name = name.trim().rsplit("::").next().unwrap_or("").trim();
            if !name.is_empty() {
                out.insert(name.to_string(), module.trim().to_string());
            }
        }
    }
    out
}

/// The top-level modules `code` uses through `crate::`.
fn uses(code: &str, reexports: &BTreeMap<String, String>) -> Vec<String> {
    let mut out = Vec::new();
    let word = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    for part in code.split("crate::").skip(1) {
        let names: Vec<String> = match part.strip_prefix('{') {
            Some(group) => group
                .split('}')
                .next()
                .unwrap_or("")
                .split(',')
                .map(|n| word(n.trim()))
                .collect(),
            None => vec![word(part)],
        };
        for n in names {
            let module = reexports.get(&n).cloned().unwrap_or(n);
            out.push(module);
        }
    }
    out
}

#[test]
fn no_module_imports_from_its_own_layer_or_above() {
    let layer = |name: &str| LAYERS.iter().find(|m| m.0 == name).map(|m| m.1);
    let reexports = reexports();
    for (name, own) in LAYERS {
        for used in uses(&code_of(name), &reexports) {
            if used == *name || used.is_empty() {
                continue;
            }
            let l = layer(&used).unwrap_or_else(|| panic!("{name} uses {used}, not in the table"));
            assert!(l < *own, "{name} (layer {own}) uses {used} (layer {l})");
        }
    }
}

#[test]
fn every_top_level_module_is_in_the_table() {
    for entry in std::fs::read_dir(src()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let library_module = path.is_file() || path.join("mod.rs").exists();
        let outside = ["lib", "main", "layers", "bin", "cli", "config", "handlers"];
        if library_module && !outside.contains(&name.as_str()) {
            assert!(
                LAYERS.iter().any(|m| m.0 == name),
                "src/{name} is not in the layer table"
            );
        }
    }
}
