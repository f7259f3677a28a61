//! The control node: config graph, per-instance RIBs, route-target replication, XMPP server for agents (core + shell).
