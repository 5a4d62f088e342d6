//! `ruche`: the drive's server and its administration commands.

mod activity;
mod api;
mod authn;
mod collab;
mod config;
mod files;
mod fragment;
mod idle;
mod login_flow;
mod maintenance;
mod metrics;
mod nextcloud;
mod search;
mod serve;
mod session;
mod state;
mod tls;
mod trash;
mod users;
mod versions;

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(name = "ruche", version, about = "A self-hosted document drive")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the drive.
    Serve(ServeArgs),
    /// Manage accounts (safe to run while the server runs).
    #[command(subcommand)]
    User(UserCommand),
    /// Check a stopped data folder; exits with 1 when it is not clean.
    Fsck {
        /// Fix what is safe to fix: usage totals, leftover uploads, unknown content files,
        /// unreachable nodes (moved to lost+found).
        #[arg(long)]
        repair: bool,
        #[command(flatten)]
        data: DataArg,
    },
    /// Copy a consistent snapshot of the data folder, even while the server runs.
    Backup {
        /// Folder to write the backup into; must not hold a backup already.
        #[arg(long)]
        to: PathBuf,
        #[command(flatten)]
        data: DataArg,
    },
    /// Print the activity log as JSON lines, oldest first (safe while the server runs).
    Audit {
        /// Only entries after this id (the last id of a previous export).
        #[arg(long, default_value_t = 0)]
        after: i64,
        #[command(flatten)]
        data: DataArg,
    },
    /// Restore a backup into a new data folder.
    Restore {
        /// Folder holding the backup.
        #[arg(long)]
        from: PathBuf,
        #[command(flatten)]
        data: DataArg,
    },
}

#[derive(Args)]
struct DataArg {
    /// Data folder (database and contents).
    #[arg(long, env = "RUCHE_DATA", default_value = config::DEFAULT_DATA)]
    data: PathBuf,
}

#[derive(Args)]
struct ServeArgs {
    /// TOML configuration file; flags and RUCHE_* variables override it.
    #[arg(long, env = "RUCHE_CONFIG")]
    config: Option<PathBuf>,
    /// Data folder [default: ./ruche-data].
    #[arg(long, env = "RUCHE_DATA")]
    data: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080]; port 0 picks a free port.
    #[arg(long, env = "RUCHE_LISTEN")]
    listen: Option<SocketAddr>,
    /// PEM certificate chain, to serve HTTPS without a reverse proxy.
    #[arg(long, env = "RUCHE_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// PEM private key matching --tls-cert.
    #[arg(long, env = "RUCHE_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// Quota in bytes given to new personal spaces.
    #[arg(long, env = "RUCHE_DEFAULT_QUOTA")]
    default_quota: Option<u64>,
    /// Connections served at once [default: 4096].
    #[arg(long, env = "RUCHE_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// Seconds without traffic after which a connection is closed [default: 120].
    #[arg(long, env = "RUCHE_IDLE_TIMEOUT")]
    idle_timeout: Option<u64>,
    /// Messages per second a co-editing client may send before it is slowed [default: 1000].
    #[arg(long, env = "RUCHE_COLLAB_RATE")]
    collab_rate: Option<u32>,
    /// Days a deleted item stays in the trash before it is purged [default: 30].
    #[arg(long, env = "RUCHE_TRASH_DAYS")]
    trash_days: Option<u32>,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create an account.
    Add {
        name: String,
        /// Make the account an administrator.
        #[arg(long)]
        admin: bool,
        /// Read the password from standard input instead of generating one.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        data: DataArg,
    },
    /// List accounts.
    List {
        #[command(flatten)]
        data: DataArg,
    },
    /// Change an account's password; its sessions end.
    Passwd {
        name: String,
        /// Read the new password from standard input instead of generating one.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        data: DataArg,
    },
    /// Create an app password for a device or a sync client, and print it once.
    AppPassword {
        name: String,
        /// What the password is for ("laptop", "phone", ...).
        #[arg(long, default_value = "app")]
        label: String,
        #[command(flatten)]
        data: DataArg,
    },
    /// Set or lift the quota of an account's personal space.
    Quota {
        name: String,
        /// Limit in bytes; omit to lift the limit.
        #[arg(long)]
        bytes: Option<u64>,
        #[command(flatten)]
        data: DataArg,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("ruche: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => {
            let config = config::Config::resolve(config::Overrides {
                config_file: args.config,
                data: args.data,
                listen: args.listen,
                tls_cert: args.tls_cert,
                tls_key: args.tls_key,
                default_quota: args.default_quota,
                max_connections: args.max_connections,
                idle_timeout_secs: args.idle_timeout,
                collab_rate: args.collab_rate,
                trash_days: args.trash_days,
            })?;
            serve::run(config)?;
        }
        Command::User(command) => run_user(command)?,
        Command::Fsck { repair, data } => {
            let clean = maintenance::fsck(&data.data, repair)?;
            return Ok(if clean {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            });
        }
        Command::Backup { to, data } => maintenance::backup(&data.data, &to)?,
        Command::Restore { from, data } => maintenance::restore(&from, &data.data)?,
        Command::Audit { after, data } => maintenance::audit(&data.data, after)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn run_user(command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Add {
            name,
            admin,
            password_stdin,
            data,
        } => {
            let password = password_from(password_stdin)?;
            users::add(&data.data, &name, admin, &password.value)?;
            password.announce(&name);
            Ok(())
        }
        UserCommand::List { data } => users::list(&data.data),
        UserCommand::Passwd {
            name,
            password_stdin,
            data,
        } => {
            let password = password_from(password_stdin)?;
            users::passwd(&data.data, &name, &password.value)?;
            password.announce(&name);
            Ok(())
        }
        UserCommand::AppPassword { name, label, data } => {
            let secret = users::app_password(&data.data, &name, &label)?;
            println!("{secret}");
            Ok(())
        }
        UserCommand::Quota { name, bytes, data } => users::quota(&data.data, &name, bytes),
    }
}

struct NewPassword {
    value: String,
    generated: bool,
}

impl NewPassword {
    /// Prints a generated password once; a password the admin typed is never echoed.
    fn announce(&self, name: &str) {
        if self.generated {
            println!("password of {name}: {}", self.value);
        }
    }
}

fn password_from(stdin: bool) -> anyhow::Result<NewPassword> {
    if !stdin {
        return Ok(NewPassword {
            value: ruche_auth::new_app_password(),
            generated: true,
        });
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password")?;
    let value = line.trim_end_matches(['\r', '\n']).to_owned();
    anyhow::ensure!(
        !value.is_empty(),
        "the password read from standard input is empty"
    );
    Ok(NewPassword {
        value,
        generated: false,
    })
}
