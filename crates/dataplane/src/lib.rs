//! The forwarder pipeline and its tables: interfaces, nexthops, VRF FIBs, labels, VNIs, flow table, encapsulation (sans-IO core).
