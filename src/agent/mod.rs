//! Agents: a sockeye process on another host (or in another network
//! namespace, or a container) that carries out typed actions for a
//! controller, over a byte pipe that tools people already trust provide
//! (OpenSSH, `ip netns exec`, `kubectl exec -i`). The protocol is in
//! `docs/agent-protocol.md`; its frames are `sockeye_proto::agent`.
//!
//! - [`wire`]: the frames' JSON bodies (handshake, actions, events,
//!   outcomes) and whole frames read from and written to a pipe.
//! - [`serve`]: the agent itself (`sockeye agent --stdio`): its limits,
//!   connects, listeners that answer flow nonces, sends.
//! - [`scan`]: a scan shard run by an agent, from typed fields.
//! - [`shards`]: the controller's side of a scan split across agents.
//! - [`link`]: the controller's side of one agent: how it is reached
//!   (`local`, `netns:NAME`, `exec:CMD...`, `ssh://[USER@]HOST[:PORT]`),
//!   the handshake, and requests with their events and outcome.

pub mod link;
pub mod scan;
pub mod serve;
pub mod shards;
pub mod wire;
