//! The forwarder's I/O shell: AF_PACKET TPACKET_V3 / AF_XDP attachment and run loops (the only crate with unsafe).
