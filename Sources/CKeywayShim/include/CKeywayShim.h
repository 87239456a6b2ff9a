#ifndef CKEYWAY_SHIM_H
#define CKEYWAY_SHIM_H
// What Swift cannot import: macros (CMSG_*, TUNSETIFF), variadic prctl, GNU-only calls,
// posix_spawn with closefrom. Every function returns -1 with errno set on failure unless noted.
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

// SCM_RIGHTS over a connected SOCK_SEQPACKET socket. nfds <= KW_MAX_FDS.
#define KW_MAX_FDS 4
ssize_t kw_send_with_fds(int sock, const void *buf, size_t len, const int *fds, int nfds);
// Receives one datagram; received fds are close-on-exec. *flags gets msg_flags (MSG_TRUNC, MSG_CTRUNC).
ssize_t kw_recv_with_fds(int sock, void *buf, size_t cap, int *fds, int maxfds, int *nfds, int *flags, int dontwait);

// recvmmsg/sendmmsg (GNU-only). The caller owns every array, each of `count` entries: slot
// pointers, their capacities (receive) or lengths (send), and, for send, IPv4 destinations in
// network order. Receive writes each datagram's length to lengths[]. Both return the number of
// datagrams moved, or -1 with errno (EAGAIN when nothing could be moved). count <= KW_MAX_BATCH.
#define KW_MAX_BATCH 128
int kw_recv_batch(int fd, void *const *slots, const size_t *capacities, size_t *lengths, int count);
// sendmmsg on a UDP socket, each packet from its source address (network order, 0: by route;
// IP_PKTINFO). With segment set, consecutive packets to one destination, all of one size but the
// last, go as one message the kernel cuts apart (UDP_SEGMENT). Returns the messages sent (or -1
// with errno); *sent_packets gets how many packets those carried.
int kw_send_udp_vector(int fd, const void *const *slots, const size_t *lengths, const uint32_t *addresses,
                       const uint16_t *ports, const uint32_t *sources, int count, int segment, int *sent_packets);
// recvmmsg on a UDP socket with IP_PKTINFO: each datagram's sender (address, port) and the local
// address it was sent to, all in host order; with UDP_GRO on, a datagram may hold several of the
// sender's, each segment_sizes[i] long but the last (0: one datagram, as always without UDP_GRO).
int kw_recv_udp_gro(int fd, void *const *slots, const size_t *capacities, size_t *lengths, uint32_t *sources,
                    uint16_t *ports, uint32_t *locals, uint16_t *segment_sizes, int count);
int kw_enable_udp_gro(int fd);
int kw_send_batch(int fd, const void *const *slots, const size_t *lengths, const uint32_t *addresses,
                  const uint16_t *ports, int count);

// One UDP datagram without blocking, with its sender and (IP_PKTINFO on the socket) the local
// address it was sent to, all in host order. Returns the length, or -1 with errno.
ssize_t kw_recv_udp(int fd, void *buf, size_t cap, uint32_t *src, uint16_t *sport, uint32_t *dst);
int kw_enable_pktinfo(int fd);
// One UDP datagram to dst:dport (host order) without blocking. A non-zero src (host order) goes
// in an IP_PKTINFO control message as ipi_spec_dst: the datagram leaves from that local address
// (a multihomed responder answers from the address the peer used). Returns the length sent, or -1.
ssize_t kw_send_udp_from(int fd, const void *buf, size_t len, uint32_t src, uint32_t dst, uint16_t dport);

int kw_tun_open(const char *name, char *actual_name_out /* IFNAMSIZ */);
// With vnet_header, every read and write carries a 10-byte virtio_net_hdr (IFF_VNET_HDR).
int kw_tun_open_vnet(const char *name, char *actual_name_out /* IFNAMSIZ */, int vnet_header);
// TUNSETOFFLOAD: what the kernel may hand us unsegmented or with partial checksums.
#define KW_TUN_F_CSUM 0x01
#define KW_TUN_F_TSO4 0x02
#define KW_TUN_F_TSO6 0x04
#define KW_TUN_F_TSO_ECN 0x08
#define KW_TUN_F_USO4 0x20
#define KW_TUN_F_USO6 0x40
int kw_tun_set_offload(int fd, unsigned flags);
int kw_if_set_up(const char *name, int mtu);
int kw_if_index(const char *name);

int kw_setresuid(uid_t r, uid_t e, uid_t s);
int kw_setresgid(gid_t r, gid_t e, gid_t s);
int kw_getresuid(uid_t *r, uid_t *e, uid_t *s);
int kw_set_no_new_privs(void);
int kw_get_no_new_privs(void);
int kw_set_keepcaps(int on);
int kw_capbset_drop(int cap);
int kw_ambient_clear_all(void);
int kw_set_dumpable(int on);
int kw_set_parent_death_signal(int sig);

// Spawns path with argv/envp, the given fd dup'd to 3, every other fd >= 4 closed, the signal
// mask emptied and signal dispositions reset. Returns pid or -1.
pid_t kw_spawn(const char *path, char *const argv[], char *const envp[], int fd3);

// Blocks SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGPIPE and returns a non-blocking signalfd for the first four.
int kw_signalfd_open(void);
// Returns the signal number read, 0 if none is pending, -1 on error.
int kw_signalfd_read(int fd);
/* SIGINT as a readable descriptor (blocked meanwhile), and back to normal. */
int kw_interrupt_open(void);
void kw_interrupt_close(int fd);
// Ignores SIGPIPE: a peer closing its socket must be an EPIPE, never a death.
void kw_ignore_sigpipe(void);

int kw_accept_nonblocking(int listener);
int kw_peercred(int sock, pid_t *pid, uid_t *uid, gid_t *gid);
/* The peer's supplementary groups (SO_PEERGROUPS): their count; -1 with errno on failure;
   -(needed + 1) with errno ERANGE when `capacity` is too small. */
int kw_peergroups(int sock, gid_t *groups, int capacity);
int kw_set_mark(int sock, uint32_t mark);
void kw_stdout_line_buffered(void);

// A raw syscall by number with six integer arguments, for the seccomp check tool. Returns the
// result, or -errno.
long kw_raw_syscall6(long nr, long a0, long a1, long a2, long a3, long a4, long a5);

#endif
