//! `bsf-floor`: the floor responder of the benchmark (see `bsf_bench::floor`).

use clap::Parser;
use std::net::SocketAddr;
use std::process::ExitCode;

/// A do-nothing UDP DNS responder: copies each query back with QR and AA set. recvmmsg/sendmmsg
/// batches, one thread per socket. The lowest CPU per query this I/O path allows.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Address and port to answer on (loopback only in the benchmark).
    #[arg(long, default_value = "127.0.0.1:5399")]
    listen: SocketAddr,
    /// Datagrams per recvmmsg/sendmmsg call at most.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Threads, each with its own socket on the address (SO_REUSEPORT), like bsf-dns's
    /// --threads.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    threads: u16,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match bsf_bench::floor::serve(args.listen, args.batch, args.threads.into()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bsf-floor: {}: {e}", args.listen);
            ExitCode::FAILURE
        }
    }
}
