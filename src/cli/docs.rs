//! `jobq completions SHELL` and `jobq man`: generated from the clap definitions,
//! so they always match the commands.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, CommandFactory};
use clap_complete::Shell;
use clap_mangen::Man;

use crate::cli::table::emit;
use crate::cli::{Cli, CliError, CliResult};

/// `jobq completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish, powershell.
    shell: Shell,
}

/// `jobq man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// A command's page (`jobq man list` is jobq-list(1)) [default: jobq(1)].
    command: Option<String>,
    /// Write every page (jobq.1, jobq-list.1, ...) into this directory instead.
    #[arg(long, value_name = "DIR", conflicts_with = "command")]
    out_dir: Option<PathBuf>,
}

/// Prints the completion script of `shell` for `jobq`.
pub fn completions(args: CompletionsArgs) -> CliResult {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "jobq", &mut script);
    write_stdout(&script)
}

/// Prints a man page (roff), or writes them all.
///
/// # Errors
/// Usage for an unknown command; runtime errors writing the pages.
pub fn man(args: ManArgs) -> CliResult {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    if let Some(dir) = args.out_dir {
        std::fs::create_dir_all(&dir)
            .map_err(|e| CliError::io(format!("creating {}", dir.display()), e))?;
        clap_mangen::generate_to(cmd, &dir)
            .map_err(|e| CliError::io(format!("writing man pages to {}", dir.display()), e))?;
        return emit(&format!("wrote the man pages to {}", dir.display()));
    }
    let page = match args.command {
        None => cmd,
        Some(name) => cmd
            .find_subcommand(&name)
            .cloned()
            .ok_or_else(|| CliError::Usage(format!("no command {name:?} (see jobq --help)")))?,
    };
    let mut roff = Vec::new();
    Man::new(page)
        .render(&mut roff)
        .map_err(|e| CliError::io("rendering the man page", e))?;
    write_stdout(&roff)
}

fn write_stdout(bytes: &[u8]) -> CliResult {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(CliError::io("writing output", e))
        }
        _ => Ok(()),
    }
}
