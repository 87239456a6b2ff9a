#ifndef CKEYWAY_HOSTNET_H
#define CKEYWAY_HOSTNET_H
// keywayd's changes to the host's network configuration through the kernel's own interfaces:
// rtnetlink (built and parsed with libmnl) for the routing rule, the routes into the TUN device
// and its queue length; libnftables for the incoming-check table. Only keywayd links this: the
// sandboxed children never load libmnl or libnftables.
#include <stddef.h>
#include <stdint.h>

enum kw_rt_kind {
    KW_RT_ROUTE_REPLACE = 1,    // ip route replace DST/LEN dev IFINDEX table TABLE [src SOURCE]
    KW_RT_ROUTE_DELETE = 2,     // ip route del DST/LEN table TABLE [dev IFINDEX]
    KW_RT_RULE_ADD = 3,         // ip rule add not fwmark MARK table TABLE priority PRIORITY
    KW_RT_RULE_DELETE = 4,      // ip rule del not fwmark MARK table TABLE priority PRIORITY
    KW_RT_LINK_TXQUEUELEN = 5,  // ip link set dev IFINDEX txqueuelen VALUE
    KW_RT_LINK_MTU = 6,         // ip link set dev IFINDEX mtu VALUE
};

// One change; the fields a kind does not use are ignored. Addresses are IPv4 in host order.
struct kw_rt_op {
    int kind;
    uint32_t table;
    uint32_t destination;
    uint8_t prefix_length;
    // Preferred source; 0: none.
    uint32_t source;
    // 0 with a route delete: whatever the device.
    int32_t ifindex;
    // Rule: packets WITHOUT this mark consult the table.
    uint32_t mark;
    uint32_t priority;
    // Queue length in packets, or MTU in bytes.
    uint32_t value;
};

// The longest message kw_rt_build writes, and the most changes one batch takes.
#define KW_RT_MESSAGE_MAX 128
#define KW_RT_MAX_BATCH 16384

// Builds op's request (with NLM_F_ACK) under sequence number seq into buf. Returns its length, or
// -1 with errno EINVAL (an op that cannot be expressed) or ENOSPC (cap below KW_RT_MESSAGE_MAX).
int kw_rt_build(const struct kw_rt_op *op, uint32_t seq, void *buf, size_t cap);

// One batch: every request in a single sendmsg, then one acknowledgement each. errors[i] gets 0
// or the positive errno the kernel answered ops[i] with. Returns 0, or a negative errno when the
// batch as a whole failed (socket, send, lost acknowledgements); errors[] then holds that errno
// for every op whose answer never came.
int kw_rt_apply(const struct kw_rt_op *ops, int count, int *errors);

// The IPv4 routes of one table (destination, prefix length, preferred source, ifindex), at most
// cap of them. Returns how many, 0 when the table does not exist, or a negative errno.
int kw_rt_list(uint32_t table, struct kw_rt_op *out, int cap);

// The MTU IPv4 packets to each of `count` destinations (host order) carrying `mark` leave with,
// over one netlink socket, as `ip route get fibmatch` finds each route: the route's own mtu
// metric where it has one, else its output interface's MTU (the smaller of the two when both).
// mtus[i] gets each answer, or a negative errno (-ENETUNREACH without a route, -EOPNOTSUPP for a
// multipath route).
// Returns 0, or a negative errno when no socket could be had (mtus[] then all hold it).
int kw_rt_path_mtus(const uint32_t *destinations, int count, uint32_t mark, int32_t *mtus);

// Runs an nftables script as one transaction, with libnftables' output and error messages
// written to messages (NUL-terminated, cut at cap) instead of the terminal. Returns 0 when
// applied, 1 when refused, -1 when no nftables context could be made.
int kw_nft_run(const char *script, char *messages, size_t cap);

#endif
