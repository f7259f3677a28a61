//! The vRouter agent: XMPP client, port API, DHCP/ARP proxy, route import/export, flow decisions (core + shell).
