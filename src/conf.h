/*
 * conf.h - the main configuration file and zone files, read with
 * libconfig into plain structures.
 *
 * This is the only module that includes <libconfig.h>.  It checks syntax,
 * names, types and ranges, and reports the first error as "file:line:
 * message".  It does not interpret record data: the zone module does, and
 * reports its errors with the file and line kept here.
 */
#ifndef SPLITDNS_CONF_H
#define SPLITDNS_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define CONF_ERR_MAX 1024

/* Most worker threads (threads = N). */
#define CONF_MAX_THREADS 256

/* How an upstream server or a listen address is reached: the URL forms
 * of its text. */
enum conf_transport {
	CONF_UDP,   /* "ADDR[:PORT]", "udp://": UDP (and TCP beside it: for
		       truncated replies upstream, a TCP listener) */
	CONF_TCP,   /* "tcp://ADDR[:PORT]": TCP only (upstreams) */
	CONF_TLS,   /* "tls://ADDR[:PORT][#NAME]": DNS over TLS (RFC 7858) */
	CONF_HTTPS, /* "https://ADDR[:PORT][/PATH]" (listeners),
		       "https://NAME[:PORT][/PATH][#ADDR]" (upstreams): DNS
		       over HTTPS (RFC 8484) */
};

struct conf_addr {
	struct sockaddr_storage ss;
	socklen_t len;
	char addr[56];  /* normalised "1.2.3.4:53" or "[::1]:53" */
	char text[640]; /* addr, or the normalised URL: "tcp://1.2.3.4:53",
			   "tls://[::1]:853#dns.example", a listener's
			   "https://[::1]:443/dns-query", an upstream's
			   "https://dns.example:443/dns-query#192.0.2.1" */
	enum conf_transport kind;
	char tls_name[256]; /* tls upstreams: the name the certificate must
			       carry; "": its address (an IP address entry) */
	char path[256]; /* https: where queries go ("/dns-query") */
	char host[256]; /* https upstreams: NAME, or the address in the URL
			   ("[::1]" in brackets): :authority */
	uint16_t port;  /* https upstreams: the port, also when lookup */
	bool lookup;    /* https upstreams: no address yet (ss is empty);
			   NAME is looked up through the plain servers of
			   upstream.servers */
	int line;      /* where the configuration names it, 0 if nowhere */
};

struct conf_record {
	char *name;
	char *type;
	char *data;
	int64_t ttl; /* -1: the zone's default */
	int line;
};

struct conf_forward {
	char *domain;
	int line;
	struct conf_addr *servers;
	size_t nservers;
	bool refuse; /* answer REFUSED, never forward */
};

enum conf_block_mode {
	CONF_BLOCK_NULL,     /* 0.0.0.0 / ::, NODATA for other types */
	CONF_BLOCK_NXDOMAIN,
	CONF_BLOCK_NODATA,
	CONF_BLOCK_REFUSED,
	CONF_BLOCK_ADDRESS,  /* the addresses given */
};

struct conf_block {
	enum conf_block_mode mode;
	bool has_a, has_aaaa;
	uint8_t a[4], aaaa[16];
	char **lists;      /* files, globs expanded, relative to the main file,
			      and URLs (fetch_is_url) as written */
	size_t nlists;
	char **domains;
	size_t ndomains;
	char **allow;
	size_t nallow;
	char **regex;      /* PCRE2 patterns, checked when the lists load */
	size_t nregex;
	int regex_line;    /* of block.regex */
	int line;          /* of the block group, for messages */
	int lists_line;    /* of block.lists */
	int64_t ttl;
	bool cname;        /* block forwarded replies whose CNAMEs are blocked */
	int64_t refresh;       /* seconds between downloads of a URL list */
	int64_t fetch_timeout; /* seconds one download may take */
	int64_t max_list_size; /* bytes a downloaded list may have */
	char *ca;          /* CA file for https lists; NULL: system store */
	bool firefox_canary;      /* use-application-dns.net: NXDOMAIN */
	int icloud_private_relay; /* mask(-h2).icloud.com: NXDOMAIN; -1: not
				     set, on when this block config blocks
				     names (conf_block_icloud) */
};

