//! `-w`: classic pcap for one capture point, pcapng (one interface block per point, named
//! by its label) for several or when the file name ends in `.pcapng`.
