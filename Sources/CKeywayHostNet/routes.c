// rtnetlink requests built with libmnl: the routing rule, the routes into the TUN device, its
// queue length. Requests go out as one batch (one sendmsg) and every answer is read back, so
// each change gets its own errno and nothing prints to the terminal.
#include "CKeywayHostNet.h"
#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/fib_rules.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

// Room for the largest batch's requests (kernel side) and answers (truesize of ~1 kB each).
#define KW_RT_SNDBUF (4 << 20)
#define KW_RT_RCVBUF (16 << 20)
#define KW_RT_RECV_SIZE 32768

static uint32_t kw_prefix_mask(uint8_t length) {
    return length == 0 ? 0 : ~(uint32_t)0 << (32 - length);
}

// Tables above 255 travel only in the attribute; the header's byte then says "see attribute".
static uint8_t kw_header_table(uint32_t table) { return table < 256 ? (uint8_t)table : RT_TABLE_UNSPEC; }

static void kw_put_route(struct nlmsghdr *nlh, const struct kw_rt_op *op, int replace) {
    struct rtmsg *rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
    rtm->rtm_family = AF_INET;
    rtm->rtm_dst_len = op->prefix_length;
    rtm->rtm_table = kw_header_table(op->table);
    if (replace) {
        // What `ip route replace PREFIX dev DEV` sends: a unicast route on the link.
        rtm->rtm_protocol = RTPROT_BOOT;
        rtm->rtm_scope = RT_SCOPE_LINK;
        rtm->rtm_type = RTN_UNICAST;
    } else {
        // A delete matches any scope, type and protocol.
        rtm->rtm_scope = RT_SCOPE_NOWHERE;
    }
    mnl_attr_put_u32(nlh, RTA_TABLE, op->table);
    if (op->prefix_length > 0) {
        mnl_attr_put_u32(nlh, RTA_DST, htonl(op->destination & kw_prefix_mask(op->prefix_length)));
    }
    if (op->ifindex > 0) mnl_attr_put_u32(nlh, RTA_OIF, (uint32_t)op->ifindex);
    if (replace && op->source != 0) mnl_attr_put_u32(nlh, RTA_PREFSRC, htonl(op->source));
}

static void kw_put_rule(struct nlmsghdr *nlh, const struct kw_rt_op *op) {
    struct fib_rule_hdr *frh = mnl_nlmsg_put_extra_header(nlh, sizeof(*frh));
    frh->family = AF_INET;
    frh->table = kw_header_table(op->table);
    frh->action = FR_ACT_TO_TBL;
    // "not fwmark MARK": the rule applies to packets whose mark differs.
    frh->flags = FIB_RULE_INVERT;
    mnl_attr_put_u32(nlh, FRA_TABLE, op->table);
    mnl_attr_put_u32(nlh, FRA_FWMARK, op->mark);
    mnl_attr_put_u32(nlh, FRA_FWMASK, 0xffffffffu);
    mnl_attr_put_u32(nlh, FRA_PRIORITY, op->priority);
}

