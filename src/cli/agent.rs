//! `sockeye agent --stdio`: the agent side of the agent protocol, on
//! standard input and output, within the limits of its command line
//! (`docs/agent-protocol.md`). A controller starts it (over SSH, `ip netns
//! exec`, a container's exec); people rarely type it.

use clap::Args;
use ipnet::IpNet;

use super::run::{self, Threads};
use super::{UsageError, exit};
use crate::agent::serve::{AgentConfig, serve};

pub const AGENT_AFTER: &str = "\
Started by `sockeye exercise run` and `sockeye scan --agents` for each agent of a plan, over
a pipe: ssh, ip netns exec, kubectl exec -i. It carries out typed actions only (connect,
listen and answer flow nonces, send, a check, a scan shard), never a command, within its own
limits, and exits when the pipe closes (Ctrl-C does not end it: its controller does).

Examples:
  ssh -T host sockeye agent --stdio --allow-listen 80,443 --allow-targets 198.18.0.0/15
  ip netns exec zone-a sockeye agent --stdio --allow-listen 1-65535";

#[derive(Debug, Args)]
pub struct AgentArgs {
    /// Speak the agent protocol on standard input and output (the only mode).
    #[arg(long, required = true)]
    pub stdio: bool,

    /// Ports this agent may listen on (e.g. 22,80,8000-8100); none if not given.
    #[arg(long, value_name = "PORTS")]
    pub allow_listen: Option<String>,

    /// Networks this agent may send to (e.g. 198.18.0.0/15,2001:db8::/32); any if not given.
    #[arg(long, value_name = "CIDRS")]
    pub allow_targets: Option<String>,

    /// Connections and datagrams a second, at most.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub max_rate: u32,
}

/// The limits of the command line, checked.
fn config(args: &AgentArgs) -> Result<AgentConfig, UsageError> {
    let allow_listen = match &args.allow_listen {
        None => None,
        Some(text) => Some(
            crate::agent::wire::port_ranges(text)
                .map_err(|e| UsageError::new(format!("--allow-listen {text:?}: {e}")))?,
        ),
    };
    let allow_targets = match &args.allow_targets {
        None => None,
        Some(text) => Some(
            text.split(',')
                .map(|n| {
                    let n = n.trim();
                    n.parse::<IpNet>()
                        .or_else(|_| n.parse::<std::net::IpAddr>().map(IpNet::from))
                        .map_err(|_| {
                            UsageError::new(format!(
                                "--allow-targets: {n:?} is not an address or a network"
                            ))
                        })
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    if args.max_rate == 0 {
        return Err(UsageError::new("--max-rate: must be at least 1"));
    }
    Ok(AgentConfig {
        allow_listen,
        allow_targets,
        max_rate: args.max_rate,
        checks: Some(std::sync::Arc::new(crate::exercise::remote::PlanChecks)),
    })
}

pub fn run(args: AgentArgs) -> anyhow::Result<u8> {
    let cfg = config(&args)?;
    let runtime = run::runtime(Threads::Many(Some(2)))?;
    runtime.block_on(async {
        // Ctrl-C in the controller's terminal reaches a local or netns:
        // agent too (one process group): the controller stops its requests
        // and then closes the pipe, which is what ends an agent. Dying at
        // once would lose what a scan shard found.
        if let Ok(mut interrupt) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        {
            tokio::spawn(async move { while interrupt.recv().await.is_some() {} });
        }
        match serve(tokio::io::stdin(), tokio::io::stdout(), cfg).await {
            Ok(()) => Ok(exit::OK),
            Err(e) => Err(anyhow::Error::new(e)),
        }
    })
}
