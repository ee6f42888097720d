//! `hub token new|hash`: tokens for the admin API and the screen, and the
//! hashed form the config keeps (`[api] tokens`), so that the file gives
//! no token away.

use std::io::Read;
use std::process::ExitCode;

use clap::Subcommand;
use rand::RngCore;

use hub::api::auth::{ApiTokens, Role, Scope, hash_token};

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Make a new random token and print it with the line for `[api] tokens`.
    New {
        /// viewer (masked personal data), operator (repairs) or admin.
        #[arg(long, default_value = "viewer")]
        role: String,
        /// A county's or township's division code: the token sees only its matters.
        #[arg(long, value_name = "CODE")]
        region: Option<String>,
    },
    /// Print the hashed form of a token read from standard input.
    Hash {
        #[arg(long, default_value = "viewer")]
        role: String,
        #[arg(long, value_name = "CODE")]
        region: Option<String>,
    },
}

fn who(role: &str, region: Option<&str>) -> anyhow::Result<String> {
    let role = Role::parse(role).ok_or_else(|| anyhow::anyhow!("`{role}` is not a role (viewer, operator, admin)"))?;
    Ok(match region {
        Some(code) => {
            let scope = Scope::parse(code).map_err(|e| anyhow::anyhow!(e))?;
            format!("{}@{scope}", role.as_str())
        }
        None => role.as_str().to_string(),
    })
}

pub fn run(cmd: TokenCommand) -> anyhow::Result<ExitCode> {
    let (who, token) = match cmd {
        TokenCommand::New { role, region } => {
            let mut bytes = [0u8; 24];
            rand::rng().fill_bytes(&mut bytes);
            let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            (who(&role, region.as_deref())?, Some(token))
        }
        TokenCommand::Hash { role, region } => (who(&role, region.as_deref())?, None),
    };
    let token = match token {
        Some(t) => {
            println!("token:  {t}");
            println!("env:    HUB_API_TOKENS={who}:{t}");
            t
        }
        None => {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text)?;
            text.trim().to_string()
        }
    };
    // Refused here as the hub would refuse it.
    ApiTokens::default().add_plain_list(&format!("{who}:{token}")).map_err(|e| anyhow::anyhow!(e))?;
    println!("config: [api] tokens = [\"{who}:sha256:{}\"]", hash_token(&token));
    Ok(ExitCode::SUCCESS)
}