int kw_rt_build(const struct kw_rt_op *op, uint32_t seq, void *buf, size_t cap) {
    if (cap < KW_RT_MESSAGE_MAX) { errno = ENOSPC; return -1; }
    memset(buf, 0, KW_RT_MESSAGE_MAX);
    struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_seq = seq;
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
    switch (op->kind) {
    case KW_RT_ROUTE_REPLACE:
        if (op->prefix_length > 32 || op->ifindex <= 0) { errno = EINVAL; return -1; }
        nlh->nlmsg_type = RTM_NEWROUTE;
        nlh->nlmsg_flags |= NLM_F_CREATE | NLM_F_REPLACE;
        kw_put_route(nlh, op, 1);
        break;
    case KW_RT_ROUTE_DELETE:
        if (op->prefix_length > 32 || op->ifindex < 0) { errno = EINVAL; return -1; }
        nlh->nlmsg_type = RTM_DELROUTE;
        kw_put_route(nlh, op, 0);
        break;
    case KW_RT_RULE_ADD:
        nlh->nlmsg_type = RTM_NEWRULE;
        nlh->nlmsg_flags |= NLM_F_CREATE | NLM_F_EXCL;
        kw_put_rule(nlh, op);
        break;
    case KW_RT_RULE_DELETE:
        nlh->nlmsg_type = RTM_DELRULE;
        kw_put_rule(nlh, op);
        break;
    case KW_RT_LINK_TXQUEUELEN:
    case KW_RT_LINK_MTU: {
        if (op->ifindex <= 0) { errno = EINVAL; return -1; }
        nlh->nlmsg_type = RTM_NEWLINK;
        struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
        ifi->ifi_family = AF_UNSPEC;
        ifi->ifi_index = op->ifindex;
        mnl_attr_put_u32(nlh, op->kind == KW_RT_LINK_MTU ? IFLA_MTU : IFLA_TXQLEN, op->value);
        break;
    }
    default:
        errno = EINVAL;
        return -1;
    }
    return (int)nlh->nlmsg_len;
}

static struct mnl_socket *kw_rt_open(int *error) {
    struct mnl_socket *nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
    if (nl == NULL) { *error = errno; return NULL; }
    int fd = mnl_socket_get_fd(nl);
    int size = KW_RT_SNDBUF;
    // FORCE ignores wmem_max/rmem_max (keywayd keeps CAP_NET_ADMIN); plain sizes otherwise.
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) < 0) {
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
    }
    size = KW_RT_RCVBUF;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0) {
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
    }
    // Answers without a copy of the request; the dump filters by table in the kernel.
    int one = 1;
    mnl_socket_setsockopt(nl, NETLINK_CAP_ACK, &one, sizeof(one));
    mnl_socket_setsockopt(nl, NETLINK_GET_STRICT_CHK, &one, sizeof(one));
    // A lost answer must not hang keywayd's loop.
    struct timeval timeout = { .tv_sec = 5, .tv_usec = 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
        *error = errno;
        mnl_socket_close(nl);
        return NULL;
    }
    return nl;
}

static uint32_t kw_rt_next_sequence(int count) {
    static uint32_t next = 0;
    if (next == 0) next = (uint32_t)time(NULL);
    uint32_t first = next;
    next += (uint32_t)count + 1;
    return first;
}

int kw_rt_apply(const struct kw_rt_op *ops, int count, int *errors) {
    if (count <= 0 || count > KW_RT_MAX_BATCH) return -EINVAL;
    int error = 0;
    struct mnl_socket *nl = kw_rt_open(&error);
    if (nl == NULL) {
        for (int i = 0; i < count; i++) errors[i] = error;
        return -error;
    }
    char *requests = malloc((size_t)count * KW_RT_MESSAGE_MAX);
    char *answers = malloc(KW_RT_RECV_SIZE);
    if (requests == NULL || answers == NULL) {
        free(requests);
        free(answers);
        mnl_socket_close(nl);
        for (int i = 0; i < count; i++) errors[i] = ENOMEM;
        return -ENOMEM;
    }
    uint32_t first = kw_rt_next_sequence(count);
    size_t length = 0;
    int pending = 0;
    for (int i = 0; i < count; i++) {
        int n = kw_rt_build(&ops[i], first + (uint32_t)i, requests + length, KW_RT_MESSAGE_MAX);
        if (n < 0) { errors[i] = errno; continue; }
        // -1: sent, answer not yet read.
        errors[i] = -1;
        length += (size_t)n;
        pending++;
    }
    int result = 0;
    if (pending > 0 && mnl_socket_sendto(nl, requests, length) < 0) {
        result = -errno;
    }
    unsigned int portid = mnl_socket_get_portid(nl);
    while (result == 0 && pending > 0) {
        ssize_t n = mnl_socket_recvfrom(nl, answers, KW_RT_RECV_SIZE);
        if (n < 0) {
            if (errno == EINTR) continue;
            // EAGAIN: the timeout passed; ENOBUFS: answers were dropped (the buffer overflowed).
            result = -errno;
            break;
        }
        size_t left = (size_t)n;
        const struct nlmsghdr *nlh = (const struct nlmsghdr *)answers;
        while (mnl_nlmsg_ok(nlh, (int)left)) {
            if (nlh->nlmsg_type == NLMSG_ERROR && mnl_nlmsg_portid_ok(nlh, portid) &&
                mnl_nlmsg_get_payload_len(nlh) >= sizeof(struct nlmsgerr)) {
                const struct nlmsgerr *answer = mnl_nlmsg_get_payload(nlh);
                uint32_t index = nlh->nlmsg_seq - first;
                if (index < (uint32_t)count && errors[index] == -1) {
                    errors[index] = answer->error < 0 ? -answer->error : 0;
                    pending--;
                }
            }
            int rest = (int)left;
            nlh = mnl_nlmsg_next(nlh, &rest);
            left = (size_t)rest;
        }
    }
    for (int i = 0; i < count; i++) {
        if (errors[i] == -1) errors[i] = result != 0 ? -result : EIO;
    }
    free(requests);
    free(answers);
    mnl_socket_close(nl);
    return result;
}

