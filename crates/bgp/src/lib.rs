//! The BGP speaker: RFC 4271 peer FSM, Adj-RIBs, RT-constraint filtering (sans-IO core) and the TCP session shell.
