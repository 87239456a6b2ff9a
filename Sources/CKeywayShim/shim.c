#define _GNU_SOURCE
#include "CKeywayShim.h"
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/syscall.h>
#include <unistd.h>

int kw_enable_pktinfo(int fd) {
    int one = 1;
    return setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one));
}

ssize_t kw_recv_udp(int fd, void *buf, size_t cap, uint32_t *src, uint16_t *sport, uint32_t *dst) {
    struct sockaddr_in from;
    struct iovec iov = { .iov_base = buf, .iov_len = cap };
    union { char buf[CMSG_SPACE(sizeof(struct in_pktinfo))]; struct cmsghdr align; } control;
    struct msghdr msg = { .msg_name = &from, .msg_namelen = sizeof(from), .msg_iov = &iov, .msg_iovlen = 1,
                          .msg_control = control.buf, .msg_controllen = sizeof(control.buf) };
    ssize_t n;
    do { n = recvmsg(fd, &msg, MSG_DONTWAIT); } while (n < 0 && errno == EINTR);
    if (n < 0) return -1;
    *src = ntohl(from.sin_addr.s_addr);
    *sport = ntohs(from.sin_port);
    *dst = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO &&
            c->cmsg_len >= CMSG_LEN(sizeof(struct in_pktinfo))) {
            struct in_pktinfo info;
            memcpy(&info, CMSG_DATA(c), sizeof(info));
            *dst = ntohl(info.ipi_addr.s_addr);
        }
    }
    return n;
}

ssize_t kw_send_udp_from(int fd, const void *buf, size_t len, uint32_t src, uint32_t dst, uint16_t dport) {
    struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(dport), .sin_addr.s_addr = htonl(dst) };
    struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
    union { char buf[CMSG_SPACE(sizeof(struct in_pktinfo))]; struct cmsghdr align; } control;
    struct msghdr msg = { .msg_name = &to, .msg_namelen = sizeof(to), .msg_iov = &iov, .msg_iovlen = 1 };
    if (src != 0) {
        memset(&control, 0, sizeof(control));
        msg.msg_control = control.buf;
        msg.msg_controllen = sizeof(control.buf);
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = IPPROTO_IP;
        c->cmsg_type = IP_PKTINFO;
        c->cmsg_len = CMSG_LEN(sizeof(struct in_pktinfo));
        struct in_pktinfo info;
        memset(&info, 0, sizeof(info));
        info.ipi_spec_dst.s_addr = htonl(src);
        memcpy(CMSG_DATA(c), &info, sizeof(info));
    }
    ssize_t n;
    do { n = sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL); } while (n < 0 && errno == EINTR);
    return n;
}