struct kw_rt_list_state {
    uint32_t table;
    struct kw_rt_op *out;
    int cap;
    int count;
};

static int kw_rt_attribute(const struct nlattr *attr, void *data) {
    const struct nlattr **table = data;
    int type = mnl_attr_get_type(attr);
    if (mnl_attr_type_valid(attr, RTA_MAX) < 0) return MNL_CB_OK;
    switch (type) {
    case RTA_TABLE: case RTA_DST: case RTA_PREFSRC: case RTA_OIF:
        if (mnl_attr_validate(attr, MNL_TYPE_U32) < 0) return MNL_CB_OK;
        table[type] = attr;
        break;
    default:
        break;
    }
    return MNL_CB_OK;
}

static int kw_rt_route(const struct nlmsghdr *nlh, void *data) {
    struct kw_rt_list_state *state = data;
    if (nlh->nlmsg_type != RTM_NEWROUTE || mnl_nlmsg_get_payload_len(nlh) < sizeof(struct rtmsg)) return MNL_CB_OK;
    const struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);
    if (rtm->rtm_family != AF_INET || rtm->rtm_dst_len > 32) return MNL_CB_OK;
    const struct nlattr *attrs[RTA_MAX + 1];
    memset(attrs, 0, sizeof(attrs));
    mnl_attr_parse(nlh, sizeof(*rtm), kw_rt_attribute, attrs);
    uint32_t table = attrs[RTA_TABLE] ? mnl_attr_get_u32(attrs[RTA_TABLE]) : rtm->rtm_table;
    // A kernel without strict checking dumps every table: keep ours only.
    if (table != state->table || state->count >= state->cap) return MNL_CB_OK;
    struct kw_rt_op *route = &state->out[state->count++];
    memset(route, 0, sizeof(*route));
    route->kind = KW_RT_ROUTE_DELETE;
    route->table = table;
    route->prefix_length = rtm->rtm_dst_len;
    route->destination = attrs[RTA_DST] ? ntohl(mnl_attr_get_u32(attrs[RTA_DST])) : 0;
    route->source = attrs[RTA_PREFSRC] ? ntohl(mnl_attr_get_u32(attrs[RTA_PREFSRC])) : 0;
    route->ifindex = attrs[RTA_OIF] ? (int32_t)mnl_attr_get_u32(attrs[RTA_OIF]) : 0;
    return MNL_CB_OK;
}

