//! The emulator's modules import each other without a cycle: the `crate::` paths in the code of
//! `src/*.rs` (comments and string literals aside) form a directed acyclic graph. Shared types
//! and constants belong in `model`, which imports no other module of the crate.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

fn src() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The code of a Rust file without comments, string and character literals (each replaced by a
/// space), so only real paths remain.
fn code_only(text: &str) -> String {
    let c: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let at = |i: usize| c.get(i).copied().unwrap_or('\0');
    while i < c.len() {
        match (c[i], at(i + 1)) {
            ('/', '/') => {
                while i < c.len() && c[i] != '\n' {
                    i += 1;
                }
            }
            ('/', '*') => {
                let mut depth = 0;
                while i < c.len() {
                    if c[i] == '/' && at(i + 1) == '*' {
                        depth += 1;
                        i += 2;
                    } else if c[i] == '*' && at(i + 1) == '/' {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
                out.push(' ');
            }
            ('r', '"' | '#') => {
                // Raw string: r"…", r#"…"#, ... (`r#ident` is a raw identifier: kept).
                let mut j = i + 1;
                let mut hashes = 0;
                while at(j) == '#' {
                    hashes += 1;
                    j += 1;
                }
                if at(j) != '"' {
                    out.push(c[i]);
                    i += 1;
                    continue;
                }
                j += 1;
                loop {
                    if j >= c.len() {
                        break;
                    }
                    if c[j] == '"' && (1..=hashes).all(|k| at(j + k) == '#') {
                        j += 1 + hashes;
                        break;
                    }
                    j += 1;
                }
                i = j;
                out.push(' ');
            }
            ('"', _) => {
                i += 1;
                while i < c.len() && c[i] != '"' {
                    i += if c[i] == '\\' { 2 } else { 1 };
                }
                i += 1;
                out.push(' ');
            }
            ('\'', '\\') => {
                // An escaped character literal: '\'', '\n', '\u{..}'.
                i += 2;
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
                out.push(' ');
            }
            ('\'', _) if at(i + 2) == '\'' => {
                i += 3;
                out.push(' ');
            }
            (ch, _) => {
                out.push(ch);
                i += 1;
            }
        }
    }
    out
}

fn ident_at(code: &[char], mut i: usize) -> (String, usize) {
    while code.get(i).is_some_and(|c| c.is_whitespace()) {
        i += 1;
    }
    let start = i;
    while code
        .get(i)
        .is_some_and(|c| c.is_alphanumeric() || *c == '_')
    {
        i += 1;
    }
    (code[start..i].iter().collect(), i)
}

/// The first path segments after each `crate::`, including inside `crate::{a::X, b}` groups.
fn crate_refs(code: &str) -> BTreeSet<String> {
    let c: Vec<char> = code.chars().collect();
    let mut refs = BTreeSet::new();
    let mut i = 0;
    while let Some(pos) = code_find(&c, i, "crate::") {
        let before = pos.checked_sub(1).map(|p| c[p]);
        i = pos + "crate::".len();
        if before.is_some_and(|b| b.is_alphanumeric() || b == '_' || b == '$') {
            continue;
        }
        while c.get(i).is_some_and(|c| c.is_whitespace()) {
            i += 1;
        }
        if c.get(i) == Some(&'{') {
            // Top-level names of the group.
            let mut depth = 0;
            let mut expect_name = true;
            while i < c.len() {
                match c[i] {
                    '{' => {
                        depth += 1;
                        if depth == 1 {
                            expect_name = true;
                        }
                        i += 1;
                    }
                    '}' => {
                        depth -= 1;
                        i += 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    ',' if depth == 1 => {
                        expect_name = true;
                        i += 1;
                    }
                    ch if depth == 1 && expect_name && (ch.is_alphanumeric() || ch == '_') => {
                        let (name, next) = ident_at(&c, i);
                        refs.insert(name);
                        expect_name = false;
                        i = next;
                    }
                    _ => i += 1,
                }
            }
        } else {
            let (name, next) = ident_at(&c, i);
            refs.insert(name);
            i = next;
        }
    }
    refs
}

fn code_find(c: &[char], from: usize, needle: &str) -> Option<usize> {
    let n: Vec<char> = needle.chars().collect();
    (from..c.len().saturating_sub(n.len() - 1)).find(|&i| c[i..i + n.len()] == n[..])
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// Module → modules it uses, for every top-level module of the library (`src/x.rs`,
/// `src/x/**.rs`); `lib.rs` and `main.rs` are the roots, not modules.
fn module_graph() -> Graph {
    let root = src();
    let mut sources: BTreeMap<String, String> = BTreeMap::new();
    for path in rust_files(&root) {
        let rel = path.strip_prefix(&root).expect("under src");
        let first = rel.components().next().expect("a component");
        let name = Path::new(first.as_os_str())
            .file_stem()
            .expect("a name")
            .to_string_lossy()
            .into_owned();
        if rel.components().count() == 1 && (name == "lib" || name == "main") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read source");
        sources.entry(name).or_default().push_str(&code_only(&text));
    }
    let modules: BTreeSet<String> = sources.keys().cloned().collect();
    sources
        .iter()
        .map(|(name, code)| {
            let deps = crate_refs(code)
                .into_iter()
                .filter(|d| d != name && modules.contains(d))
                .collect();
            (name.clone(), deps)
        })
        .collect()
}

/// A cycle of the graph (its modules in order, the first repeated at the end), if any.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &Graph,
        state: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match state.get(node) {
            Some(2) => return None,
            Some(1) => {
                let from = path.iter().position(|n| n == node).unwrap_or(0);
                let mut cycle = path[from..].to_vec();
                cycle.push(node.to_owned());
                return Some(cycle);
            }
            _ => {}
        }
        state.insert(node.to_owned(), 1);
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, state, path) {
                return Some(cycle);
            }
        }
        path.pop();
        state.insert(node.to_owned(), 2);
        None
    }
    let mut state = BTreeMap::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut state, &mut Vec::new()))
}

