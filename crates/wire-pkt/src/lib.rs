//! Packet wire formats as zero-copy views: Ethernet, ARP, IPv4/IPv6, ICMP, UDP, TCP, MPLS, VXLAN, GRE, DHCP (sans-IO vocabulary).
pub mod dhcp;
