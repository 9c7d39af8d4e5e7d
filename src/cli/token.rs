//! `jobq token create|list|revoke`: API tokens of the HTTP server. A token is
//! printed once at creation; only its SHA-256 is stored.

use clap::{Args, Subcommand};
use jobq::ApiToken;

use crate::cli::table::{emit, emit_json, time, Table};
use crate::cli::{CliError, CliResult, Context};

/// `jobq token`.
#[derive(Debug, Args)]
pub struct TokenArgs {
    #[command(subcommand)]
    command: TokenCommand,
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create a token for a user and print it (shown only this once).
    Create {
        /// The user the token speaks for; the jobs it enqueues are theirs.
        #[arg(long)]
        user: String,
        /// Allow the admin endpoints (list, stats, retry, cancel any job).
        #[arg(long)]
        admin: bool,
    },
    /// List tokens: id, user, role, creation and revocation times; never secrets.
    List {
        /// Only this user's tokens.
        #[arg(long)]
        user: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by id, or every token of a user; the next request with it is refused.
    Revoke {
        /// The token's id (from `jobq token list`).
        #[arg(required_unless_present = "user", conflicts_with = "user")]
        id: Option<i64>,
        /// Revoke every live token of this user.
        #[arg(long)]
        user: Option<String>,
    },
}

/// Runs `jobq token ...`.
pub fn run(ctx: &Context, args: TokenArgs) -> CliResult {
    match args.command {
        TokenCommand::Create { user, admin } => create(ctx, &user, admin),
        TokenCommand::List { user, json } => list(ctx, user.as_deref(), json),
        TokenCommand::Revoke { id, user } => revoke(ctx, id, user.as_deref()),
    }
}

fn create(ctx: &Context, user: &str, admin: bool) -> CliResult {
    let made = ctx.open()?.create_token(user, admin)?;
    emit(&made.secret)
}

fn list(ctx: &Context, user: Option<&str>, json: bool) -> CliResult {
    let tokens = ctx.open_existing()?.list_tokens(user)?;
    if json {
        return emit_json(&tokens);
    }
    emit(&render(&tokens))
}

fn render(tokens: &[ApiToken]) -> String {
    let mut table = Table::new(&["ID", "USER", "ROLE", "CREATED", "REVOKED"]);
    for t in tokens {
        let role = if t.admin { "admin" } else { "user" };
        table.row(vec![
            t.id.to_string(),
            t.user.clone(),
            role.to_string(),
            time(Some(t.created_at)),
            time(t.revoked_at),
        ]);
    }
    table.render()
}

fn revoke(ctx: &Context, id: Option<i64>, user: Option<&str>) -> CliResult {
    let queue = ctx.open_existing()?;
    let (n, what) = match (id, user) {
        (Some(id), _) => (queue.revoke_token(id)?, format!("token {id}")),
        (None, Some(user)) => (queue.revoke_user_tokens(user)?, format!("tokens of {user}")),
        (None, None) => return Err(CliError::Usage("give a token id or --user".into())),
    };
    if n == 0 {
        return Err(CliError::NotFound(format!("no live {what}")));
    }
    emit(&format!(
        "revoked {n} token{}",
        if n == 1 { "" } else { "s" }
    ))
}
