//! The `tapejit` command line; see `tapejit --help`.

use clap::Parser;

fn main() {
    let cli = tapejit::cli::Cli::parse();
    if let Err(message) = tapejit::cli::run(cli) {
        eprintln!("error: {message}");
        std::process::exit(1);
    }
}
