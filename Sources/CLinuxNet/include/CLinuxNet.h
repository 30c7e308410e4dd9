#ifndef JAMZ_CLINUXNET_H
#define JAMZ_CLINUXNET_H
/* rtnetlink, for the kernel's notices of network interfaces and IPv4 addresses coming, going and
   changing (RTMGRP_LINK, RTMGRP_IPV4_IFADDR). Swift's Glibc module has none of <linux/netlink.h>
   or <linux/rtnetlink.h>: this header brings their structs (nlmsghdr, ifinfomsg, ifaddrmsg,
   rtattr, sockaddr_nl) and constants (RTM_*, IFLA_*, IFA_*, NLMSG_*, RTMGRP_*) in as they are.
   The NLMSG_ and RTA_ walking macros are function-like: their one quirk, 4-byte alignment
   (NLMSG_ALIGNTO, RTA_ALIGNTO), is given here as a constant and the walk is done in Swift on
   the imported struct sizes. Also <sys/eventfd.h> (the stop of the thread that reads them), and
   setns(2) for the tests that run a transport in a network namespace of its own (declared by
   glibc only under _GNU_SOURCE). */
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <sys/eventfd.h>
#include <linux/sched.h>
#include <sys/syscall.h>
#include <unistd.h>

static inline unsigned int jamz_nlmsg_alignto(void) { return NLMSG_ALIGNTO; }
static inline unsigned int jamz_rta_alignto(void) { return RTA_ALIGNTO; }
/** Moves the calling thread into the network namespace open at `fd` (/run/netns/NAME): the
    sockets it makes from then on belong there. 0 or -1 (errno set). */
static inline int jamz_setns_net(int fd) { return (int)syscall(SYS_setns, fd, CLONE_NEWNET); }
#endif
