//! `portico check` (and `portico run`) on bad configs: non-zero exit and the
//! exact `FILE:LINE:COL: path: message` line, like `nginx -t`.

use crate::support::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Lines 1-4 of most cases: a valid upstream `api`.
const API: &str = "upstreams:\n  api:\n    targets:\n      - address: 127.0.0.1:9000\n";

/// One bad config and the message expected after `FILE:`.
struct Case {
    name: &'static str,
    yaml: String,
    expect: &'static str,
}

fn api(rest: &str) -> String {
    format!("{API}{rest}")
}

/// Lines 1-11: upstream `api` and service `pets` with an OpenAPI document
/// of two operations, then `rest`.
fn pets(rest: &str) -> String {
    format!(
        "{API}services:\n  - name: pets\n    openapi:\n      openapi: 3.0.0\n      paths:\n        \
         /pets: {{get: {{operationId: listPets}}}}\n        /pets/{{id}}: {{get: {{operationId: getPet}}}}\n{rest}"
    )
}

fn cases() -> Vec<Case> {
    let c = |name, yaml: String, expect| Case { name, yaml, expect };
    vec![
        c(
            "unknown top-level key",
            api("routes:\n  - name: main\n    upstream: api\nlogging: {}\n"),
            "8:1: unknown field `logging`, expected one of `server`, `upstreams`, `routes`, \
             `consumers`, `ai`, `prompt_apis`, `default_policies`, `services`, `subscriptions`",
        ),
        c(
            "unknown key in a route",
            api("routes:\n  - name: main\n    upstream: api\n    timeout: 5s\n"),
            "8:5: routes[0]: unknown field `timeout`, expected one of `name`, `service`, `hosts`, `paths`, `methods`, \
             `upstream`, `response`, `ai`, `mcp`, `strip_prefix`, `rewrite`, `retries`, `timeouts`, `policies`, \
             `skip_default_policies`, `call_log`, `retire`",
        ),
        c(
            "route referencing an unknown upstream",
            api("routes:\n  - name: main\n    upstream: api\n  - name: bills\n    upstream: billing\n"),
            "9:15: routes[1].upstream: no upstream named \"billing\"",
        ),
        c(
            "duplicate route names",
            api("routes:\n  - name: main\n    upstream: api\n  - name: main\n    paths: [/other]\n    upstream: api\n"),
            "8:11: routes[1].name: duplicate route name \"main\"",
        ),
        c(
            "bad duration (a bare number)",
            api("    timeouts:\n      read: 30s\n      idle: 1m\n      connect: 5\n"),
            "8:16: upstreams.api.timeouts.connect: invalid duration \"5\" (time unit needed, for example 5sec or 5ms); \
             use a unit, e.g. \"500ms\", \"5s\", \"1m\"",
        ),
        c(
            "a call log on a database Portico does not speak",
            format!("server:\n  call_log:\n    url: mysql://root:pw@db/calls\n{API}"),
            "3:10: server.call_log.url: \"mysql\" is not a database Portico speaks: use sqlite://PATH or postgres://...",
        ),
        c(
            "a call-log sample out of range",
            api("routes:\n  - name: main\n    upstream: api\n    call_log: {sample: 2}\n"),
            "8:24: routes[0].call_log.sample: must be between 0 and 1",
        ),
        c(
            "bad listen address",
            format!("server:\n  listeners:\n    - address: 127.0.0.1:8080\n    - address: localhost:80\n{API}"),
            "4:16: server.listeners[1].address: invalid listen address \"localhost:80\"; use ip:port, e.g. 0.0.0.0:8080",
        ),
        c(
            "keepalive timeout of a fraction of a second",
            format!("server:\n  keepalive_timeout: 1500ms\n{API}"),
            "2:22: server.keepalive_timeout: must be whole seconds, from 1s to 1h",
        ),
        c(
            "keepalive timeout of zero",
            format!("server:\n  keepalive_timeout: 0s\n{API}"),
            "2:22: server.keepalive_timeout: must be whole seconds, from 1s to 1h",
        ),
        c(
            "client write buffer too large",
            format!("server:\n  client_write_buffer: 2MiB\n{API}"),
            "2:24: server.client_write_buffer: must be at most 1MiB: every client connection holds it",
        ),
        c(
            "client read buffer too large",
            format!("server:\n  client_read_buffer: 1GiB\n{API}"),
            "2:23: server.client_read_buffer: must be at most 1MiB: every client connection holds it",
        ),
        c(
            "negative weight",
            api("        weight: -1\n"),
            "5:17: upstreams.api.targets[0].weight: invalid type: integer `-1`, expected usize",
        ),
        c(
            "zero weight",
            api("      - address: 127.0.0.1:9001\n        weight: 0\n"),
            "6:17: upstreams.api.targets[1].weight: must be between 1 and 1000",
        ),
        c(
            "unknown algorithm",
            "upstreams:\n  api:\n    algorithm: fastest\n    targets:\n      - address: 127.0.0.1:9000\n".into(),
            "3:16: upstreams.api.algorithm: unknown variant `fastest`, expected one of `round_robin`, `weighted`, \
             `random`, `consistent_hash`, `least_conn`",
        ),
        c(
            "hash_on header without hash_key",
            api("    algorithm: consistent_hash\n    hash_on: header\n"),
            "6:14: upstreams.api.hash_on: hash_key is required when hash_on is header or cookie",
        ),
        c(
            "path without a leading slash",
            api("routes:\n  - name: main\n    paths: [/ok, users]\n    upstream: api\n"),
            "7:18: routes[0].paths[1]: path \"users\" must start with /",
        ),
        c(
            "`*` in the middle of a path",
            api("routes:\n  - name: main\n    paths:\n      - /api/*/users\n    upstream: api\n"),
            "8:9: routes[0].paths[0]: path \"/api/*/users\": `*` is only allowed as a final `/*`",
        ),
        c(
            "rewrite using a parameter the path lacks",
            api("routes:\n  - name: main\n    paths: [\"/users/{id}\"]\n    rewrite: /v2/users/{uid}\n    upstream: api\n"),
            "8:14: routes[0].rewrite: {uid} is not a parameter of every path of this route",
        ),
        c(
            "strip_prefix on an exact path",
            api("routes:\n  - name: main\n    paths: [/exact]\n    strip_prefix: true\n    upstream: api\n"),
            "8:19: routes[0].strip_prefix: only applies to prefix paths like /api/*",
        ),
        c(
            "route with both upstream and response",
            api("routes:\n  - name: main\n    upstream: api\n    response:\n      status: 200\n"),
            "8:5: routes[0].response: a route has one of an upstream, a fixed response, `ai` or `mcp` \
             (an `mcp` route names its upstream too)",
        ),
        c(
            "fixed response with an invalid header name",
            api("routes:\n  - name: main\n    response:\n      headers:\n        bad header: x\n"),
            "9:21: routes[0].response.headers.bad header: invalid header \"bad header\"",
        ),
        c(
            "route with neither upstream nor response",
            api("routes:\n  - name: main\n    upstream: api\n  - name: nothing\n    paths: [/n]\n"),
            // The route's mapping starts at its first key, `name` (column 5).
            "8:5: routes[1]: a route needs an upstream, a fixed response, `ai` or `mcp`",
        ),
        c(
            "lower-case method",
            api("routes:\n  - name: main\n    methods: [GET, get]\n    upstream: api\n"),
            "7:20: routes[0].methods[1]: invalid method \"get\"; use upper case, e.g. GET",
        ),
        c(
            "empty targets",
            "upstreams:\n  api:\n    targets: []\n".into(),
            "3:5: upstreams.api.targets: at least one target is required",
        ),
        c(
            "TLS certificate file missing",
            "server:\n  listeners:\n    - address: 127.0.0.1:8443\n      tls:\n        certificates:\n\
             \x20         - cert: /nonexistent/portico/cert.pem\n            key: /nonexistent/portico/key.pem\n"
                .into(),
            // The certificate's mapping starts at its first key, `cert` (column 13).
            "6:13: server.listeners[0].tls.certificates[0]: cannot read certificate /nonexistent/portico/cert.pem: \
             No such file or directory (os error 2)",
        ),
        c(
            "unknown policy",
            api("routes:\n  - name: main\n    upstream: api\n    policies:\n      - key_atuh: {}\n"),
            "9:9: routes[0].policies[0]: unknown variant `key_atuh`, expected one of `ip`, `cors`, `key_auth`, `basic_auth`, `jwt`, \
             `oauth2_introspection`, `acl`, `rate_limit`, `concurrency`, `size_limit`, `transform`, `cache`",
        ),
        c(
            "unknown field in a policy",
            api("routes:\n  - name: main\n    upstream: api\n    policies:\n      - rate_limit: {requests: 5, per: minute, brust: 2}\n"),
            "9:48: routes[0].policies[0].rate_limit: unknown field `brust`, expected one of `requests`, `per`, `burst`, \
             `key`, `header`, `redis`",
        ),
        c(
            "rate limit per an unknown unit",
            api("routes:\n  - name: main\n    upstream: api\n    policies:\n      - rate_limit: {requests: 5, per: fortnight}\n"),
            "9:40: routes[0].policies[0].rate_limit.per: unknown variant `fortnight`, expected one of `second`, \
             `minute`, `hour`",
        ),
        c(
            "rate limit of zero",
            api("routes:\n  - name: main\n    upstream: api\n    policies:\n      - rate_limit: {requests: 0, per: second}\n"),
            "9:9: routes[0].policies[0].rate_limit: requests: must be at least 1",
        ),
        c(
            "bad CIDR",
            api("default_policies:\n  - ip: {allow: [10.0.0.0/33]}\nroutes:\n  - name: main\n    upstream: api\n"),
            "6:5: default_policies[0].ip: allow[0]: \"10.0.0.0/33\" is not an IP address or CIDR",
        ),
        c(
            "CORS wildcard with credentials",
            api("routes:\n  - name: main\n    upstream: api\n    policies:\n      - cors: {allow_origins: ['*'], allow_credentials: true}\n"),
            "9:9: routes[0].policies[0].cors: allow_origins[0]: \"*\" cannot be combined with allow_credentials; \
             list the origins",
        ),
        c(
            "API key digest that is not SHA-256",
            api("consumers:\n  - name: a\n    credentials:\n      api_keys: [{sha256: abc}]\n"),
            "8:27: consumers[0].credentials.api_keys[0].sha256: must be 64 hex digits (a SHA-256 digest)",
        ),
        c(
            "API key from an unset environment variable",
            api("consumers:\n  - name: a\n    credentials:\n      api_keys: [{env: PORTICO_TEST_UNSET_KEY}]\n"),
            "8:19: consumers[0].credentials.api_keys[0]: environment variable PORTICO_TEST_UNSET_KEY is not set",
        ),
        c(
            "password hash of an unknown kind",
            api("consumers:\n  - name: a\n    credentials:\n      basic: {password_hash: plaintext}\n"),
            "8:30: consumers[0].credentials.basic.password_hash: password_hash must be a bcrypt ($2b$...) or argon2 \
             ($argon2id$...) hash",
        ),
        c(
            "bad regex in a path rewrite",
            api("routes:\n  - name: main\n    upstream: api\n    policies:\n      - transform: {request: {path: {regex: '(', replace: /x}}}\n"),
            "9:9: routes[0].policies[0].transform: request.path.regex: invalid regex: unclosed group",
        ),
        c(
            "JWT key with an unknown algorithm",
            api("routes:\n  - name: main\n    upstream: api\n    policies:\n      - jwt: {keys: [{alg: HS999, secret: {env: X}}]}\n"),
            "9:9: routes[0].policies[0].jwt: keys[0].alg: unsupported algorithm \"HS999\"; use one of HS256 HS384 \
             HS512 RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 EdDSA",
        ),
        c(
            "Redis URL that is not one",
            api("routes:\n  - name: main\n    upstream: api\n    policies:\n      - rate_limit: {requests: 1, per: second, redis: {url: 'http://x'}}\n"),
            "9:9: routes[0].policies[0].rate_limit: redis.url: \"http://x\" is not a Redis URL; use \
             redis://host:port[/db] or rediss://",
        ),
        c(
            "Redis URL that is not one, with a password",
            api("routes:\n  - name: main\n    upstream: api\n    policies:\n      - rate_limit: {requests: 1, per: second, redis: {url: 'http://u:s3cret@x'}}\n"),
            "9:9: routes[0].policies[0].rate_limit: redis.url: \"http://u:***@x/\" is not a Redis URL; use \
             redis://host:port[/db] or rediss://",
        ),
        c(
            "unknown AI provider kind",
            api("ai:\n  providers:\n    x: {kind: opnai}\n"),
            "7:15: ai.providers.x.kind: unknown provider kind \"opnai\"; use one of openai, azure_openai, anthropic, \
             gemini, openai_compatible, mistral, deepseek, groq, together, fireworks, openrouter, xai, perplexity, cerebras, \
             deepinfra, sambanova, nvidia, moonshot, dashscope, jina, voyage, ollama, vllm, lmstudio, llamacpp",
        ),
        c(
            "model target naming an unknown provider",
            api("ai:\n  models:\n    m: {targets: [{provider: nobody, model: x}]}\n"),
            "7:30: ai.models.m.targets[0].provider: no provider named \"nobody\"",
        ),
        c(
            "ai route without the ai section",
            api("routes:\n  - name: llm\n    ai: {}\n"),
            "7:5: routes[0].ai: an `ai` route needs the top-level `ai:` section (providers and models)",
        ),
        c(
            "prompt API template with an undeclared variable",
            api("ai:\n  providers:\n    l: {kind: ollama}\nprompt_apis:\n  - {name: p, path: /p, model: l/x, template: 'Hi {{who}}'}\n"),
            "9:47: prompt_apis[0].template: {{who}} is not declared under `variables`",
        ),
        c(
            "prompt API on an unknown model",
            api("ai: {}\nprompt_apis:\n  - {name: p, path: /p, model: ghost, template: hi}\n"),
            "7:32: prompt_apis[0].model: model \"ghost\" does not exist",
        ),
        c(
            "mcp route without an upstream",
            pets("routes:\n  - name: m\n    service: pets\n    mcp: {}\n"),
            "15:5: routes[0].mcp: an `mcp` route needs `upstream`: where its tools send the operations",
        ),
        c(
            "mcp route without a service",
            pets("routes:\n  - name: m\n    upstream: api\n    mcp: {}\n"),
            "15:5: routes[0].mcp: an `mcp` route needs `service`: its tools are the operations of the \
             service's `openapi` document",
        ),
        c(
            "mcp route on a service without a document",
            api("services:\n  - name: plain\nroutes:\n  - name: m\n    service: plain\n    upstream: api\n    mcp: {}\n"),
            "9:14: routes[0].service: service \"plain\" has no `openapi` document to make the route's tools from",
        ),
        c(
            "mcp route that also answers a fixed response",
            pets("routes:\n  - name: m\n    service: pets\n    upstream: api\n    mcp: {}\n    response: {body: hi}\n"),
            "16:5: routes[0].mcp: a route has one of an upstream, a fixed response, `ai` or `mcp` \
             (an `mcp` route names its upstream too)",
        ),
        c(
            "mcp tool that is no operation",
            pets("routes:\n  - name: m\n    service: pets\n    upstream: api\n    mcp: {tools: [getPet, getPets]}\n"),
            "16:27: routes[0].mcp.tools[1]: service \"pets\" has no operation \"getPets\"",
        ),
        c(
            "mcp base path without a leading slash",
            pets("routes:\n  - name: m\n    service: pets\n    upstream: api\n    mcp: {base_path: v1}\n"),
            "16:22: routes[0].mcp.base_path: must start with /",
        ),
        c(
            "mcp tools of one name",
            format!(
                "{API}services:\n  - name: s\n    openapi:\n      openapi: 3.1.0\n      paths:\n        \
                 /a: {{get: {{operationId: list pets}}}}\n        /b: {{get: {{operationId: list_pets}}}}\n\
                 routes:\n  - name: m\n    service: s\n    upstream: api\n    mcp: {{}}\n"
            ),
            "11:9: services[0].openapi.paths./b: GET /a and GET /b are both tool \"list_pets\": give them distinct \
             operationIds, or leave one out with the route's `mcp.tools`",
        ),
        c(
            "mcp on a Swagger 2.0 document",
            format!(
                "{API}services:\n  - name: s\n    openapi: {{swagger: '2.0', paths: {{}}}}\n\
                 routes:\n  - name: m\n    service: s\n    upstream: api\n    mcp: {{}}\n"
            ),
            "7:5: services[0].openapi: a Swagger 2.0 document: convert it to OpenAPI 3 to make tools of it",
        ),
        c(
            "YAML syntax error (bad indentation)",
            api("routes:\n  - name: main\n    upstream: api\n   paths: [/x]\n"),
            "8:4: did not find expected '-' indicator, while parsing a block collection",
        ),
    ]
}

