//! `portico admin ...`: the admin API from a shell, for the common tasks
//! (tokens, subscriptions, credentials, resources, import and export), so an
//! operator can script without curl. A thin client: every command is one
//! admin API call, refused or answered exactly as the API answers it.
//!
//! Where to call and with which token: `--url`/`PORTICO_ADMIN_URL` and
//! `--token`/`PORTICO_ADMIN_TOKEN`; otherwise the process's config file
//! (`-c`, default `/etc/portico/portico.yaml`) gives the admin listener
//! (`server.admin`) and the bootstrap token (`state_dir/admin-token`).

use super::ProcessError;
use clap::{Args, Subcommand};
use serde_json::{json, Value};
use std::path::PathBuf;

/// How to reach the admin API.
#[derive(Debug, Args)]
pub struct Connection {
    /// The admin listener, e.g. http://127.0.0.1:9901.
    #[arg(long, env = "PORTICO_ADMIN_URL", global = true)]
    pub url: Option<String>,
    /// An admin token.
    #[arg(long, env = "PORTICO_ADMIN_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// The process's config file, for the admin address and token when not given.
    #[arg(short, long, default_value = "/etc/portico/portico.yaml", global = true)]
    pub config: PathBuf,
}

/// The `portico admin` commands.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Who the token is, and its roles.
    Whoami,
    /// Admin tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Subscriptions: list, ask, approve, reject, cancel.
    #[command(subcommand)]
    Subscription(SubscriptionCommand),
    /// An application's credentials.
    #[command(subcommand)]
    Credential(CredentialCommand),
    /// List resources of a kind (service, application, route, team, user, ...), or show one.
    Get {
        /// The kind (service, application, route, team, user, subscription, ...).
        kind: String,
        /// One resource's name; none: list them.
        name: Option<String>,
        /// Filters: field=value.
        #[arg(long = "where", value_name = "FIELD=VALUE")]
        filters: Vec<String>,
    },
    /// Create or replace a resource from a JSON or YAML file (`-` for stdin).
    Put {
        /// The kind.
        kind: String,
        /// The name.
        name: String,
        /// The body (`-`: stdin).
        file: PathBuf,
    },
    /// Delete a resource.
    Delete {
        /// The kind.
        kind: String,
        /// The name.
        name: String,
    },
    /// Replace the store's config with a file (checked first; `--dry-run` only shows the changes).
    Import {
        /// The config file (YAML).
        file: PathBuf,
        /// Only show what would change.
        #[arg(long)]
        dry_run: bool,
    },
    /// Print the store's config as YAML.
    Export,
}

/// `portico admin token ...`.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make a token (shown once): a system role, a team role with its team, or a user's roles.
    Create {
        /// admin, operator, auditor, team_admin, service_admin, consumer_admin or developer.
        #[arg(long)]
        role: Option<String>,
        /// The team of a team role.
        #[arg(long)]
        team: Option<String>,
        /// A user whose roles the token carries (instead of --role).
        #[arg(long)]
        user: Option<String>,
        /// Lifetime, e.g. 30d; default: until revoked.
        #[arg(long)]
        expires_in: Option<String>,
        /// What it is for.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token by id.
    Revoke {
        /// The token's id.
        id: String,
    },
}

