//! Running this test binary again as a child process, for what must not
//! happen in the harness's own process: installing a seccomp filter, or
//! forking (the harness has other threads; a child runs one test alone).
//!
//! The child is selected by the libtest name of the very test that spawns
//! it, plus [`ROLE`] in its environment: the test sees the variable and
//! plays the child's part. A child reports with marker lines on stdout
//! (`--nocapture`), which the parent checks, so a child that silently ran
//! no test cannot pass.

use std::process::{Command, Output};

/// The environment variable naming the part a child plays.
const ROLE: &str = "RINGLOOP_FAULTS_CHILD";

/// Whether this process is a child started to play `role`.
pub fn is_child(role: &str) -> bool {
    std::env::var(ROLE).is_ok_and(|r| r == role)
}

/// The libtest name of test `func` in module `module_path` (as given by
/// `module_path!()`: the crate name first, which libtest leaves out).
pub fn test_name(module_path: &str, func: &str) -> String {
    match module_path.split_once("::") {
        Some((_crate, rest)) => format!("{rest}::{func}"),
        None => func.to_owned(),
    }
}

/// What a child printed and how it ended.
pub struct ChildRun {
    pub output: Output,
    pub stdout: String,
    pub stderr: String,
}

impl ChildRun {
    /// The text after `marker` on the first stdout line holding it (libtest
    /// prints the test's name without a newline before its output).
    pub fn line(&self, marker: &str) -> Option<&str> {
        self.stdout
            .lines()
            .find_map(|l| l.find(marker).map(|i| &l[i + marker.len()..]))
    }

    /// Everything the child printed, for failure messages.
    pub fn dump(&self) -> String {
        format!(
            "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.output.status, self.stdout, self.stderr
        )
    }

    /// Panics unless the child exited 0 after running exactly one test.
    pub fn assert_passed(&self) {
        assert!(
            self.output.status.success(),
            "child failed:\n{}",
            self.dump()
        );
        assert!(
            self.stdout.contains("test result: ok. 1 passed"),
            "the child did not run its test:\n{}",
            self.dump()
        );
    }
}

/// Runs test `test` (a libtest name, see [`test_name`]) alone in a new
/// process of this test binary, playing `role`; waits for it to exit. The
/// child inherits this process's environment.
pub fn run(test: &str, role: &str) -> ChildRun {
    run_with_env(test, role, &[])
}

/// [`run`], with each `(name, value)` of `env` set in the child's
/// environment (`Some`) or removed from it (`None`).
pub fn run_with_env(test: &str, role: &str, env: &[(&str, Option<&str>)]) -> ChildRun {
    let exe = std::env::current_exe().expect("current_exe");
    let mut cmd = Command::new(exe);
    cmd.args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(ROLE, role);
    for &(name, value) in env {
        match value {
            Some(v) => cmd.env(name, v),
            None => cmd.env_remove(name),
        };
    }
    let output = cmd.output().expect("spawn the test binary as a child");
    ChildRun {
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        output,
    }
}