fn write(dir: &Path, name: &str, yaml: &str) -> PathBuf {
    let f = dir.join(name);
    std::fs::write(&f, yaml).expect("write config");
    f
}

fn check(file: &Path) -> (Option<i32>, String, String) {
    let out = Command::new(portico_bin())
        .args(["check", "-c"])
        .arg(file)
        .env_remove("RUST_LOG")
        .output()
        .expect("run portico check");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_configs_fail_with_the_exact_message() {
    let dir = temp_dir("check");
    let mut failures = Vec::new();
    for (i, case) in cases().iter().enumerate() {
        let file = write(&dir, &format!("case{i}.yaml"), &case.yaml);
        let (code, stdout, stderr) = check(&file);
        let expected = format!("{}:{}", file.display(), case.expect);
        if code.is_none_or(|c| c == 0) {
            failures.push(format!(
                "[{}] exit {code:?}, stdout {stdout:?}, stderr {stderr:?}",
                case.name
            ));
        } else if stderr.trim_end() != expected {
            failures.push(format!(
                "[{}]\n  expected: {expected}\n  got:      {}\n  config:\n{}",
                case.name,
                stderr.trim_end(),
                numbered(&case.yaml)
            ));
        }
        if !stdout.is_empty() {
            failures.push(format!("[{}] printed to stdout: {stdout:?}", case.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn numbered(yaml: &str) -> String {
    yaml.lines()
        .enumerate()
        .map(|(i, l)| format!("    {:>2}| {l}", i + 1))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_good_config_passes() {
    let dir = temp_dir("check-ok");
    let yaml = format!(
        "server:\n  listeners:\n    - address: 127.0.0.1:18080\n    - address: 127.0.0.1:18081\n      h2c: true\n  threads: 2\n\
         {API}    algorithm: consistent_hash\n    hash_on: header\n    hash_key: x-user\n    timeouts:\n      connect: 250ms\n\
         routes:\n  - name: users\n    paths: [\"/users/{{id}}\"]\n    methods: [GET]\n    rewrite: /v2/users/{{id}}\n    upstream: api\n\
         \x20 - name: hello\n    paths: [/hello]\n    response:\n      body: hi\n"
    );
    let file = write(&dir, "good.yaml", &yaml);
    let (code, stdout, stderr) = check(&file);
    assert_eq!(code, Some(0), "stderr: {stderr}");
    assert_eq!(stdout.trim_end(), format!("{}: ok", file.display()));
    assert_eq!(stderr, "");
}

#[test]
fn the_shipped_config_passes() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("conf/portico.yaml");
    let (code, stdout, stderr) = check(&file);
    assert_eq!(code, Some(0), "stderr: {stderr}");
    assert_eq!(stdout.trim_end(), format!("{}: ok", file.display()));
}

#[test]
fn the_policy_example_passes() {
    let out = Command::new(portico_bin())
        .args([
            "check",
            "-c",
            concat!(env!("CARGO_MANIFEST_DIR"), "/conf/examples/policies.yaml"),
        ])
        .env("PORTICO_INTROSPECTION_SECRET", "example")
        .output()
        .expect("run portico check");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn the_mcp_example_passes() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("conf/examples/mcp.yaml");
    let (code, _, stderr) = check(&file);
    assert_eq!(code, Some(0), "stderr: {stderr}");
}

#[test]
fn the_ai_example_passes() {
    let mut cmd = Command::new(portico_bin());
    cmd.args([
        "check",
        "-c",
        concat!(env!("CARGO_MANIFEST_DIR"), "/conf/examples/ai.yaml"),
    ]);
    for var in [
        "TEAM_SEARCH_KEY",
        "OPENAI_API_KEY",
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_API_KEY_2",
        "GEMINI_API_KEY",
        "GROQ_API_KEY",
        "AZURE_OPENAI_KEY",
    ] {
        cmd.env(var, "example");
    }
    let out = cmd.output().expect("run portico check");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Without the keys the check names the first missing variable.
    let out = Command::new(portico_bin())
        .args([
            "check",
            "-c",
            concat!(env!("CARGO_MANIFEST_DIR"), "/conf/examples/ai.yaml"),
        ])
        .env_remove("OPENAI_API_KEY")
        .env("TEAM_SEARCH_KEY", "x")
        .output()
        .expect("run portico check");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("environment variable"));
}

#[test]
fn run_refuses_a_bad_config_with_the_same_message() {
    let dir = temp_dir("run-bad");
    let yaml = format!(
        "server:\n  listeners:\n    - address: 127.0.0.1:{}\n  pid_file: {d}/portico.pid\n  upgrade_sock: {d}/upgrade.sock\n\
         {API}routes:\n  - name: bills\n    upstream: billing\n",
        free_port(),
        d = dir.display()
    );
    let file = write(&dir, "bad.yaml", &yaml);
    let err = dir.join("stderr.txt");
    let mut child = Command::new(portico_bin())
        .args(["run", "-c"])
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(&err).expect("stderr file")))
        .spawn()
        .expect("spawn portico run");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("portico run kept running with a bad config");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = std::fs::read_to_string(&err).unwrap_or_default();
    assert!(!status.success(), "exit {status}");
    let expected = format!(
        "{}:12:15: routes[0].upstream: no upstream named \"billing\"",
        file.display()
    );
    assert!(
        stderr.lines().any(|l| l == expected),
        "expected line {expected:?} in:\n{stderr}"
    );
    let (code, _, check_err) = check(&file);
    assert_eq!(code, Some(1));
    assert_eq!(check_err.trim_end(), expected, "check and run must agree");
}
