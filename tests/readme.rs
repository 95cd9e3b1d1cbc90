//! README.md works line by line on a fresh clone (issue 17). Hermetic and fast: nothing is
//! installed, nothing needs the network; the long commands are run where they belong (the demo and
//! the deployment checks by `scripts/test.sh`), and this test checks that the README still says
//! what they are.
//!
//! - Every ```` ```sh ```` block is preceded by `<!-- readme-check: run in scripts/test.sh -->` (each
//!   repo script it calls is called by `scripts/test.sh`) or `<!-- readme-check: manual (<why>) -->`.
//! - Every block parses (`bash -n`), and every command in it exists as written: repo scripts are
//!   there, executable, start with `#!` and accept the options the README gives them; `.venv` tools
//!   are made by an earlier README step; `cargo lambda` and `sam` are only used with the directory
//!   that holds them on `PATH`; `--data-file`, `--env-file`, `--example`, `-r` name files that exist
//!   (or that the README writes first, git-ignored); other programs are the documented prerequisites.
//! - No command hides in an indented code block (which this test would not see).
//! - Every repository path the README and `docs/reference.md` name exists; links stay in the repo.
//! - `scripts/clean.sh --dry-run` runs and removes nothing.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    fs::read_to_string(repo().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// One fenced `sh` block: where it starts, its marker comment, its section and its text.
struct Block {
    line: usize,
    marker: Option<String>,
    section: String,
    code: String,
}

fn sh_blocks(text: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut section = String::new();
    let mut previous = "";
    let mut lines = text.lines().enumerate();
    while let Some((n, line)) = lines.next() {
        if let Some(title) = line.strip_prefix("## ") {
            section = title.to_owned();
        }
        if line.trim_start().starts_with("```sh") || line.trim_start().starts_with("```bash") {
            let code: Vec<&str> = lines
                .by_ref()
                .map(|(_, l)| l)
                .take_while(|l| !l.trim_start().starts_with("```"))
                .collect();
            let marker = previous
                .trim()
                .strip_prefix("<!-- readme-check:")
                .and_then(|m| m.strip_suffix("-->"))
                .map(|m| m.trim().to_owned());
            blocks.push(Block {
                line: n + 1,
                marker,
                section: section.clone(),
                code: code.join("\n"),
            });
        }
        if !line.trim().is_empty() {
            previous = line;
        }
    }
    blocks
}

/// The commands of a block: continuation lines joined, heredoc bodies and comments removed, split
/// on `&&`, `||`, `;` and `|`; each a list of words without quotes.
fn commands(code: &str) -> Vec<Vec<String>> {
    let joined = code.replace("\\\n", " ");
    let mut out = Vec::new();
    let mut heredoc_end: Option<String> = None;
    for line in joined.lines() {
        if let Some(end) = &heredoc_end {
            if line.trim() == end {
                heredoc_end = None;
            }
            continue;
        }
        if let Some(at) = line.find("<<") {
            let tag: String = line[at + 2..]
                .trim_start_matches('-')
                .trim_matches(|c: char| c == '\'' || c == '"' || c.is_whitespace())
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            heredoc_end = Some(tag);
        }
        let line = match line.find(" #") {
            Some(at) => &line[..at],
            None if line.trim_start().starts_with('#') => "",
            None => line,
        };
        for part in line
            .split("&&")
            .flat_map(|p| p.split("||"))
            .flat_map(|p| p.split([';', '|']))
        {
            let words: Vec<String> = part
                .split_whitespace()
                .map(|w| w.trim_matches(|c| c == '"' || c == '\'').to_owned())
                .skip_while(|w| w == "do" || w == "then")
                .collect();
            if !words.is_empty() {
                out.push(words);
            }
        }
    }
    out
}

fn is_executable_script(path: &Path) -> bool {
    let Ok(meta) = fs::metadata(path) else { return false };
    meta.is_file()
        && meta.permissions().mode() & 0o111 != 0
        && fs::read_to_string(path).is_ok_and(|t| t.starts_with("#!"))
}

