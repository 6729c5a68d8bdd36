//! `docqa serve` and `docqa mcp`: flags for the servers in [`docqa::server`].

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use docqa::server::http::{self, ServeOptions, DEFAULT_QUEUE};
use docqa::session::Settings;

#[derive(Args, Clone)]
pub struct ServeArgs {
    /// Address to listen on; anything but loopback needs --token
    #[arg(long, default_value = "127.0.0.1:8765")]
    pub addr: SocketAddr,
    /// Bearer token every request must send (`Authorization: Bearer TOKEN`)
    #[arg(long, env = "DOCQA_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Generation requests (ask, chat) that may wait while one runs; more get 503 with
    /// Retry-After
    #[arg(long, default_value_t = DEFAULT_QUEUE)]
    pub queue: usize,
}

pub fn run_http(args: &ServeArgs, settings: Settings) -> Result<ExitCode> {
    http::run(
        settings,
        ServeOptions {
            addr: args.addr,
            token: args.token.clone(),
            queue: args.queue,
        },
    )?;
    Ok(ExitCode::SUCCESS)
}

pub fn run_mcp(settings: Settings) -> Result<ExitCode> {
    docqa::server::mcp::run(settings)?;
    Ok(ExitCode::SUCCESS)
}