/// `portico admin subscription ...`.
#[derive(Debug, Subcommand)]
pub enum SubscriptionCommand {
    /// List subscriptions, e.g. `--status pending`.
    List {
        /// pending, approved, rejected or cancelled.
        #[arg(long)]
        status: Option<String>,
        /// Only this service's.
        #[arg(long)]
        service: Option<String>,
        /// Only this application's.
        #[arg(long)]
        application: Option<String>,
    },
    /// Ask for an application's subscription to a service.
    Ask {
        /// The application.
        application: String,
        /// The service.
        service: String,
        /// Why, for whoever approves.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Approve a subscription (`application:service`).
    Approve {
        /// `application:service`.
        name: String,
        /// Why, recorded with the decision.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Reject a subscription.
    Reject {
        /// `application:service`.
        name: String,
        /// Why, recorded with the decision.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Cancel a subscription.
    Cancel {
        /// `application:service`.
        name: String,
        /// Why, recorded with the decision.
        #[arg(long)]
        reason: Option<String>,
    },
}

/// `portico admin credential ...`.
#[derive(Debug, Subcommand)]
pub enum CredentialCommand {
    /// Make a credential (an API key or a password is shown once).
    Create {
        /// The application.
        application: String,
        /// api_key, basic or jwt.
        #[arg(long = "type", default_value = "api_key")]
        kind: String,
        /// A name to revoke it by; default: made up.
        #[arg(long)]
        id: Option<String>,
        /// RFC 3339, e.g. 2027-01-31T00:00:00Z.
        #[arg(long)]
        expires_at: Option<String>,
        /// jwt: the token subject.
        #[arg(long)]
        subject: Option<String>,
        /// basic: the login.
        #[arg(long)]
        username: Option<String>,
    },
    /// Revoke a credential by id.
    Revoke {
        /// The application.
        application: String,
        /// The credential's id (`basic` for the Basic login).
        id: String,
    },
}

fn fail(e: impl std::fmt::Display) -> ProcessError {
    ProcessError::Startup(e.to_string())
}

/// The admin URL and token: given, or from the process's config file.
fn resolve(conn: &Connection) -> Result<(String, String), ProcessError> {
    let loaded = match (&conn.url, &conn.token) {
        (Some(_), Some(_)) => None,
        _ => Some(crate::config::load(&conn.config).map_err(|e| {
            fail(format!(
                "give --url and --token (or PORTICO_ADMIN_URL and PORTICO_ADMIN_TOKEN), or a readable config: {e}"
            ))
        })?),
    };
    let server = loaded.as_ref().map(|l| &l.config.server);
    let url = match (&conn.url, server.and_then(|s| s.admin.as_ref())) {
        (Some(u), _) => u.trim_end_matches('/').to_string(),
        (None, Some(a)) => format!("http://{a}"),
        (None, None) => return Err(fail("the config has no `server.admin`; give --url")),
    };
    let token = match (&conn.token, server) {
        (Some(t), _) => t.clone(),
        (None, Some(s)) => {
            let path = s.state_dir.join("admin-token");
            std::fs::read_to_string(&path)
                .map(|t| t.trim().to_string())
                .map_err(|e| {
                    fail(format!(
                        "cannot read the admin token at {}: {e}; give --token",
                        path.display()
                    ))
                })?
        }
        (None, None) => return Err(fail("give --token")),
    };
    Ok((url, token))
}

fn read_body(file: &PathBuf) -> Result<Vec<u8>, ProcessError> {
    if file.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf).map_err(fail)?;
        return Ok(buf);
    }
    std::fs::read(file).map_err(|e| fail(format!("{}: {e}", file.display())))
}

/// One call: (method, path, body as JSON or raw text).
enum Body {
    None,
    Json(Value),
    Raw(Vec<u8>),
}

fn plan(cmd: &AdminCommand) -> Result<(&'static str, String, Body), ProcessError> {
    use AdminCommand as A;
    let reasoned = |r: &Option<String>| r.as_ref().map_or(Body::None, |r| Body::Json(json!({"reason": r})));
    Ok(match cmd {
        A::Whoami => ("GET", "/me".into(), Body::None),
        A::Token(TokenCommand::Create {
            role,
            team,
            user,
            expires_in,
            description,
        }) => (
            "POST",
            "/tokens".into(),
            Body::Json(
                json!({"role": role, "team": team, "user": user, "expires_in": expires_in,
                              "description": description}),
            ),
        ),
        A::Token(TokenCommand::List) => ("GET", "/tokens".into(), Body::None),
        A::Token(TokenCommand::Revoke { id }) => ("DELETE", format!("/tokens/{id}"), Body::None),
        A::Subscription(SubscriptionCommand::List {
            status,
            service,
            application,
        }) => {
            let q: Vec<String> = [("status", status), ("service", service), ("application", application)]
                .iter()
                .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
                .collect();
            ("GET", format!("/subscriptions?limit=1000&{}", q.join("&")), Body::None)
        }
        A::Subscription(SubscriptionCommand::Ask {
            application,
            service,
            reason,
        }) => (
            "POST",
            "/subscriptions".into(),
            Body::Json(json!({"application": application, "service": service, "reason": reason})),
        ),
        A::Subscription(SubscriptionCommand::Approve { name, reason }) => {
            ("POST", format!("/subscriptions/{name}/approve"), reasoned(reason))
        }
        A::Subscription(SubscriptionCommand::Reject { name, reason }) => {
            ("POST", format!("/subscriptions/{name}/reject"), reasoned(reason))
        }
        A::Subscription(SubscriptionCommand::Cancel { name, reason }) => {
            ("POST", format!("/subscriptions/{name}/cancel"), reasoned(reason))
        }
        A::Credential(CredentialCommand::Create {
            application,
            kind,
            id,
            expires_at,
            subject,
            username,
        }) => (
            "POST",
            format!("/applications/{application}/credentials"),
            Body::Json(
                json!({"type": kind, "id": id, "expires_at": expires_at, "subject": subject,
                              "username": username}),
            ),
        ),
        A::Credential(CredentialCommand::Revoke { application, id }) => (
            "DELETE",
            format!("/applications/{application}/credentials/{id}"),
            Body::None,
        ),
        A::Get { kind, name, filters } => match name {
            Some(n) => ("GET", format!("/resources/{kind}/{n}"), Body::None),
            None => (
                "GET",
                format!("/resources/{kind}?limit=1000&{}", filters.join("&")),
                Body::None,
            ),
        },
        A::Put { kind, name, file } => {
            let text = read_body(file)?;
            let v: serde_yaml::Value =
                serde_yaml::from_slice(&text).map_err(|e| fail(format!("{}: {e}", file.display())))?;
            let v = serde_json::to_value(v).map_err(fail)?;
            ("PUT", format!("/resources/{kind}/{name}"), Body::Json(v))
        }
        A::Delete { kind, name } => ("DELETE", format!("/resources/{kind}/{name}"), Body::None),
        A::Import { file, dry_run } => (
            "POST",
            format!("/config?dry_run={dry_run}"),
            Body::Raw(read_body(file)?),
        ),
        A::Export => ("GET", "/config".into(), Body::None),
    })
}

/// JSON bodies without their unset (null) fields: the API's optional fields are absent, not null.
fn without_nulls(v: Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(o.into_iter().filter(|(_, v)| !v.is_null()).collect()),
        other => other,
    }
}

/// Runs one `portico admin` command; what to print.
pub fn run(conn: &Connection, cmd: &AdminCommand) -> Result<String, ProcessError> {
    let (url, token) = resolve(conn)?;
    let (method, path, body) = plan(cmd)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(fail)?;
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .map_err(fail)?;
        let m = reqwest::Method::from_bytes(method.as_bytes()).map_err(fail)?;
        let mut req = client.request(m, format!("{url}/admin/v1{path}")).bearer_auth(token);
        req = match body {
            Body::None => req,
            Body::Json(v) => req.json(&without_nulls(v)),
            Body::Raw(b) => req.header("content-type", "application/yaml").body(b),
        };
        let resp = req.send().await.map_err(|e| fail(format!("{url}: {e}")))?;
        let status = resp.status();
        let text = resp.text().await.map_err(fail)?;
        let shown = match serde_json::from_str::<Value>(&text) {
            Ok(v) => serde_json::to_string_pretty(&v).unwrap_or(text),
            Err(_) => text,
        };
        if status.is_success() {
            Ok(shown)
        } else {
            Err(fail(format!("{method} {path}: {status}\n{shown}")))
        }
    })
}
