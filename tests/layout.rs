//! The shape of the code: the import graph of `jobs/` has no cycle, and no
//! stage (ingest, reconcile, publish) imports another; only `run` sequences
//! them. Read from the sources, so a new `use` that breaks the layering
//! fails here with the path it closes.

use std::collections::{BTreeMap, BTreeSet};

const STAGES: [&str; 3] = ["ingest", "reconcile", "publish"];

/// Every `.rs` file under `jobs/`, in its layer folders.
fn sources() -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    crate::common::walk(
        std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/jobs")),
        &mut |p| {
            if p.extension().is_some_and(|e| e == "rs") {
                out.push(p.to_path_buf());
            }
        },
    );
    out.sort();
    out
}

/// Module name → the modules of the crate it names (`crate::x`, `use crate::{x, y::z}`).
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let files: Vec<(String, String)> = sources()
        .into_iter()
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().to_string();
            // Comments (doc links among them) name modules without importing them.
            let code: Vec<String> = std::fs::read_to_string(&p)
                .unwrap()
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .map(str::to_string)
                .collect();
            (name, code.join("\n"))
        })
        .filter(|(name, _)| name != "lib" && name != "main")
        .collect();
    let modules: BTreeSet<String> = files.iter().map(|(n, _)| n.clone()).collect();
    files
        .iter()
        .map(|(name, text)| {
            let mut named = BTreeSet::new();
            for (i, _) in text.match_indices("crate::") {
                let rest = &text[i + "crate::".len()..];
                let words: Vec<&str> = match rest.strip_prefix('{') {
                    // A group: the first segment of each entry, nested groups flattened.
                    Some(group) => group[..group.find('}').unwrap_or(group.len())]
                        .split([',', '{'])
                        .map(|w| w.trim().split("::").next().unwrap_or(""))
                        .collect(),
                    None => vec![rest
                        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                        .next()
                        .unwrap_or("")],
                };
                named.extend(
                    words
                        .into_iter()
                        .filter(|w| modules.contains(*w) && *w != name)
                        .map(str::to_string),
                );
            }
            (name.clone(), named)
        })
        .collect()
}

/// A cycle through `from`, as the list of modules it passes, if there is one.
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        g: &BTreeMap<String, BTreeSet<String>>,
        at: &str,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == at) {
            let mut c = path[i..].to_vec();
            c.push(at.to_string());
            return Some(c);
        }
        if !done.insert(at.to_string()) {
            return None;
        }
        path.push(at.to_string());
        for next in g.get(at).into_iter().flatten() {
            if let Some(c) = visit(g, next, path, done) {
                return Some(c);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    for m in graph.keys() {
        let mut path = vec![];
        if let Some(c) = visit(graph, m, &mut path, &mut done) {
            return Some(c);
        }
        done.clear();
    }
    None
}

#[test]
fn the_import_graph_has_no_cycle() {
    let g = imports();
    assert!(
        g["publish"].contains("store"),
        "the parser reads imports: {g:?}"
    );
    if let Some(c) = cycle(&g) {
        panic!("import cycle: {}", c.join(" -> "));
    }
}

#[test]
fn no_stage_imports_another() {
    let g = imports();
    for stage in STAGES {
        let others: Vec<&String> = g[stage]
            .iter()
            .filter(|m| STAGES.contains(&m.as_str()))
            .collect();
        assert!(others.is_empty(), "{stage} imports {others:?}");
    }
}

#[test]
fn a_cycle_is_found_when_there_is_one() {
    let g: BTreeMap<String, BTreeSet<String>> = [("a", "b"), ("b", "c"), ("c", "a")]
        .into_iter()
        .map(|(x, y)| (x.to_string(), BTreeSet::from([y.to_string()])))
        .collect();
    assert_eq!(cycle(&g).unwrap(), ["a", "b", "c", "a"]);
}

#[test]
fn only_the_generator_opens_a_root_without_the_landing_guard() {
    let mut callers: Vec<String> = sources()
        .into_iter()
        .filter(|p| std::fs::read_to_string(p).unwrap().contains("as_sender("))
        .map(|p| p.file_name().unwrap().to_string_lossy().to_string())
        .collect();
    callers.sort();
    assert_eq!(callers, ["generate.rs", "store.rs"]);
}