int kw_recv_batch(int fd, void *const *slots, const size_t *capacities, size_t *lengths, int count) {
    if (count <= 0 || count > KW_MAX_BATCH) { errno = EINVAL; return -1; }
    struct mmsghdr msgs[KW_MAX_BATCH];
    struct iovec iov[KW_MAX_BATCH];
    memset(msgs, 0, sizeof(struct mmsghdr) * (size_t)count);
    for (int i = 0; i < count; i++) {
        iov[i].iov_base = slots[i];
        iov[i].iov_len = capacities[i];
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    int n;
    do { n = recvmmsg(fd, msgs, (unsigned)count, MSG_DONTWAIT, NULL); } while (n < 0 && errno == EINTR);
    for (int i = 0; i < n; i++) lengths[i] = msgs[i].msg_len < capacities[i] ? msgs[i].msg_len : capacities[i];
    return n;
}

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif
#ifndef SOL_UDP
#define SOL_UDP 17
#endif

int kw_send_udp_vector(int fd, const void *const *slots, const size_t *lengths, const uint32_t *addresses,
                       const uint16_t *ports, const uint32_t *sources, int count, int segment, int *sent_packets) {
    if (count <= 0 || count > KW_MAX_BATCH) { errno = EINVAL; return -1; }
    struct mmsghdr msgs[KW_MAX_BATCH];
    struct iovec iov[KW_MAX_BATCH];
    struct sockaddr_in to[KW_MAX_BATCH];
    union control {
        char buf[CMSG_SPACE(sizeof(uint16_t)) + CMSG_SPACE(sizeof(struct in_pktinfo))];
        struct cmsghdr align;
    } controls[KW_MAX_BATCH];
    int first_packet[KW_MAX_BATCH + 1];
    memset(msgs, 0, sizeof(struct mmsghdr) * (size_t)count);
    int m = 0;
    for (int i = 0; i < count;) {
        // With segment set, one message holds consecutive packets to one destination from one
        // source, all of the first one's size but the last (which may be shorter), at most 64 of
        // them and 60,000 bytes: the kernel cuts them apart (UDP_SEGMENT).
        int j = i + 1;
        size_t total = lengths[i];
        while (segment && j < count && j - i < 64 && addresses[j] == addresses[i] && ports[j] == ports[i]
               && sources[j] == sources[i] && lengths[j] <= lengths[i] && lengths[j - 1] == lengths[i]
               && total + lengths[j] <= 60000) {
            total += lengths[j];
            j++;
        }
        for (int k = i; k < j; k++) { iov[k].iov_base = (void *)slots[k]; iov[k].iov_len = lengths[k]; }
        memset(&to[m], 0, sizeof(to[m]));
        to[m].sin_family = AF_INET;
        to[m].sin_addr.s_addr = addresses[i];
        to[m].sin_port = ports[i];
        msgs[m].msg_hdr.msg_iov = &iov[i];
        msgs[m].msg_hdr.msg_iovlen = (size_t)(j - i);
        msgs[m].msg_hdr.msg_name = &to[m];
        msgs[m].msg_hdr.msg_namelen = sizeof(struct sockaddr_in);
        memset(&controls[m], 0, sizeof(controls[m]));
        size_t used = 0;
        if (j - i > 1 || sources[i] != 0) {
            msgs[m].msg_hdr.msg_control = controls[m].buf;
            msgs[m].msg_hdr.msg_controllen = sizeof(controls[m].buf);
            struct cmsghdr *c = CMSG_FIRSTHDR(&msgs[m].msg_hdr);
            if (j - i > 1) {
                c->cmsg_level = SOL_UDP;
                c->cmsg_type = UDP_SEGMENT;
                c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
                uint16_t size = (uint16_t)lengths[i];
                memcpy(CMSG_DATA(c), &size, sizeof(size));
                used += CMSG_SPACE(sizeof(uint16_t));
                c = CMSG_NXTHDR(&msgs[m].msg_hdr, c);
            }
            if (sources[i] != 0 && c != NULL) {
                // The datagram leaves from the SA's own address (a multihomed host).
                c->cmsg_level = IPPROTO_IP;
                c->cmsg_type = IP_PKTINFO;
                c->cmsg_len = CMSG_LEN(sizeof(struct in_pktinfo));
                struct in_pktinfo info;
                memset(&info, 0, sizeof(info));
                info.ipi_spec_dst.s_addr = sources[i];
                memcpy(CMSG_DATA(c), &info, sizeof(info));
                used += CMSG_SPACE(sizeof(struct in_pktinfo));
            }
            msgs[m].msg_hdr.msg_controllen = used;
        }
        first_packet[m] = i;
        m++;
        i = j;
    }
    first_packet[m] = count;
    int n;
    do { n = sendmmsg(fd, msgs, (unsigned)m, MSG_DONTWAIT | MSG_NOSIGNAL); } while (n < 0 && errno == EINTR);
    *sent_packets = n > 0 ? first_packet[n] : 0;
    return n;
}

int kw_recv_udp_gro(int fd, void *const *slots, const size_t *capacities, size_t *lengths, uint32_t *sources,
                    uint16_t *ports, uint32_t *locals, uint16_t *segment_sizes, int count) {
    if (count <= 0 || count > KW_MAX_BATCH) { errno = EINVAL; return -1; }
    struct mmsghdr msgs[KW_MAX_BATCH];
    struct iovec iov[KW_MAX_BATCH];
    struct sockaddr_in from[KW_MAX_BATCH];
    union control { char buf[CMSG_SPACE(sizeof(struct in_pktinfo)) + CMSG_SPACE(sizeof(int))]; struct cmsghdr align; }
        controls[KW_MAX_BATCH];
    memset(msgs, 0, sizeof(struct mmsghdr) * (size_t)count);
    for (int i = 0; i < count; i++) {
        iov[i].iov_base = slots[i];
        iov[i].iov_len = capacities[i];
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_hdr.msg_name = &from[i];
        msgs[i].msg_hdr.msg_namelen = sizeof(from[i]);
        msgs[i].msg_hdr.msg_control = controls[i].buf;
        msgs[i].msg_hdr.msg_controllen = sizeof(controls[i].buf);
    }
    int n;
    do { n = recvmmsg(fd, msgs, (unsigned)count, MSG_DONTWAIT, NULL); } while (n < 0 && errno == EINTR);
    for (int i = 0; i < n; i++) {
        lengths[i] = msgs[i].msg_len < capacities[i] ? msgs[i].msg_len : capacities[i];
        sources[i] = ntohl(from[i].sin_addr.s_addr);
        ports[i] = ntohs(from[i].sin_port);
        locals[i] = 0;
        segment_sizes[i] = 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&msgs[i].msg_hdr); c != NULL; c = CMSG_NXTHDR(&msgs[i].msg_hdr, c)) {
            if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO &&
                c->cmsg_len >= CMSG_LEN(sizeof(struct in_pktinfo))) {
                struct in_pktinfo info;
                memcpy(&info, CMSG_DATA(c), sizeof(info));
                locals[i] = ntohl(info.ipi_addr.s_addr);
            } else if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO && c->cmsg_len >= CMSG_LEN(sizeof(int))) {
                int size = 0;
                memcpy(&size, CMSG_DATA(c), sizeof(int));
                segment_sizes[i] = size > 0 && size <= 0xffff ? (uint16_t)size : 0;
            }
        }
    }
    return n;
}

