/*
 * policy.h - where a query that has no local data goes: which upstream
 * group, or refused, or kept private (NXDOMAIN), and whether a forwarded
 * reply may be passed on (DNS-rebind protection).
 *
 * Built from the configuration once per (re)load and immutable after.
 * Local zones are consulted before the policy, by the pipeline.
 */
#ifndef SPLITDNS_POLICY_H
#define SPLITDNS_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct conf;
struct policy;

enum policy_action {
	POLICY_FORWARD, /* to decision.group */
	POLICY_REFUSE,  /* a forward rule with refuse = true */
	POLICY_PRIVATE, /* private name with no rule: NXDOMAIN, never sent */
};

struct policy_decision {
	enum policy_action action;
	size_t group; /* 0: default upstreams; i: forward rule i - 1 */
};

/* Returns NULL with a message in err. */
struct policy *policy_build(const struct conf *cfg, char *err,
			    size_t errlen);
void policy_free(struct policy *p);

/* Decide for a query of qtype for name (wire form, any case). */
void policy_decide(const struct policy *p, const uint8_t *name, size_t len,
		   uint16_t qtype, struct policy_decision *d);

/* May this client (a sockaddr_in or sockaddr_in6) query us? */
bool policy_client_allowed(const struct policy *p, const void *sockaddr);

struct conf_prefix;

/* The index of the first of the n prefixes that holds the address of
 * sockaddr (an IPv4 address mapped into IPv6 counts as IPv4), or n when
 * none does. */
size_t policy_prefix_find(const struct conf_prefix *prefixes, size_t n,
			  const void *sockaddr);

/*
 * DNS-rebind protection: true when reply (an upstream answer to name, sent
 * to group) puts a private, loopback or link-local address in the answer
 * section of a name that is neither sent to a forward rule nor listed in
 * rebind_ok.  Groups past the forward rules (a client group's servers)
 * are protected like the default one.
 */
bool policy_rebind(const struct policy *p, size_t group, const uint8_t *name,
		   size_t len, const uint8_t *reply, size_t rlen);

#endif
