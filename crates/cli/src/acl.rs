//! `drover acl …` (bootstrap, tokens) and `drover login`: the client side of ACL tokens.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use client::{AclToken, AclTokens, CreatedToken, NewToken};
use master::peer::Method;

use crate::cluster::{CliError, MasterFlag};
use crate::output::{self, fail, fetch, or_na, table};
use crate::profile::{self, Profile};

/// `drover acl …`.
#[derive(Args)]
#[command(after_help = "\
Examples:
  drover acl bootstrap
  drover acl token create --name ci --policy read --ttl 24h
  drover acl token create --name team-a --policy apps-write:/team-a/
  drover acl token list
  drover acl token revoke 6f0e5b3e-…")]
pub struct AclArgs {
    #[command(flatten)]
    master: MasterFlag,
    #[command(subcommand)]
    command: AclCommand,
}

#[derive(Subcommand)]
enum AclCommand {
    /// Create the first management token (once per cluster); its secret is shown once.
    #[command(after_help = "Example:\n  drover acl bootstrap --master 127.0.0.1:8080")]
    Bootstrap {
        /// Print the token as JSON.
        #[arg(long)]
        json: bool,
    },
    /// ACL tokens: create, list, revoke, self.
    #[command(
        after_help = "Examples:\n  drover acl token list\n  drover acl token create --name ci --policy read"
    )]
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token; its secret is shown once.
    #[command(after_help = "\
Policies: read (read everything), apps-write:/PREFIX/ (write apps under the prefix, read
everything), operator (leadership, nodes, masters, eviction; read everything), management
(everything, ACL tokens included). Repeat --policy for several.

Example:
  drover acl token create --name deploy-bot --policy apps-write:/team-a/ --ttl 30d")]
    Create {
        /// A name for people.
        #[arg(long)]
        name: String,
        /// A policy (repeatable).
        #[arg(long = "policy", required = true, value_name = "POLICY")]
        policies: Vec<String>,
        /// How long it works: e.g. 90s, 30m, 12h, 30d [default: forever].
        #[arg(long, value_name = "DURATION", value_parser = ttl_seconds)]
        ttl: Option<u64>,
        /// Print the token as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List tokens (accessor ids, names, policies; never secrets).
    #[command(after_help = "Example:\n  drover acl token list --json")]
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by its accessor id; it stops working on every master at once.
    #[command(
        after_help = "Example:\n  drover acl token revoke 6f0e5b3e-2c4d-4c1e-9a55-0d8f3c1b2a77"
    )]
    Revoke {
        /// The token's accessor id (see `drover acl token list`).
        accessor_id: String,
    },
    /// Show the token this CLI uses.
    #[command(name = "self", after_help = "Example:\n  drover acl token self")]
    Whoami,
}

/// `drover login`.
#[derive(Args)]
#[command(after_help = "\
Checks the token with the master (GET /v1/acl/token/self), then writes master, token and
ca_file to the config file ($DROVER_CONFIG, else $XDG_CONFIG_HOME/drover/config.toml, else
~/.config/drover/config.toml; mode 0600). Later commands use it unless --master, --token,
DROVER_MASTER or DROVER_TOKEN say otherwise.

Example:
  drover login --master https://10.0.1.10:8080 --token 5f1c… --ca-file ca.pem")]
pub struct LoginArgs {
    #[command(flatten)]
    master: MasterFlag,
}

/// Runs `drover acl …`.
pub fn run(args: AclArgs) -> ExitCode {
    output::exit_with(run_inner(&args.master, args.command))
}

