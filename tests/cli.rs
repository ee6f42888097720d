//! The `hub` binary's offline commands, as an operator runs them.

use std::path::Path;
use std::process::Command;

use e2e::hub_binary;

fn run(args: &[&str]) -> (i32, String) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new(hub_binary()).args(args).current_dir(root).output().expect("run hub");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn mapping_test_shows_the_ticket_masked_or_the_reasons() {
    let (code, out) =
        run(&["mapping", "test", "--mapping", "mappings/hotline.toml", "mappings/samples/hotline-created.json"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("\"category\": \"0101\"") && out.contains("+86*******1234"), "{out}");
    assert!(!out.contains("13904371234") && !out.contains("+8613904371234"), "phone masked: {out}");

    let (code, out) =
        run(&["mapping", "test", "--mapping", "mappings/hotline.toml", "mappings/samples/bad-hotline-bad-time.json"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("would be quarantined") && out.contains("callTime"), "{out}");
}

#[test]
fn check_reports_every_mistake_with_its_line() {
    let dir = std::env::temp_dir().join(format!("hub-check-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("hub.toml");
    std::fs::write(&cfg, "[platform]\nurl = \"ftp://x\"\n\n[delivery]\nconcurrency = 0\n").unwrap();
    let (code, out) = run(&["check", "--config", cfg.to_str().unwrap()]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("hub.toml:2:7:") && out.contains("hub.toml:5:15:") && out.contains("2 errors found"), "{out}");
    let (code, out) = run(&["check", "--config", "docs/hub.example.toml"]);
    assert_eq!(code, 0, "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}
