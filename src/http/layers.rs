//! The module layering of `src/http`, checked: each module imports only from
//! modules of a lower layer, so there is no import circle.

/// Every module of `src/http` (but `mod.rs`, which joins them) with its layer
/// and source.
const MODULES: &[(&str, u8, &str)] = &[
    ("errors", 0, include_str!("errors.rs")),
    ("session", 0, include_str!("session.rs")),
    ("open", 0, include_str!("open.rs")),
    ("context", 1, include_str!("context.rs")),
    ("request", 1, include_str!("request.rs")),
    ("response", 1, include_str!("response.rs")),
    ("chunked", 1, include_str!("chunked.rs")),
    ("error_responses", 1, include_str!("error_responses.rs")),
    ("framing", 2, include_str!("framing.rs")),
    ("common", 2, include_str!("common.rs")),
    ("body", 2, include_str!("body.rs")),
    ("auth", 2, include_str!("auth.rs")),
    ("conn", 3, include_str!("conn.rs")),
    ("jobs", 3, include_str!("jobs.rs")),
    ("admin", 3, include_str!("admin.rs")),
    ("bulk", 3, include_str!("bulk.rs")),
    ("ops", 3, include_str!("ops.rs")),
    ("metrics", 3, include_str!("metrics.rs")),
    ("dashboard", 3, include_str!("dashboard/guard.rs")),
    ("dashboard", 3, include_str!("dashboard/layout.rs")),
    ("dashboard", 3, include_str!("dashboard/overview.rs")),
    ("dashboard", 3, include_str!("dashboard/jobs.rs")),
    ("dashboard", 3, include_str!("dashboard/job.rs")),
    ("dashboard", 3, include_str!("dashboard/queues.rs")),
    ("dashboard", 3, include_str!("dashboard/schedules.rs")),
    ("dashboard", 3, include_str!("dashboard/workers.rs")),
    ("dashboard", 3, include_str!("dashboard/login.rs")),
    ("dashboard", 3, include_str!("dashboard/mod.rs")),
    ("progress", 3, include_str!("progress.rs")),
    ("queues", 3, include_str!("queues.rs")),
    ("schedules", 3, include_str!("schedules.rs")),
    ("server", 4, include_str!("server.rs")),
    ("openapi", 4, include_str!("openapi.rs")),
    ("routes", 5, include_str!("routes.rs")),
];

/// The `src/http` modules that `source` imports (`crate::http::x` or
/// `crate::http::{x, y}`).
fn imports(source: &str) -> Vec<String> {
    let mut out = Vec::new();
    let name = |s: &str| -> String {
        s.trim()
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || *c == '_')
            .collect()
    };
    for part in source.split("crate::http::").skip(1) {
        match part.strip_prefix('{') {
            Some(group) => {
                let group = group.split('}').next().unwrap_or("");
                out.extend(group.split(',').map(name));
            }
            None => out.push(name(part)),
        }
    }
    out
}

#[test]
fn no_module_imports_from_its_own_layer_or_above() {
    let layer = |name: &str| MODULES.iter().find(|m| m.0 == name).map(|m| m.1);
    for (name, own, source) in MODULES {
        for import in imports(source) {
            if import == *name {
                continue; // a folder module's files import each other
            }
            match layer(&import) {
                Some(l) => assert!(
                    l < *own,
                    "{name} (layer {own}) imports {import} (layer {l})"
                ),
                None => assert!(
                    import.is_empty(),
                    "{name} imports {import}, which is not in the table"
                ),
            }
        }
    }
}

#[test]
fn every_module_is_in_the_table() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http");
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if let Some(module) = name.strip_suffix(".rs") {
            let known =
                ["mod", "layers"].contains(&module) || MODULES.iter().any(|m| m.0 == module);
            assert!(known, "src/http/{name} is not in the layer table");
        }
    }
}
