//! `scimsync completions SHELL` and the hidden `scimsync man DIR`: made from the command line's
//! own definitions, so they name every command (new ones included) and nothing else.

use crate::cli_support::scimsync;
use clap::CommandFactory as _;
use scimsync::cli::Cli;

/// The names of the commands `--help` lists (the hidden ones are not).
fn visible_commands() -> Vec<String> {
    Cli::command().get_subcommands().filter(|c| !c.is_hide_set()).map(|c| c.get_name().to_owned()).collect()
}

fn completions(shell: &str) -> String {
    let out = scimsync().args(["completions", shell]).output().unwrap();
    assert!(out.status.success(), "completions {shell}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn completions_name_every_command_in_each_shell() {
    let commands = visible_commands();
    assert!(commands.iter().any(|c| c == "completions"), "{commands:?}");
    let bash = completions("bash");
    let zsh = completions("zsh");
    let fish = completions("fish");
    assert!(bash.contains("complete -F _scimsync"), "{bash}");
    assert!(zsh.starts_with("#compdef scimsync"), "{zsh}");
    assert!(fish.contains("complete -c scimsync"), "{fish}");
    for command in &commands {
        assert!(bash.contains(&format!("scimsync,{command})")), "bash: no {command}");
        assert!(zsh.contains(&format!("({command})")), "zsh: no {command}");
        assert!(fish.contains(&format!("-a \"{command}\"")), "fish: no {command}");
    }
    // Options of a command, global ones included.
    assert!(bash.contains("--detailed-exitcode") && bash.contains("--config"), "{bash}");
    // bash can parse what it is given.
    let check = std::process::Command::new("bash").args(["-n", "-c", &bash]).output().unwrap();
    assert!(check.status.success(), "bash -n: {}", String::from_utf8_lossy(&check.stderr));
}

#[test]
fn an_unknown_shell_is_refused_naming_the_ones_there_are() {
    let out = scimsync().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("invalid value 'tcsh'"), "{stderr}");
    for shell in ["bash", "zsh", "fish"] {
        assert!(stderr.contains(shell), "{shell} not offered: {stderr}");
    }
    assert!(out.stdout.is_empty());
}

#[test]
fn man_writes_one_page_per_command_and_is_hidden_from_help() {
    let dir = tempfile::tempdir().unwrap();
    let pages = dir.path().join("man");
    let out = scimsync().arg("man").arg(&pages).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut written: Vec<String> =
        std::fs::read_dir(&pages).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    written.sort();
    let mut expected: Vec<String> = visible_commands()
        .iter()
        .map(|c| format!("scimsync-{c}.1"))
        .chain(["scimsync.1".to_owned()])
        .collect();
    expected.sort();
    assert_eq!(written, expected);
    let plan = std::fs::read_to_string(pages.join("scimsync-plan.1")).unwrap();
    assert!(plan.starts_with(".ie \\n(.g .ds Aq") || plan.contains(".TH scimsync-plan 1"), "{plan}");
    assert!(plan.contains(".TH scimsync-plan 1") && plan.contains("detailed\\-exitcode"), "{plan}");

    let help = scimsync().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("completions") && !help.lines().any(|l| l.trim_start().starts_with("man ")),
        "{help}"
    );
    // A directory that cannot be made is an error naming it.
    let blocked = dir.path().join("file");
    std::fs::write(&blocked, "").unwrap();
    let out = scimsync().arg("man").arg(blocked.join("man")).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot write the manual pages into") && stderr.contains("file/man"), "{stderr}");
}