/// `$PWD/.venv/bin` or `$PWD/../.venv/bin` (from `cdk/`) as a path from the repository root.
fn path_dir(entry: &str, cwd: &str) -> String {
    let rel = entry.trim_start_matches("$PWD/");
    let full = Path::new(cwd).join(rel);
    let mut parts: Vec<String> = Vec::new();
    for c in full.components() {
        match c.as_os_str().to_str().unwrap_or_default() {
            ".." => {
                if parts.pop().is_none() {
                    parts.push("..".into());
                }
            }
            "." | "" => {}
            other => parts.push(other.to_owned()),
        }
    }
    parts.join("/")
}

#[test]
fn every_shell_block_says_whether_a_test_runs_it() {
    let test_sh = read("scripts/test.sh");
    let blocks = sh_blocks(&read("README.md"));
    assert!(blocks.len() >= 8, "README.md has {} sh blocks", blocks.len());
    for b in &blocks {
        let at = format!("README.md:{} ({})", b.line, b.section);
        let marker = b.marker.as_deref().unwrap_or_else(|| {
            panic!("{at}: no <!-- readme-check: run in scripts/test.sh | manual (why) --> before the block")
        });
        if marker == "run in scripts/test.sh" {
            for cmd in commands(&b.code) {
                let script = &cmd[0];
                if script.starts_with("scripts/") && script != "scripts/test.sh" {
                    let called = test_sh
                        .lines()
                        .any(|l| !l.trim_start().starts_with('#') && l.contains(script.as_str()));
                    assert!(
                        called,
                        "{at}: says scripts/test.sh runs it, but scripts/test.sh never calls {script}"
                    );
                }
            }
        } else {
            let why = marker.strip_prefix("manual (").and_then(|m| m.strip_suffix(')'));
            assert!(
                why.is_some_and(|w| w.len() >= 10),
                "{at}: marker {marker:?} is neither `run in scripts/test.sh` nor `manual (<why not run>)`"
            );
        }
    }
}