fn shown(graph: &Graph) -> String {
    graph
        .iter()
        .map(|(m, deps)| {
            let deps: Vec<&str> = deps.iter().map(String::as_str).collect();
            format!("  {m} → {{{}}}", deps.join(", "))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_modules_import_each_other_without_a_cycle() {
    let graph = module_graph();
    println!("module graph:\n{}", shown(&graph));
    assert!(
        graph.len() >= 10,
        "found too few modules: {graph:?} (is the parser broken?)"
    );
    if let Some(cycle) = find_cycle(&graph) {
        panic!(
            "the emulator's modules import each other in a circle: {}\n\
             Move what they share into `model` (or invert the call).\nGraph:\n{}",
            cycle.join(" → "),
            shown(&graph)
        );
    }
}

#[test]
fn model_imports_no_other_module() {
    let graph = module_graph();
    assert_eq!(
        graph.get("model").map(BTreeSet::len),
        Some(0),
        "`model` is the bottom of the graph:\n{}",
        shown(&graph)
    );
}

#[test]
fn the_parser_sees_imports_and_not_comments_or_strings() {
    let code = code_only(
        "use crate::a::X;\nuse crate::{b::{Y, Z}, c};\n// crate::d::Q\n/* crate::e */\n\
         let s = \"crate::f\"; let r = r#\"crate::g\"#; let q = '\"'; let l: &'static str;\n\
         f(crate::h::go()); $crate::i::j; notcrate::k;\n",
    );
    let refs: Vec<String> = crate_refs(&code).into_iter().collect();
    assert_eq!(refs, ["a", "b", "c", "h"]);
}

#[test]
fn the_cycle_finder_finds_cycles() {
    let graph = |edges: &[(&str, &str)]| {
        let mut g = Graph::new();
        for (a, b) in edges {
            g.entry((*a).to_owned())
                .or_default()
                .insert((*b).to_owned());
            g.entry((*b).to_owned()).or_default();
        }
        g
    };
    assert_eq!(
        find_cycle(&graph(&[("a", "b"), ("b", "c"), ("a", "c")])),
        None
    );
    assert_eq!(
        find_cycle(&graph(&[("a", "b"), ("b", "c"), ("c", "a")])),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
}
