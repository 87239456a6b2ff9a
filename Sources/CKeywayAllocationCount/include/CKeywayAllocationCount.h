#pragma once
// Counts the process's heap allocations (keyway-bench only: it replaces malloc and friends for
// the whole process, forwarding to glibc's allocator). What the datapath's steady state must
// not do per packet is allocate.
unsigned long long kw_allocation_count(void);
