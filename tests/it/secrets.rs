//! Secrets at rest in store mode. A provider key given in the clear through
//! the admin API is the one a provider call carries, is stored only sealed
//! (neither the SQLite file nor its WAL holds it), is shown only as its
//! fingerprint (a resource, a list, the config, the audit log), and is never
//! logged; a restart with the same secrets key serves it, one with another
//! key refuses the store's config with a located message. A config file
//! that writes a key in the clear is refused by `check`; `portico import`
//! seals it, and `portico export` keeps it sealed.

use crate::support::*;
use portico::store::Store;
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const SECRET: &str = "sk-test-SECRET123";

/// The `Authorization` headers the mock received.
async fn authorizations(mock: &Mock) -> Vec<String> {
    mock.requests()
        .await
        .iter()
        .filter_map(|r| r["headers"]["authorization"].as_str().map(str::to_string))
        .collect()
}

/// Runs `portico` with `env`; whether it succeeded, and stdout then stderr.
fn portico(args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let out = Command::new(portico_bin())
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("portico");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

fn store_mode_server(url: &str, state: &Path) -> String {
    format!(
        "server:\n  listeners:\n    - address: 127.0.0.1:${{PORT}}\n  admin: 127.0.0.1:${{ADMIN}}\n  threads: 2\n  \
         pid_file: ${{DIR}}/portico.pid\n  upgrade_sock: ${{DIR}}/upgrade.sock\n  store: '{url}'\n  state_dir: {}\n",
        state.display()
    )
}

async fn chat(gw: &Gateway) -> (u16, String) {
    let r = client()
        .post(gw.url("/v1/chat/completions"))
        .json(&json!({"model": "oai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

/// Every file of the store (the database, its WAL and shared memory).
fn store_bytes(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for f in ["store.db", "store.db-wal", "store.db-shm"] {
        all.extend(std::fs::read(dir.join(f)).unwrap_or_default());
    }
    all
}

fn holds(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn a_provider_key_given_in_the_clear_is_used_sealed_and_never_shown() {
    use std::os::unix::fs::PermissionsExt;
    let mock = Mock::start(SECRET).await;
    let dir = temp_dir("secrets");
    let url = format!("sqlite://{}", dir.join("store.db").display());
    let state = dir.join("state");
    let server = store_mode_server(&url, &state);
    let gw = Gateway::start(&server).await;
    // The first start made a key: 32 bytes as hex, 0600.
    let key_file = state.join("secrets-key");
    let key = std::fs::read_to_string(&key_file).expect("a first start writes the secrets key");
    assert_eq!(key.trim().len(), 64);
    assert_eq!(
        std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let token = std::fs::read_to_string(state.join("admin-token")).unwrap();
    let admin = |path: &str| format!("http://127.0.0.1:{}/admin/v1{path}", gw.admin_port);
    let c = client();
    let put = |path: &str, body: Value| c.put(admin(path)).bearer_auth(token.trim()).json(&body).send();
    let get = |path: &str| c.get(admin(path)).bearer_auth(token.trim()).send();
    let base_url = format!("http://127.0.0.1:{}/v1", mock.port);
    let provider = json!({"kind": "openai", "base_url": base_url, "keys": [{"value": SECRET}]});
    let r = put("/resources/ai_provider/oai", provider).await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    let shown = r.text().await.unwrap();
    let r = put("/resources/route/llm", json!({"paths": ["/v1/*"], "ai": {}}))
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());

    // The provider is called with the key.
    let (status, body) = chat(&gw).await;
    assert_eq!(status, 200, "{body}\n{}", gw.log());
    assert_eq!(authorizations(&mock).await, [format!("Bearer {SECRET}")]);

    // Stored sealed, with its fingerprint; never in the database's files.
    let store = Store::open(&url).await.unwrap();
    let stored = store.get("ai_provider", "oai").await.unwrap().unwrap().body;
    let blob = stored["keys"][0]["sealed"].as_str().unwrap().to_string();
    let fingerprint = stored["keys"][0]["fingerprint"].as_str().unwrap().to_string();
    assert!(
        blob.starts_with("v1:") && fingerprint.starts_with("sha256:"),
        "{stored}"
    );
    assert!(
        !holds(&store_bytes(&dir), SECRET),
        "the store's files hold the key in the clear"
    );
    assert!(holds(&store_bytes(&dir), &blob));
    let last_good = std::fs::read(state.join("last-good.yaml")).unwrap();
    assert!(!holds(&last_good, SECRET));

    // Shown as the fingerprint only: the write's answer, a resource, a list,
    // the config and the audit log.
    let redacted = json!({"sealed": "<redacted>", "fingerprint": fingerprint});
    let one: Value = get("/resources/ai_provider/oai").await.unwrap().json().await.unwrap();
    assert_eq!(one["keys"][0], redacted, "{one}");
    let mut texts = vec![shown, one.to_string()];
    for path in ["/resources/ai_provider", "/config", "/audit"] {
        texts.push(get(path).await.unwrap().text().await.unwrap());
    }
    for text in &texts {
        assert!(!text.contains(SECRET) && !text.contains(&blob), "{text}");
    }
    assert!(
        texts[4].contains(&fingerprint),
        "the audit shows the fingerprint: {}",
        texts[4]
    );

    // Written back as read (another header added): the stored key stays.
    let mut back = one.clone();
    back["headers"] = json!({"x-team": "a"});
    let r = put("/resources/ai_provider/oai", back).await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    let again = store.get("ai_provider", "oai").await.unwrap().unwrap().body;
    assert_eq!(again["keys"][0]["sealed"], blob.as_str());
    assert_eq!(chat(&gw).await.0, 200);
    // A redacted key the provider does not hold: refused, with its place.
    let other = json!({"kind": "openai", "base_url": base_url,
                       "keys": [{"sealed": "<redacted>", "fingerprint": "sha256:0000000000000000"}]});
    let r = put("/resources/ai_provider/oai", other).await.unwrap();
    assert_eq!(r.status(), 422);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["errors"][0]["path"], "keys[0]", "{v}");

    // A consumer's key given in the clear is kept as its digest.
    let consumer = json!({"credentials": {"api_keys": [{"value": "team-key-1"}]}});
    let r = put("/resources/consumer/c", consumer).await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    let stored = store.get("consumer", "c").await.unwrap().unwrap().body;
    let digest = "db0e9db1f51dc6924f708f93416146039061624cce47433fbb5cde8d808fd993"; // sha256 of team-key-1
    assert_eq!(stored["credentials"]["api_keys"][0], json!({"sha256": digest}));
    assert!(!holds(&store_bytes(&dir), "team-key-1"));

    // `portico export` keeps it sealed.
    let (ok, exported) = portico(&["export", "--store", &url], &[]);
    assert!(
        ok && exported.contains(&blob) && !exported.contains(SECRET),
        "{exported}"
    );

    // A restart with the same key serves it.
    // A copy: a gateway's folder goes with it.
    let config = dir.join("gateway.yaml");
    std::fs::copy(gw.config_path(), &config).unwrap();
    let config_text = std::fs::read_to_string(&config).unwrap();
    drop(gw);
    let gw = Gateway::start(&server).await;
    assert_eq!(chat(&gw).await.0, 200, "{}", gw.log());
    // The key in the environment wins over the one in state_dir.
    let config = config.to_str().unwrap();
    let (ok, out) = portico(&["check", "-c", config], &[("PORTICO_SECRETS_KEY", key.trim())]);
    assert!(ok, "{out}");
    let log = gw.log();
    drop(gw);
    assert!(!log.contains(SECRET), "the log holds the key:\n{log}");

    // Another key: the store's config is refused, located, without the key.
    let wrong = "22".repeat(32);
    let (ok, out) = portico(&["check", "-c", config], &[("PORTICO_SECRETS_KEY", &wrong)]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("ai.providers.oai.keys[0]: the sealed secret does not open") && out.contains(&fingerprint),
        "{out}"
    );
    assert!(!out.contains(SECRET) && !out.contains(&blob), "{out}");
    std::fs::write(dir.join("wrong.yaml"), &config_text).unwrap();
    let mut run = Command::new(portico_bin())
        .args(["run", "-c"])
        .arg(dir.join("wrong.yaml"))
        .env("PORTICO_SECRETS_KEY", &wrong)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = run.try_wait().unwrap() {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = run.kill();
            panic!("portico served with the wrong secrets key");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(!status.success());
}

#[tokio::test]
async fn a_config_file_never_holds_a_key_in_the_clear_and_import_seals_it() {
    let dir = temp_dir("secrets-file");
    let file = dir.join("p.yaml");
    std::fs::write(
        &file,
        format!(
            "server:\n  listeners: [{{address: 127.0.0.1:0}}]\n  state_dir: {}\n\
             ai:\n  providers:\n    oai:\n      kind: openai\n      keys:\n        - value: {SECRET}\n",
            dir.join("state").display()
        ),
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let (ok, out) = portico(&["check", "-c", path], &[]);
    assert!(!ok);
    assert!(
        out.contains("p.yaml:9:") && out.contains("ai.providers.oai.keys[0].value: a secret in the clear"),
        "{out}"
    );
    assert!(!out.contains(SECRET), "{out}");
    let url = format!("sqlite://{}", dir.join("store.db").display());
    let key = "11".repeat(32);
    let env = [("PORTICO_SECRETS_KEY", key.as_str())];
    let (ok, out) = portico(&["import", path, "--store", &url], &env);
    assert!(ok, "{out}");
    assert!(!holds(&store_bytes(&dir), SECRET));
    let (ok, exported) = portico(&["export", "--store", &url], &env);
    assert!(
        ok && exported.contains("sealed: v1:") && !exported.contains(SECRET),
        "{exported}"
    );
    // The export imports again (a backup) with the same key, not another.
    let backup = dir.join("backup.yaml");
    std::fs::write(&backup, &exported).unwrap();
    let backup = backup.to_str().unwrap();
    let (ok, out) = portico(&["import", backup, "--store", &url], &env);
    assert!(ok, "{out}");
    let (ok, out) = portico(
        &["import", backup, "--store", &url],
        &[("PORTICO_SECRETS_KEY", &"22".repeat(32))],
    );
    assert!(!ok && out.contains("does not open"), "{out}");
}