#[test]
fn every_shell_block_parses() {
    for b in sh_blocks(&read("README.md")) {
        let out = Command::new("bash")
            .args(["-n", "-c", &b.code])
            .output()
            .expect("bash runs");
        assert!(
            out.status.success(),
            "README.md:{}: bash -n: {}",
            b.line,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Programs the README may call that no step of it installs: the documented prerequisites (Rust,
/// Python 3, Node.js with npm) and shell builtins.
const PREREQUISITES: &[&str] = &[
    "cargo", "rustup", "python3", "node", "npm", "npx", "bash", "git", "cd", "export", "echo", "cat", "for", "done",
    "kill",
];

/// The README read in order, as a newcomer runs it: what earlier steps made (files, tools) and
/// which directories the current section put on PATH.
struct Walk {
    root: PathBuf,
    gitignore: String,
    deploy_reqs: String,
    /// Files and tools earlier README steps create.
    made: BTreeSet<String>,
    section: String,
    /// PATH entries exported in this section.
    exported: BTreeSet<String>,
}

/// One command of a block, once its leading assignments are read.
struct Step<'a> {
    at: String,
    cwd: String,
    path: BTreeSet<String>,
    program: &'a str,
    args: Vec<&'a str>,
}

impl Step<'_> {
    fn arg_after(&self, flag: &str) -> Option<&str> {
        let i = self.args.iter().position(|a| *a == flag)?;
        self.args.get(i + 1).copied()
    }
}

impl Walk {
    fn new() -> Self {
        Walk {
            root: repo(),
            gitignore: read(".gitignore"),
            deploy_reqs: read("scripts/requirements-deploy.txt"),
            made: BTreeSet::new(),
            section: String::new(),
            exported: BTreeSet::new(),
        }
    }

    fn block(&mut self, b: &Block) {
        if b.section != self.section {
            self.section = b.section.clone();
            self.exported.clear();
        }
        let mut cwd = String::new();
        for cmd in commands(&b.code) {
            let at = format!("README.md:{} `{}`", b.line, cmd.join(" "));
            let (path, rest) = self.assignments(&at, &cwd, &cmd);
            let Some((program, args)) = rest.split_first() else {
                continue;
            };
            let step = Step {
                at,
                cwd: cwd.clone(),
                path,
                program,
                args: args.to_vec(),
            };
            if program == &"cd" {
                cwd = path_dir(step.args[0], &cwd);
                assert!(self.root.join(&cwd).is_dir(), "{}: no directory {cwd}", step.at);
                continue;
            }
            // Files the command writes (`cat > relay.env`), for later steps.
            if let Some(file) = step.arg_after(">") {
                self.made.insert(path_dir(file, &cwd));
            }
            self.check_program(&step);
            self.check_files(&step);
            self.record_made(&step);
        }
    }

    /// Reads `NAME=value` words before the command (or after `export`); returns PATH as the command
    /// sees it and the words left.
    fn assignments<'c>(&mut self, at: &str, cwd: &str, cmd: &'c [String]) -> (BTreeSet<String>, Vec<&'c str>) {
        let mut path = self.exported.clone();
        let mut words = cmd.iter().map(String::as_str).peekable();
        let mut is_export = false;
        while let Some(w) = words.peek() {
            if *w == "export" {
                is_export = true;
            } else if let Some((name, value)) = w.split_once('=') {
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
                    break;
                }
                if name == "PATH" {
                    for entry in value.split(':').filter(|e| !e.starts_with("$PATH")) {
                        let dir = path_dir(entry, cwd);
                        assert!(
                            self.made.contains(&dir) || self.root.join(&dir).is_dir(),
                            "{at}: PATH entry {dir} is made by no earlier step"
                        );
                        path.insert(dir.clone());
                        if is_export {
                            self.exported.insert(dir);
                        }
                    }
                }
            } else {
                break;
            }
            words.next();
        }
        (path, words.collect())
    }

    /// The program exists as written: a tool an earlier step made, an executable repo script that
    /// knows its options, or a prerequisite; tools that need PATH have it.
    fn check_program(&self, step: &Step<'_>) {
        let (at, program, args) = (&step.at, step.program, &step.args);
        if program.starts_with(".venv/") {
            assert!(
                self.made.contains(program),
                "{at}: {program} is made by no earlier README step"
            );
        } else if program.contains('/') {
            let file = self.root.join(&step.cwd).join(program);
            assert!(
                is_executable_script(&file),
                "{at}: {program} is not an executable script with #!"
            );
            let text = fs::read_to_string(&file).unwrap_or_default();
            for opt in args.iter().filter(|a| a.starts_with("--")) {
                assert!(text.contains(opt), "{at}: {program} knows no option {opt}");
            }
            for script_arg in args.iter().filter(|a| a.ends_with(".py")) {
                assert!(
                    self.root.join(&step.cwd).join(script_arg).is_file(),
                    "{at}: no file {script_arg}"
                );
            }
        } else if program == "sam" {
            assert!(
                step.path.contains(".venv/deploy/bin"),
                "{at}: `sam` without .venv/deploy/bin on PATH"
            );
            assert!(
                self.made.contains(".venv/deploy/bin/sam"),
                "{at}: no earlier step installs the SAM CLI"
            );
        } else {
            assert!(
                PREREQUISITES.contains(&program),
                "{at}: {program} is neither a repo script nor a prerequisite"
            );
        }
        if program == "cargo" && args.first() == Some(&"lambda") {
            assert!(
                step.path.contains(".venv/bin") && self.made.contains(".venv/bin/cargo-lambda"),
                "{at}: `cargo lambda` without .venv/bin on PATH"
            );
        }
        if program == "npx" {
            let cwd = &step.cwd;
            assert!(
                self.made.contains(&format!("{cwd}/node_modules")),
                "{at}: npx before npm ci in {cwd}"
            );
        }
    }

    /// Files given to `--data-file`, `--example`, `-r` and `--env-file` exist or were written first;
    /// an env file is git-ignored.
    fn check_files(&self, step: &Step<'_>) {
        let at = &step.at;
        for flag in ["--data-file", "--example", "-r", "--env-file"] {
            let Some(value) = step.arg_after(flag) else { continue };
            if value.contains('$') {
                continue;
            }
            let file = match flag {
                "--example" => format!("examples/{value}.rs"),
                _ => path_dir(value, &step.cwd),
            };
            assert!(
                self.made.contains(&file) || self.root.join(&file).is_file(),
                "{at}: {flag} {value}: no such file"
            );
            if flag == "--env-file" {
                assert!(
                    self.gitignore.lines().any(|l| l.trim() == file),
                    "{at}: {file} holds local settings but is not git-ignored"
                );
            }
        }
    }

    /// What the step makes, for the steps after it.
    fn record_made(&mut self, step: &Step<'_>) {
        let (at, program, args) = (&step.at, step.program, &step.args);
        if program == "npm" && args.first() == Some(&"ci") {
            let cwd = &step.cwd;
            assert!(
                self.root.join(cwd).join("package-lock.json").is_file(),
                "{at}: no package-lock.json in {cwd:?}"
            );
            self.made.insert(format!("{cwd}/node_modules"));
        }
        if program == "scripts/bootstrap.sh" || program == "scripts/demo.sh" {
            self.made
                .extend([".venv/bin", ".venv/bin/python", ".venv/bin/cargo-lambda"].map(String::from));
        }
        if program == "python3" && args.windows(2).any(|w| w[0] == "venv" && w[1] == ".venv/deploy") {
            self.made
                .extend([".venv/deploy/bin", ".venv/deploy/bin/python", ".venv/deploy/bin/pip"].map(String::from));
        }
        if program == ".venv/deploy/bin/pip" && step.arg_after("-r") == Some("scripts/requirements-deploy.txt") {
            assert!(
                self.deploy_reqs.lines().any(|l| l.starts_with("aws-sam-cli==")),
                "{at}: requirements-deploy.txt pins no aws-sam-cli"
            );
            self.made.insert(".venv/deploy/bin/sam".into());
        }
    }
}