int kw_enable_udp_gro(int fd) {
    int one = 1;
    return setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof(one));
}

int kw_send_batch(int fd, const void *const *slots, const size_t *lengths, const uint32_t *addresses,
                  const uint16_t *ports, int count) {
    if (count <= 0 || count > KW_MAX_BATCH) { errno = EINVAL; return -1; }
    struct mmsghdr msgs[KW_MAX_BATCH];
    struct iovec iov[KW_MAX_BATCH];
    struct sockaddr_in to[KW_MAX_BATCH];
    memset(msgs, 0, sizeof(struct mmsghdr) * (size_t)count);
    memset(to, 0, sizeof(struct sockaddr_in) * (size_t)count);
    for (int i = 0; i < count; i++) {
        iov[i].iov_base = (void *)slots[i];
        iov[i].iov_len = lengths[i];
        to[i].sin_family = AF_INET;
        to[i].sin_addr.s_addr = addresses[i];
        to[i].sin_port = ports[i];
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_hdr.msg_name = &to[i];
        msgs[i].msg_hdr.msg_namelen = sizeof(struct sockaddr_in);
    }
    int n;
    do { n = sendmmsg(fd, msgs, (unsigned)count, MSG_DONTWAIT); } while (n < 0 && errno == EINTR);
    return n;
}

ssize_t kw_send_with_fds(int sock, const void *buf, size_t len, const int *fds, int nfds) {
    if (nfds < 0 || nfds > KW_MAX_FDS) { errno = EINVAL; return -1; }
    struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
    union { char buf[CMSG_SPACE(sizeof(int) * KW_MAX_FDS)]; struct cmsghdr align; } control;
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
    if (nfds > 0) {
        memset(&control, 0, sizeof(control));
        msg.msg_control = control.buf;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
    }
    return sendmsg(sock, &msg, MSG_NOSIGNAL);
}

ssize_t kw_recv_with_fds(int sock, void *buf, size_t cap, int *fds, int maxfds, int *nfds, int *flags, int dontwait) {
    struct iovec iov = { .iov_base = buf, .iov_len = cap };
    union { char buf[CMSG_SPACE(sizeof(int) * KW_MAX_FDS)]; struct cmsghdr align; } control;
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                          .msg_controllen = sizeof(control.buf) };
    *nfds = 0;
    ssize_t n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | (dontwait ? MSG_DONTWAIT : 0));
    if (n < 0) return n;
    *flags = msg.msg_flags;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        int got[KW_MAX_FDS];
        if (count > KW_MAX_FDS) count = KW_MAX_FDS;
        memcpy(got, CMSG_DATA(c), count * sizeof(int));
        for (size_t i = 0; i < count; i++) {
            // Descriptors beyond what the caller wants are closed, never leaked.
            if (*nfds < maxfds) fds[(*nfds)++] = got[i]; else close(got[i]);
        }
    }
    return n;
}

int kw_tun_open(const char *name, char *actual_name_out) { return kw_tun_open_vnet(name, actual_name_out, 0); }

int kw_tun_set_offload(int fd, unsigned flags) { return ioctl(fd, TUNSETOFFLOAD, (unsigned long)flags); }

int kw_tun_open_vnet(const char *name, char *actual_name_out, int vnet_header) {
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (fd < 0) return -1;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI | (vnet_header ? IFF_VNET_HDR : 0);
    strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) { int e = errno; close(fd); errno = e; return -1; }
    if (actual_name_out) { memcpy(actual_name_out, ifr.ifr_name, IFNAMSIZ); actual_name_out[IFNAMSIZ - 1] = 0; }
    return fd;
}

int kw_if_set_up(const char *name, int mtu) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) return -1;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    int rc = 0;
    if (mtu > 0) { ifr.ifr_mtu = mtu; rc = ioctl(s, SIOCSIFMTU, &ifr); }
    if (rc == 0) rc = ioctl(s, SIOCGIFFLAGS, &ifr);
    if (rc == 0) { ifr.ifr_flags |= IFF_UP; rc = ioctl(s, SIOCSIFFLAGS, &ifr); }
    int e = errno; close(s); errno = e;
    return rc;
}