/* A CIDR prefix of the access list. */
struct conf_prefix {
	int family;
	uint8_t addr[16];
	int bits;
};

/* Most client groups (clients = ( ... )). */
#define CONF_MAX_CLIENTS 64

/*
 * A client group: the clients whose address is in match get this
 * group's block settings and default upstream servers.  block starts as
 * a copy of the top-level block group, and the keys the group's own
 * block group names replace the copied values (lists, domains and allow
 * are replaced as a whole, not added to).
 */
struct conf_client {
	char *name;                /* [a-z0-9_-], unique, not "default" */
	int line;
	struct conf_prefix *match;
	char **match_text;         /* as written, for --explain */
	size_t nmatch;
	struct conf_block block;
	struct conf_addr *servers; /* NULL: the top-level upstream servers */
	size_t nservers;
};

struct conf_zone {
	char *path; /* as resolved; every record error names it */
	int line;   /* where the main file lists it */
	char *origin;
	int origin_line;
	int64_t ttl;
	bool authoritative;
	bool ptr;          /* answer PTR queries for the A/AAAA addresses */
	char **reverse;    /* CIDR prefixes whose reverse zone is ours */
	size_t nreverse;
	int reverse_line;
	struct conf_record *records;
	size_t nrecords;
};

/* log_privacy: what a query log line says about the client. */
enum conf_log_privacy {
	CONF_LOG_PRIVACY_NONE, /* "none": address and port */
	CONF_LOG_PRIVACY_MASK, /* "mask": IPv4 /24, IPv6 /48 */
	CONF_LOG_PRIVACY_HIDE, /* "hide": no client */
};

struct conf {
	char *path;
	struct conf_addr *listen;
	size_t nlisten;
	struct conf_addr *servers;
	size_t nservers;
	bool servers_from_resolv; /* upstream.servers was absent */
	int timeout_ms;
	int tries;
	int edns_size;
	int tcp_max_connections;
	int tcp_idle_timeout_ms;
	int tcp_query_timeout_ms;     /* a frame arrives whole within this */
	int tcp_write_timeout_ms;     /* clients must take some reply bytes */
	int tcp_max_per_client;       /* connections per client address */
	int64_t tcp_max_output;       /* reply bytes per connection */
	int64_t tcp_max_output_total; /* reply bytes over all connections */
	struct conf_zone *zones;
	size_t nzones;
	struct conf_forward *forwards;
	size_t nforwards;
	bool private_local;     /* single-label and private reverse names stay */
	bool rebind_protection; /* no private addresses for public names */
	char **rebind_ok;       /* domains exempt from rebind protection */
	size_t nrebind_ok;
	struct conf_block block;
	struct conf_client *clients; /* the first whose match holds the
					client decides; the rest: block */
	size_t nclients;
	struct conf_prefix *access; /* clients that may query */
	size_t naccess;
	int64_t cache_size;          /* entries; 0: no cache */
	int64_t cache_min_ttl;
	int64_t cache_max_ttl;
	int64_t cache_negative_ttl;
	int64_t cache_serve_stale;   /* seconds past expiry; 0: off */
	bool cache_prefetch;
	int threads;                 /* worker loops; 0: one per CPU */
	uint32_t limit_qps;          /* per client, UDP; 0: no rate limit */
	uint32_t limit_burst;        /* 0: twice limit_qps */
	uint32_t limit_inflight;     /* per client upstream; 0: no cap */
	uint32_t limit_slip;         /* every slip-th refused gets TC=1 */
	char *state_dir; /* cached copies of URL lists live below it */
	char *tls_ca;           /* tls.ca: trust these CAs, not the system's */
	int tls_ca_line;
	int tls_idle_timeout_ms; /* an idle tls:// upstream connection closes */
	int tls_max_queries;     /* queries over one tls:// connection */
	char *user;   /* switch to this user after binding; NULL: stay */
	int user_line;
	char *control;        /* the control socket's path; NULL: none */
	unsigned control_mode; /* its permission bits (default 0660) */
	char *control_group;  /* its group; NULL: the user's own */
	bool metrics_on;          /* metrics = "ADDR:PORT" is set */
	struct conf_addr metrics; /* where GET /metrics is served */
	char *dnstap;          /* "unix:PATH" or a file path; NULL: off */
	char *dnstap_identity; /* NULL: the host name */
	char *dnstap_version;  /* NULL: "splitdns VERSION" */
	/* The certificate of tls:// and https:// listeners (PEM, the chain
	 * in cert), read at start and at every reload; NULL: none. */
	char *tls_cert;
	char *tls_key;
	int tls_cert_line;
	int tls_handshake_timeout_ms; /* a handshake is done within this */
	int tls_max_handshakes;       /* handshakes in progress per worker */
	int https_max_streams;        /* HTTP/2 streams open per connection */
	/* The query log (splitdns.conf(5), QUERY LOG). */
	char *log_queries;       /* a file (resolved) or "syslog"; NULL: off */
	int64_t log_max_size;    /* bytes per file before rotation; 0: none */
	int64_t log_keep;        /* rotated files kept */
	int64_t log_queue;       /* entries per worker's queue */
	enum conf_log_privacy log_privacy;
};