fn run_inner(m: &MasterFlag, command: AclCommand) -> Result<ExitCode, CliError> {
    match command {
        AclCommand::Bootstrap { json } => {
            let created: CreatedToken = fetch(m, Method::POST, "/v1/acl/bootstrap", None)?;
            if json {
                output::json(&created);
            } else {
                print_created(&created);
                let target = m.target()?;
                let master = target.masters.first().cloned().unwrap_or_default();
                let (scheme, ca) = match &target.ca_file {
                    Some(f) => ("https", format!(" --ca-file {}", f.display())),
                    None => ("http", String::new()),
                };
                println!(
                    "\nThis is the cluster's management token; it is not shown again. Keep it safe, then\n  drover login --master {scheme}://{master} --token {}{ca}",
                    created.secret_id
                );
            }
        }
        AclCommand::Token { command } => match command {
            TokenCommand::Create {
                name,
                policies,
                ttl,
                json,
            } => {
                let body = NewToken {
                    name,
                    policies,
                    ttl_seconds: ttl,
                };
                let body = serde_json::to_value(&body).map_err(|e| CliError(e.to_string()))?;
                let created: CreatedToken = fetch(m, Method::POST, "/v1/acl/tokens", Some(&body))?;
                if json {
                    output::json(&created);
                } else {
                    print_created(&created);
                    println!("\nThe secret is not shown again.");
                }
            }
            TokenCommand::List { json } => {
                let list: AclTokens = fetch(m, Method::GET, "/v1/acl/tokens", None)?;
                if json {
                    output::json(&list);
                } else {
                    let mut t = table(&["ACCESSOR ID", "NAME", "POLICIES", "CREATED", "EXPIRES"]);
                    for token in &list.tokens {
                        t.add_row(row(token));
                    }
                    println!("{t}");
                }
            }
            TokenCommand::Revoke { accessor_id } => {
                let path = format!("/v1/acl/tokens/{accessor_id}");
                let token: AclToken = fetch(m, Method::DELETE, &path, None)?;
                println!("Revoked token {} ({}).", token.accessor_id, token.name);
            }
            TokenCommand::Whoami => {
                let token: AclToken = fetch(m, Method::GET, "/v1/acl/token/self", None)?;
                print_token(&token);
            }
        },
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `drover login`.
pub fn login(args: LoginArgs) -> ExitCode {
    let m = &args.master;
    let (Some(master), Some(token)) = (&m.master, &m.token) else {
        return fail(
            "drover login needs --master URL and --token SECRET (or DROVER_MASTER and DROVER_TOKEN)",
        );
    };
    let me: AclToken = match fetch(m, Method::GET, "/v1/acl/token/self", None) {
        Ok(t) => t,
        Err(e) => {
            return fail(format!(
                "the token was not accepted, nothing was written: {}",
                e.0
            ));
        }
    };
    let Some(path) = profile::path() else {
        return fail("no config file location: set DROVER_CONFIG, XDG_CONFIG_HOME or HOME");
    };
    let ca_file = match &m.ca_file {
        Some(f) => match std::fs::canonicalize(f) {
            Ok(p) => Some(p.display().to_string()),
            Err(e) => return fail(format!("--ca-file {}: {e}", f.display())),
        },
        None => None,
    };
    let master = if master.contains("://") {
        master.clone()
    } else if ca_file.is_some() {
        format!("https://{master}")
    } else {
        format!("http://{master}")
    };
    let profile = Profile {
        master: Some(master.clone()),
        token: Some(token.clone()),
        ca_file,
    };
    if let Err(e) = profile::save_to(&path, &profile) {
        return fail(e);
    }
    println!(
        "Logged in to {master} as {} ({}; policies {}). Config written to {}.",
        me.name,
        me.accessor_id,
        me.policies.join(", "),
        path.display()
    );
    ExitCode::SUCCESS
}

fn row(token: &AclToken) -> Vec<String> {
    vec![
        token.accessor_id.clone(),
        token.name.clone(),
        token.policies.join(","),
        token.create_time.clone(),
        or_na(token.expiration_time.as_deref()),
    ]
}

fn print_token(token: &AclToken) {
    println!("Accessor ID: {}", token.accessor_id);
    println!("Name:        {}", token.name);
    println!("Policies:    {}", token.policies.join(", "));
    println!("Created:     {}", token.create_time);
    println!(
        "Expires:     {}",
        token.expiration_time.as_deref().unwrap_or("never")
    );
}

fn print_created(created: &CreatedToken) {
    print_token(&created.token);
    println!("Secret ID:   {}", created.secret_id);
}

/// `90s`, `30m`, `12h`, `30d` (or plain seconds) as seconds.
fn ttl_seconds(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a duration: give e.g. 90s, 30m, 12h or 30d"))?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => {
            return Err(format!(
                "`{text}`: the unit must be s, m, h or d (e.g. 12h)"
            ));
        }
    };
    match n.checked_mul(scale) {
        Some(0) => Err("a TTL of 0 would make a token that never works; give e.g. 1h".into()),
        Some(s) => Ok(s),
        None => Err(format!("`{text}` is too long")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_read_with_their_units() {
        assert_eq!(ttl_seconds("90"), Ok(90));
        assert_eq!(ttl_seconds("30m"), Ok(1800));
        assert_eq!(ttl_seconds("12h"), Ok(43_200));
        assert_eq!(ttl_seconds("2d"), Ok(172_800));
        for bad in ["", "h", "0s", "3w", "-1h", "99999999999999999999d"] {
            assert!(ttl_seconds(bad).is_err(), "{bad}");
        }
    }
}