int kw_rt_list(uint32_t table, struct kw_rt_op *out, int cap) {
    if (cap < 0) return -EINVAL;
    int error = 0;
    struct mnl_socket *nl = kw_rt_open(&error);
    if (nl == NULL) return -error;
    char *buf = malloc(KW_RT_RECV_SIZE);
    if (buf == NULL) { mnl_socket_close(nl); return -ENOMEM; }
    memset(buf, 0, KW_RT_MESSAGE_MAX);
    struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = RTM_GETROUTE;
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    uint32_t seq = kw_rt_next_sequence(1);
    nlh->nlmsg_seq = seq;
    struct rtmsg *rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
    rtm->rtm_family = AF_INET;
    rtm->rtm_table = kw_header_table(table);
    mnl_attr_put_u32(nlh, RTA_TABLE, table);
    struct kw_rt_list_state state = { .table = table, .out = out, .cap = cap, .count = 0 };
    int result = 0;
    if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
        result = -errno;
    } else {
        unsigned int portid = mnl_socket_get_portid(nl);
        for (;;) {
            ssize_t n = mnl_socket_recvfrom(nl, buf, KW_RT_RECV_SIZE);
            if (n < 0) {
                if (errno == EINTR) continue;
                result = -errno;
                break;
            }
            int rc = mnl_cb_run(buf, (size_t)n, seq, portid, kw_rt_route, &state);
            if (rc == MNL_CB_STOP) break;
            if (rc < 0) {
                // A table that does not exist has no routes to list.
                result = errno == ENOENT ? 0 : -errno;
                break;
            }
        }
    }
    free(buf);
    mnl_socket_close(nl);
    return result < 0 ? result : state.count;
}

// Path MTU look-ups: one RTM_GETROUTE (fibmatch, so that no cached PMTU exception counts: Keyway
// learns the path from validated ICMP only), then one RTM_GETLINK for the interface's MTU.

struct kw_rt_mtu_state {
    uint32_t ifindex;
    uint32_t route_mtu;
    uint32_t link_mtu;
    int multipath;
};

static int kw_rt_metric(const struct nlattr *attr, void *data) {
    struct kw_rt_mtu_state *state = data;
    if (mnl_attr_get_type(attr) == RTAX_MTU && mnl_attr_validate(attr, MNL_TYPE_U32) == 0) {
        state->route_mtu = mnl_attr_get_u32(attr);
    }
    return MNL_CB_OK;
}

static int kw_rt_mtu_attribute(const struct nlattr *attr, void *data) {
    struct kw_rt_mtu_state *state = data;
    switch (mnl_attr_get_type(attr)) {
    case RTA_OIF:
        if (mnl_attr_validate(attr, MNL_TYPE_U32) == 0) state->ifindex = mnl_attr_get_u32(attr);
        break;
    case RTA_METRICS:
        if (mnl_attr_validate(attr, MNL_TYPE_NESTED) == 0) mnl_attr_parse_nested(attr, kw_rt_metric, state);
        break;
    case RTA_MULTIPATH:
        state->multipath = 1;
        break;
    default:
        break;
    }
    return MNL_CB_OK;
}

static int kw_rt_mtu_route(const struct nlmsghdr *nlh, void *data) {
    if (nlh->nlmsg_type != RTM_NEWROUTE || mnl_nlmsg_get_payload_len(nlh) < sizeof(struct rtmsg)) return MNL_CB_OK;
    mnl_attr_parse(nlh, sizeof(struct rtmsg), kw_rt_mtu_attribute, data);
    return MNL_CB_OK;
}

static int kw_rt_link_attribute(const struct nlattr *attr, void *data) {
    struct kw_rt_mtu_state *state = data;
    if (mnl_attr_get_type(attr) == IFLA_MTU && mnl_attr_validate(attr, MNL_TYPE_U32) == 0) {
        state->link_mtu = mnl_attr_get_u32(attr);
    }
    return MNL_CB_OK;
}

