//! Lax decoding of frames into the fields the flow table needs (etherparse).