#[test]
fn every_command_exists_as_written() {
    let mut walk = Walk::new();
    for b in sh_blocks(&read("README.md")) {
        walk.block(&b);
    }
}

#[test]
fn no_command_hides_in_an_indented_block() {
    let mut fenced = false;
    for (n, line) in read("README.md").lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        let Some(code) = line.strip_prefix("    ") else {
            continue;
        };
        let command_like = ["scripts/", "cargo ", "sam ", "npx ", "npm ", "cd ", "PATH=", ".venv/"]
            .iter()
            .any(|p| code.trim_start().starts_with(p));
        assert!(
            fenced || !command_like,
            "README.md:{}: a command in an indented block: fence it as ```sh with a readme-check marker",
            n + 1
        );
    }
}

#[test]
fn paths_named_in_the_docs_exist() {
    let root = repo();
    let roots = [
        "src/",
        "tests/",
        "scripts/",
        "events/",
        "docs/",
        "bench/",
        "benches/",
        "examples/",
        "cdk/",
        "fuzz/",
        ".ci/",
    ];
    // Made by the scripts, so absent from a fresh clone.
    let generated = [
        "cdk/node_modules",
        "cdk/cdk.out",
        "fuzz/target",
        "fuzz/artifacts",
        "fuzz/coverage",
    ];
    for doc in ["README.md", "docs/reference.md"] {
        let mut fenced = false;
        let text: String = read(doc)
            .lines()
            .filter(|l| {
                let fence = l.trim_start().starts_with("```");
                fenced ^= fence;
                !fence && !fenced
            })
            .collect::<Vec<_>>()
            .join("\n");
        // `code` spans naming repository paths, read from the repository root.
        for span in text.split('`').skip(1).step_by(2) {
            let candidate = span.trim_end_matches('/');
            let named = roots.iter().any(|r| candidate.starts_with(r)) || candidate.starts_with("LICENSE-");
            if !named || candidate.contains(['<', '*', '…', ' ']) || generated.iter().any(|g| candidate.starts_with(g))
            {
                continue;
            }
            assert!(root.join(candidate).exists(), "{doc}: `{span}` does not exist");
        }
        // Markdown links to files, read from the document's directory.
        for link in text.split("](").skip(1).filter_map(|r| r.split(')').next()) {
            if link.starts_with("http") || link.starts_with('#') {
                continue;
            }
            let file = link.split('#').next().unwrap_or_default();
            let base = Path::new(doc).parent().unwrap_or(Path::new(""));
            let target = path_dir(file, base.to_str().unwrap_or_default());
            assert!(!target.starts_with(".."), "{doc}: link {link} leaves the repository");
            assert!(root.join(&target).exists(), "{doc}: link {link} points at nothing");
        }
    }
    assert!(
        !read("README.md").contains("shared/CONTRACT.md"),
        "README.md points outside the repository"
    );
}

#[test]
fn clean_dry_run_removes_nothing() {
    let out = Command::new("bash")
        .arg(repo().join("scripts/clean.sh"))
        .arg("--dry-run")
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "scripts/clean.sh --dry-run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout
            .lines()
            .last()
            .is_some_and(|l| l.starts_with("clean: would free")),
        "{stdout}"
    );
}
