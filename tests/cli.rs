//! The `hub` binary's offline commands, as an operator runs them.

use std::path::Path;
use std::process::Command;

use e2e::hub_binary;

fn run(args: &[&str]) -> (i32, String) {
    run_with(args, &[("HUB_PLATFORM_TOKEN", "test-token")])
}

/// Runs `hub` with exactly these `HUB_*` variables set.
fn run_with(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut command = Command::new(hub_binary());
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("HUB_")) {
        command.env_remove(key);
    }
    let out = command.args(args).envs(env.iter().copied()).current_dir(root).output().expect("run hub");
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

#[test]
fn check_without_a_config_prints_and_checks_the_builtin_one() {
    let (code, out) = run(&["check"]);
    assert_eq!(code, 0, "{out}");
    for needed in
        ["exchange = \"hotline.orders\"", "exchange = \"petition.records\"", "builtin:terminal", "builtin:court"]
    {
        assert!(out.contains(needed), "{needed}: {out}");
    }
    assert!(out.contains("the built-in configuration: valid (4 sources"), "{out}");
}

#[test]
fn check_refuses_a_missing_token_and_warns_about_cleartext_to_another_host() {
    let (code, out) = run_with(&["check"], &[]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("the platform's token is not set") && out.contains("HUB_PLATFORM_TOKEN"), "{out}");
    let env = [("HUB_PLATFORM_TOKEN", "t"), ("HUB_PLATFORM_URL", "http://10.20.30.40:8080")];
    let (code, out) = run_with(&["check"], &env);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("warning: environment variable HUB_PLATFORM_URL: the platform URL is http:// to 10.20.30.40"),
        "{out}"
    );
}