static int kw_rt_mtu_link(const struct nlmsghdr *nlh, void *data) {
    if (nlh->nlmsg_type != RTM_NEWLINK || mnl_nlmsg_get_payload_len(nlh) < sizeof(struct ifinfomsg)) return MNL_CB_OK;
    mnl_attr_parse(nlh, sizeof(struct ifinfomsg), kw_rt_link_attribute, data);
    return MNL_CB_OK;
}

// Sends one request and runs the callback over its answer; 0 or a negative errno.
static int kw_rt_query(struct mnl_socket *nl, struct nlmsghdr *nlh, char *buf, mnl_cb_t callback, void *data) {
    uint32_t seq = kw_rt_next_sequence(1);
    nlh->nlmsg_seq = seq;
    if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) return -errno;
    unsigned int portid = mnl_socket_get_portid(nl);
    for (;;) {
        ssize_t n = mnl_socket_recvfrom(nl, buf, KW_RT_RECV_SIZE);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        int rc = mnl_cb_run(buf, (size_t)n, seq, portid, callback, data);
        if (rc == MNL_CB_STOP) return 0;
        if (rc < 0) return -errno;
        // A single answer without NLM_F_MULTI ends here.
        return 0;
    }
}

static int kw_rt_path_mtu_on(struct mnl_socket *nl, char *buf, uint32_t destination, uint32_t mark) {
    struct kw_rt_mtu_state state = { 0, 0, 0, 0 };
    memset(buf, 0, KW_RT_MESSAGE_MAX);
    struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = RTM_GETROUTE;
    nlh->nlmsg_flags = NLM_F_REQUEST;
    struct rtmsg *rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
    rtm->rtm_family = AF_INET;
    rtm->rtm_dst_len = 32;
    rtm->rtm_flags = RTM_F_FIB_MATCH;
    mnl_attr_put_u32(nlh, RTA_DST, htonl(destination));
    // Our outer packets carry the bypass mark: their look-up skips the table into the TUN device.
    mnl_attr_put_u32(nlh, RTA_MARK, mark);
    int result = kw_rt_query(nl, nlh, buf, kw_rt_mtu_route, &state);
    if (result == 0 && state.multipath) result = -EOPNOTSUPP;
    if (result == 0 && state.ifindex == 0) result = -ENETUNREACH;
    if (result == 0) {
        memset(buf, 0, KW_RT_MESSAGE_MAX);
        nlh = mnl_nlmsg_put_header(buf);
        nlh->nlmsg_type = RTM_GETLINK;
        nlh->nlmsg_flags = NLM_F_REQUEST;
        struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
        ifi->ifi_family = AF_UNSPEC;
        ifi->ifi_index = (int)state.ifindex;
        result = kw_rt_query(nl, nlh, buf, kw_rt_mtu_link, &state);
        if (result == 0 && state.link_mtu == 0) result = -ENODEV;
    }
    if (result < 0) return result;
    uint32_t mtu = state.link_mtu;
    if (state.route_mtu != 0 && state.route_mtu < mtu) mtu = state.route_mtu;
    return mtu > 65535 ? 65535 : (int)mtu;
}

int kw_rt_path_mtus(const uint32_t *destinations, int count, uint32_t mark, int32_t *mtus) {
    if (count < 0) return -EINVAL;
    int error = 0;
    struct mnl_socket *nl = kw_rt_open(&error);
    char *buf = nl != NULL ? malloc(KW_RT_RECV_SIZE) : NULL;
    if (buf == NULL) {
        int e = nl == NULL ? error : ENOMEM;
        if (nl != NULL) mnl_socket_close(nl);
        for (int i = 0; i < count; i++) mtus[i] = -e;
        return -e;
    }
    for (int i = 0; i < count; i++) mtus[i] = kw_rt_path_mtu_on(nl, buf, destinations[i], mark);
    free(buf);
    mnl_socket_close(nl);
    return 0;
}
