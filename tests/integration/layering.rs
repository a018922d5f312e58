//! The architecture, kept: every module imports only from its own layer or those below it, no
//! modules import each other in a cycle, and no source file grows past the size a reader can hold.
//!
//! It reads the `crate::` paths of every file under `src/` (test modules excluded: a test may
//! reach anything it checks) and compares them with the table of layers below.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level modules, lowest layer first. A module may use its own layer and those below.
const LAYERS: &[(&str, u8)] = &[
    ("core", 0),
    ("targets", 1),
    ("settings", 2),
    ("input", 3),
    ("output", 4),
    ("send", 5),
    ("report", 6),
    ("app", 7),
    ("cli", 8),
    ("demo", 8),
    ("simulator", 8),
];

/// What `lib.rs` re-exports at the crate root, by the module each name comes from: a
/// `crate::Error` counts as a use of `app`.
const ROOT_REEXPORTS: &[(&str, &str)] = &[
    ("Error", "app"),
    ("run", "app"),
    ("error_chain", "app"),
    ("Summary", "output::summary"),
    ("exit", "output::summary"),
    ("Settings", "settings"),
];

/// The most lines a source file may have (tests included).
const MAX_FILE_LINES: usize = 800;

fn layer(top: &str) -> Option<u8> {
    LAYERS
        .iter()
        .find(|(name, _)| *name == top)
        .map(|(_, l)| *l)
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/send/pool.rs` -> `send::pool`; `src/output/mod.rs` -> `output`; `src/lib.rs` -> ``.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .filter(|p| p != "mod" && p != "lib" && p != "main")
        .collect();
    parts.join("::")
}

/// The file's text without its unit-test module (everything from `#[cfg(test)]` + `mod tests`).
fn without_tests(text: &str) -> &str {
    match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    }
}

/// The crate paths a text names: `crate::a::b::C`, and each path of a group such as
/// `use crate::{a::b, c}` or `use crate::send::{auth, pool}`.
fn crate_paths(text: &str) -> Vec<String> {
    let mut paths = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("crate::") {
        let after = &rest[i + "crate::".len()..];
        let end = after
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(after.len());
        let prefix = &after[..end];
        match after[end..].strip_prefix('{') {
            Some(group) => {
                let close = group.find('}').unwrap_or(group.len());
                for item in group[..close].split(',').map(str::trim) {
                    let item = item.split(" as ").next().unwrap_or(item);
                    paths.push(format!("{prefix}{item}"));
                }
            }
            None => paths.push(prefix.trim_end_matches(':').to_string()),
        }
        rest = &after[end..];
    }
    paths
}

/// The longest known module that `path` names (`send::pool::Stop` -> `send::pool`).
fn resolve(path: &str, modules: &BTreeSet<String>) -> Option<String> {
    let parts: Vec<&str> = path.split("::").collect();
    if let Some((_, module)) = ROOT_REEXPORTS.iter().find(|(name, _)| *name == parts[0]) {
        return Some(module.to_string());
    }
    (1..=parts.len())
        .rev()
        .map(|n| parts[..n].join("::"))
        .find(|m| modules.contains(m))
}

struct Graph {
    /// module -> the modules it uses (itself and its own ancestors excluded).
    edges: BTreeMap<String, BTreeSet<String>>,
}

fn graph() -> (Graph, Vec<(String, usize)>) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let texts: Vec<(String, String)> = files
        .iter()
        .map(|f| (module_of(&src, f), std::fs::read_to_string(f).unwrap()))
        .collect();
    let sizes = files
        .iter()
        .zip(&texts)
        .map(|(f, (_, t))| (f.display().to_string(), t.lines().count()))
        .collect();
    let modules: BTreeSet<String> = texts.iter().map(|(m, _)| m.clone()).collect();
    let mut edges = BTreeMap::new();
    for (module, text) in &texts {
        let used: BTreeSet<String> = crate_paths(without_tests(text))
            .iter()
            .filter_map(|p| resolve(p, &modules))
            .filter(|m| m != module && !module.starts_with(&format!("{m}::")) && !m.is_empty())
            .collect();
        edges.insert(module.clone(), used);
    }
    (Graph { edges }, sizes)
}

#[test]
fn no_module_imports_from_a_layer_above_it() {
    let (graph, _) = graph();
    let mut wrong = Vec::new();
    for (module, used) in &graph.edges {
        let Some(top) = module.split("::").next().filter(|t| !t.is_empty()) else {
            continue; // lib.rs and main.rs stand above everything
        };
        let own = layer(top).unwrap_or_else(|| panic!("{module}: its folder is not in LAYERS"));
        for target in used {
            let theirs = layer(target.split("::").next().unwrap()).unwrap();
            if theirs > own {
                wrong.push(format!(
                    "{module} (layer {own}) uses {target} (layer {theirs})"
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports that point up:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn no_modules_import_each_other_in_a_cycle() {
    let (graph, _) = graph();
    // Depth-first search for a back edge; report the cycle it closes.
    fn visit(
        node: &str,
        graph: &Graph,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
        cycles: &mut Vec<String>,
    ) {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(node.to_string());
            cycles.push(cycle.join(" -> "));
            return;
        }
        if done.contains(node) {
            return;
        }
        stack.push(node.to_string());
        for next in graph.edges.get(node).into_iter().flatten() {
            visit(next, graph, stack, done, cycles);
        }
        stack.pop();
        done.insert(node.to_string());
    }
    let (mut done, mut cycles) = (BTreeSet::new(), Vec::new());
    for node in graph.edges.keys() {
        visit(node, &graph, &mut Vec::new(), &mut done, &mut cycles);
    }
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

#[test]
fn no_source_file_is_longer_than_a_reader_can_hold() {
    let (_, sizes) = graph();
    let long: Vec<String> = sizes
        .iter()
        .filter(|(_, n)| *n > MAX_FILE_LINES)
        .map(|(f, n)| format!("{f}: {n} lines"))
        .collect();
    assert!(
        long.is_empty(),
        "files over {MAX_FILE_LINES} lines:\n{}",
        long.join("\n")
    );
}

#[test]
fn the_path_reader_sees_grouped_and_nested_imports() {
    let text = "use crate::{aa::bb, cc::dd::Ee};\nuse crate::ff::{gg as h, ii};\nlet x = crate::jj::kk::LL;";
    assert_eq!(
        crate_paths(text),
        ["aa::bb", "cc::dd::Ee", "ff::gg", "ff::ii", "jj::kk::LL"]
    );
}