int kw_if_index(const char *name) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) return -1;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    int rc = ioctl(s, SIOCGIFINDEX, &ifr);
    int e = errno; close(s); errno = e;
    return rc < 0 ? -1 : ifr.ifr_ifindex;
}

int kw_setresuid(uid_t r, uid_t e, uid_t s) { return setresuid(r, e, s); }
int kw_setresgid(gid_t r, gid_t e, gid_t s) { return setresgid(r, e, s); }
int kw_getresuid(uid_t *r, uid_t *e, uid_t *s) { return getresuid(r, e, s); }
int kw_set_no_new_privs(void) { return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); }
int kw_get_no_new_privs(void) { return prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0); }
int kw_set_keepcaps(int on) { return prctl(PR_SET_KEEPCAPS, on ? 1 : 0, 0, 0, 0); }
int kw_capbset_drop(int cap) { return prctl(PR_CAPBSET_DROP, cap, 0, 0, 0); }
int kw_ambient_clear_all(void) { return prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); }
int kw_set_dumpable(int on) { return prctl(PR_SET_DUMPABLE, on ? 1 : 0, 0, 0, 0); }
int kw_set_parent_death_signal(int sig) { return prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0); }

pid_t kw_spawn(const char *path, char *const argv[], char *const envp[], int fd3) {
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    pid_t pid = -1;
    int rc = posix_spawn_file_actions_init(&fa);
    if (rc != 0) { errno = rc; return -1; }
    rc = posix_spawnattr_init(&attr);
    if (rc != 0) { posix_spawn_file_actions_destroy(&fa); errno = rc; return -1; }
    // glibc clears FD_CLOEXEC when fd3 is already 3 (POSIX 2017 adddup2 semantics).
    rc = posix_spawn_file_actions_adddup2(&fa, fd3, 3);
    if (rc == 0) rc = posix_spawn_file_actions_addclosefrom_np(&fa, 4);
    sigset_t empty, all;
    sigemptyset(&empty);
    sigfillset(&all);
    sigdelset(&all, SIGKILL);
    sigdelset(&all, SIGSTOP);
    if (rc == 0) rc = posix_spawnattr_setsigmask(&attr, &empty);
    if (rc == 0) rc = posix_spawnattr_setsigdefault(&attr, &all);
    if (rc == 0) rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    if (rc == 0) rc = posix_spawn(&pid, path, &fa, &attr, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) { errno = rc; return -1; }
    return pid;
}

int kw_signalfd_open(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0) return -1;
    signal(SIGPIPE, SIG_IGN);
    return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

int kw_interrupt_open(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0) return -1;
    return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

void kw_interrupt_close(int fd) {
    sigset_t set;
    struct signalfd_siginfo si;
    /* A Ctrl-C that came while watching is consumed here, not delivered once unblocked. */
    while (read(fd, &si, sizeof si) == (ssize_t)sizeof si) {}
    close(fd);
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
}

int kw_signalfd_read(int fd) {
    struct signalfd_siginfo si;
    ssize_t n = read(fd, &si, sizeof(si));
    if (n < 0) return (errno == EAGAIN) ? 0 : -1;
    if (n != sizeof(si)) { errno = EIO; return -1; }
    return (int)si.ssi_signo;
}

void kw_ignore_sigpipe(void) { signal(SIGPIPE, SIG_IGN); }

int kw_accept_nonblocking(int listener) { return accept4(listener, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK); }

int kw_peercred(int sock, pid_t *pid, uid_t *uid, gid_t *gid) {
    struct ucred cred;
    socklen_t len = sizeof(cred);
    if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) return -1;
    *pid = cred.pid; *uid = cred.uid; *gid = cred.gid;
    return 0;
}

int kw_peergroups(int sock, gid_t *groups, int capacity) {
    socklen_t len = (socklen_t)(capacity * (int)sizeof(gid_t));
    if (getsockopt(sock, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0) {
        /* ERANGE: len now says how much room the list needs. */
        if (errno == ERANGE) return -(int)(len / sizeof(gid_t)) - 1;
        return -1;
    }
    return (int)(len / sizeof(gid_t));
}

int kw_set_mark(int sock, uint32_t mark) {
    return setsockopt(sock, SOL_SOCKET, SO_MARK, &mark, sizeof(mark));
}

void kw_stdout_line_buffered(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    setvbuf(stderr, NULL, _IONBF, 0);
}

long kw_raw_syscall6(long nr, long a0, long a1, long a2, long a3, long a4, long a5) {
    long rc = syscall(nr, a0, a1, a2, a3, a4, a5);
    return rc == -1 ? -errno : rc;
}