#[test]
fn mapping_export_writes_the_shipped_mappings_and_test_takes_builtin_names() {
    let dir = std::env::temp_dir().join(format!("hub-export-{}", uuid::Uuid::new_v4().simple()));
    let (code, out) = run(&["mapping", "export", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(dir.join("court.toml").is_file() && dir.join("tables/regions.csv").is_file(), "{out}");
    let (code, out) = run(&["mapping", "export", dir.to_str().unwrap()]);
    assert_ne!(code, 0, "never overwrites: {out}");
    let (code, out) =
        run(&["mapping", "test", "--mapping", "builtin:hotline", "mappings/samples/hotline-created.json"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("\"category\": \"0101\""), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The README's first command, shortened: RabbitMQ, the embedded broker,
/// the court feed and the platform, all with faults, and the platform's
/// callbacks carried back to every agency; it must reconcile.
#[test]
fn the_demo_reconciles_every_agency() {
    let (code, out) = run(&["demo", "--duration", "8s", "--rate", "15"]);
    assert_eq!(code, 0, "{out}");
    for source in ["hotline", "petition", "terminal", "court"] {
        assert!(out.contains(&format!("[ok] {source}: every record sent is stored once")), "{source}: {out}");
    }
    assert!(!out.contains("FAILED") && !out.contains("LEFT OUT"), "{out}");
    assert!(!out.contains("a vital part of the hub died"), "a clean stop is not a death: {out}");
    // The way back: the platform's callbacks told to every origin once.
    assert!(out.contains("[ok] callbacks: every event the platform sent was taken"), "{out}");
    for origin in ["hotline", "petition", "terminal"] {
        assert!(out.contains(&format!("[ok] {origin}: every change the hub told arrived once as a change")), "{out}");
    }
    assert!(out.contains("[ok] court: every mediation outcome applied reached the court once"), "{out}");
    assert!(out.contains("/#token=demo-"), "the screen's address with the run's token: {out}");
    e2e::assert_no_personal_numbers_in(&out);
}

/// Runs `hub run` with `extra` arguments, its log going to a pipe, until
/// its HTTP source answers; stops it with SIGTERM and returns what it logged.
fn hub_run_log(extra: &[&str]) -> Vec<u8> {
    use std::process::Stdio;
    let dir = std::env::temp_dir().join(format!("hub-log-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let port = e2e::free_port();
    let cfg = dir.join("hub.toml");
    std::fs::write(
        &cfg,
        format!(
            "[store]\nurl = \"sqlite://{}\"\n[platform]\nurl = \"http://127.0.0.1:{}\"\ntoken = \"test-token\"\n\n[[sources]]\nname = \"canon\"\nmapping = \"canonical\"\ntransport = \"http\"\nlisten = \"127.0.0.1:{port}\"\nopen = true\n",
            dir.join("hub.db").display(),
            e2e::free_port()
        ),
    )
    .unwrap();
    let mut command = Command::new(hub_binary());
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("HUB_") || k == "NO_COLOR") {
        command.env_remove(key);
    }
    let child = command
        .args(["run", "--config"])
        .arg(&cfg)
        .args(extra)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn hub");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "the hub did not start");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let out = child.wait_with_output().expect("wait for the hub");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    out.stderr
}

/// Logs written to a file or a pipe carried ANSI colour codes.
#[test]
fn logs_to_a_pipe_have_no_colour_codes_and_json_lines_parse() {
    let text = hub_run_log(&[]);
    let shown = String::from_utf8_lossy(&text);
    assert!(shown.contains("starting the hub") && shown.contains("stopped"), "{shown}");
    assert!(!text.contains(&0x1b), "ESC in the log: {shown:?}");

    let json = hub_run_log(&["--log-format", "json"]);
    let shown = String::from_utf8_lossy(&json);
    assert!(!json.contains(&0x1b), "ESC in the log: {shown:?}");
    let lines: Vec<serde_json::Value> =
        shown.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect();
    assert!(lines.iter().any(|l| l["fields"]["message"] == "starting the hub" && l["level"] == "INFO"), "{shown}");
}

#[test]
fn a_new_token_goes_into_the_config_hashed_and_a_bad_one_is_refused_with_its_line() {
    let (code, out) = run(&["token", "new", "--role", "operator", "--region", "220421100"]);
    assert_eq!(code, 0, "{out}");
    let token = out.lines().find_map(|l| l.strip_prefix("token:")).unwrap().trim().to_string();
    let line = out.lines().find_map(|l| l.strip_prefix("config: ")).unwrap().to_string();
    assert!(line.starts_with("[api] tokens = [\"operator@220421100:sha256:") && !line.contains(&token), "{line}");
    assert!(out.contains(&format!("HUB_API_TOKENS=operator@220421100:{token}")), "{out}");

    let dir = std::env::temp_dir().join(format!("hub-token-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("hub.toml");
    let tokens = line.trim_start_matches("[api] ");
    std::fs::write(&cfg, format!("[server]\nlisten = \"127.0.0.1:9400\"\n\n[api]\n{tokens}\n")).unwrap();
    let (code, out) = run(&["check", "--config", cfg.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("no API tokens"), "{out}");
    std::fs::write(
        &cfg,
        "[server]\nlisten = \"127.0.0.1:9400\"\n\n[api]\ntokens = [\"viewer:in-the-clear-0123456789\"]\n",
    )
    .unwrap();
    let (code, out) = run(&["check", "--config", cfg.to_str().unwrap()]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("hub.toml:5:") && out.contains("stored hashed"), "{out}");
    // No token at all: valid, and said to be closed.
    std::fs::write(&cfg, "[server]\nlisten = \"127.0.0.1:9400\"\n").unwrap();
    let (code, out) = run(&["check", "--config", cfg.to_str().unwrap()]);
    assert!(code == 0 && out.contains("answer 401 to everyone"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A fit written to a file can be tried without rebuilding, and
/// cross-validation on a set prints figures pooled over its folds.
#[test]
fn duplicates_fit_writes_weights_evaluate_tries_them_and_folds_cross_validate() {
    let dir = std::env::temp_dir().join(format!("hub-fit-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let weights = dir.join("weights.csv");
    let set = "tests/data/dedup-handwritten-tuning.jsonl";
    let (code, out) = run(&["duplicates", "fit", "--set", set, "--sigma", "1", "--out", weights.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    let written = std::fs::read_to_string(&weights).unwrap();
    assert!(written.contains("prior sigma 1") && written.contains("\nsame_phone,"), "{written}");

    let (code, out) = run(&["duplicates", "evaluate", "--set", set, "--weights", weights.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("with the weights of") && out.contains("precision") && out.contains("review load"), "{out}");

    std::fs::write(&weights, "same_phone,lots\n").unwrap();
    let (code, out) = run(&["duplicates", "evaluate", "--set", set, "--weights", weights.to_str().unwrap()]);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("weights.csv: line 1") && out.contains("not a number"), "{out}");

    let (code, out) = run(&["duplicates", "fit", "--set", set, "--folds", "3"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.matches("fold ").count(), 3, "{out}");
    assert!(out.contains("cross-validated (3 folds, sigma 2, others 1, merge ≥ 0.90"), "{out}");
    let (code, out) = run(&["duplicates", "fit", "--set", set, "--folds", "1"]);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("--folds must be between 2 and 50"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}