/*
 * Read the main file at path and every zone file it names.  listen_override
 * (n entries, may be NULL) replaces the file's listen list.  Returns a new
 * config (caller frees with conf_free) or NULL with "file:line: message"
 * in err.
 */
struct conf *conf_load(const char *path, const char *const *listen_override,
			   size_t n_override, char *err, size_t errlen);

void conf_free(struct conf *cfg);

/*
 * Parse "1.2.3.4", "1.2.3.4:53", "::1", "[::1]:53".  Returns false with a
 * reason in *why.
 */
bool conf_parse_addr(const char *text, uint16_t default_port,
		       struct conf_addr *out, const char **why);

/*
 * Parse an upstream server: "ADDR[:PORT]", "udp://ADDR[:PORT]",
 * "tcp://ADDR[:PORT]" (port 53) or "tls://ADDR[:PORT][#NAME]" (port 853).
 * Returns false with a reason in *why, also for the forms this build does
 * not carry (https://, and tls:// when built --without-tls).
 */
bool conf_parse_server(const char *text, struct conf_addr *out,
		       const char **why);

/*
 * Parse a listen address: "ADDR[:PORT]" (port 53), "tls://ADDR[:PORT]"
 * (853) or "https://ADDR[:PORT][/PATH]" (443, path "/dns-query").
 * Returns false with a reason in *why, also for the forms a build
 * --without-tls does not carry.
 */
bool conf_parse_listen(const char *text, struct conf_addr *out,
		       const char **why);

/* Parse "10.0.0.0/8", "::1/128" or a bare address (a host prefix). */
bool conf_parse_prefix(const char *text, struct conf_prefix *out,
			 const char **why);

/* Does block config b answer mask.icloud.com with NXDOMAIN?  The setting
 * when given, else whether b blocks any names. */
bool conf_block_icloud(const struct conf_block *b);

/* Do a and b name the same lists, domains, allow entries and regular
 * expressions (so that one frozen block set can serve both)? */
bool conf_block_same_names(const struct conf_block *a,
			   const struct conf_block *b);

/* Read the nameserver lines of a resolv.conf-format file.  Returns the
 * number found (0..max), or -1 when the file cannot be read. */
int conf_read_resolv(const char *path, struct conf_addr *out, size_t max);

#endif
