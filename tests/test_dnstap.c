/*
 * test_dnstap.c - dnstap_encode's frames, decoded again by protobuf-c's
 * own unpack from the schema (src/dnstap.proto), field by field.
 */
#include <config.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/dnstap.h"
#include "dnstap.pb-c.h"
#include "tap.h"

static const uint8_t query[] = {0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0,
				0, 0, 3, 'n', 'a', 's', 0, 0, 1, 0, 1};

static bool same_bytes(ProtobufCBinaryData b, const void *p, size_t len)
{
	return b.len == len && memcmp(b.data, p, len) == 0;
}

static void client_query_v4(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET,
				  .sin_port = htons(40000)};
	struct timespec t = {1700000000, 123456789};
	struct dnstap_msg m = {
		.type = DNSTAP_CLIENT_QUERY,
		.protocol = DNSTAP_PROTO_UDP,
		.query_addr = (const struct sockaddr *)&sin,
		.query_time = &t,
		.query = query,
		.query_len = sizeof(query),
	};
	size_t len = 0;

	inet_pton(AF_INET, "192.0.2.7", &sin.sin_addr);
	uint8_t *buf = dnstap_encode(&m, "host1", "splitdns 9", &len);
	ok(buf && len > 0, "CLIENT_QUERY encodes");
	Dnstap__Dnstap *dt = dnstap__dnstap__unpack(NULL, len, buf);
	ok(dt != NULL, "... and unpacks");
	if (!dt) {
		free(buf);
		return;
	}
	ok(dt->type == DNSTAP__DNSTAP__TYPE__MESSAGE, "frame type MESSAGE");
	ok(dt->has_identity && same_bytes(dt->identity, "host1", 5),
	   "identity");
	ok(dt->has_version && same_bytes(dt->version, "splitdns 9", 10),
	   "version");
	Dnstap__Message *msg = dt->message;
	ok(msg && msg->type == DNSTAP__MESSAGE__TYPE__CLIENT_QUERY,
	   "message type CLIENT_QUERY");
	if (msg) {
		ok(msg->has_socket_family &&
			   msg->socket_family == DNSTAP__SOCKET_FAMILY__INET,
		   "family INET");
		ok(msg->has_socket_protocol &&
			   msg->socket_protocol == DNSTAP__SOCKET_PROTOCOL__UDP,
		   "protocol UDP");
		ok(msg->has_query_address &&
			   same_bytes(msg->query_address, &sin.sin_addr, 4),
		   "query address 192.0.2.7");
		ok(msg->has_query_port && msg->query_port == 40000,
		   "query port");
		ok(!msg->has_response_address && !msg->has_response_port,
		   "no response address (not known)");
		ok(msg->has_query_time_sec &&
			   msg->query_time_sec == 1700000000 &&
			   msg->has_query_time_nsec &&
			   msg->query_time_nsec == 123456789,
		   "query time");
		ok(!msg->has_response_time_sec, "no response time");
		ok(msg->has_query_message &&
			   same_bytes(msg->query_message, query,
				      sizeof(query)),
		   "query message, as given");
		ok(!msg->has_response_message, "no response message");
	}
	dnstap__dnstap__free_unpacked(dt, NULL);
	free(buf);
}

static void forwarder_response_v6(void)
{
	struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6,
				    .sin6_port = htons(5353)};
	struct timespec t0 = {1700000001, 5}, t1 = {1700000002, 999999999};
	uint8_t resp[sizeof(query)];
	memcpy(resp, query, sizeof(resp));
	resp[2] |= 0x80;
	struct dnstap_msg m = {
		.type = DNSTAP_FORWARDER_RESPONSE,
		.protocol = DNSTAP_PROTO_DOT,
		.query_time = &t0,
		.response_time = &t1,
		.response = resp,
		.response_len = sizeof(resp),
	};
	size_t len = 0;

	uint8_t *buf = dnstap_encode(&m, NULL, NULL, &len);
	Dnstap__Dnstap *dt = buf ? dnstap__dnstap__unpack(NULL, len, buf)
				 : NULL;
	ok(dt && dt->message, "FORWARDER_RESPONSE encodes and unpacks");
	if (dt && dt->message) {
		Dnstap__Message *msg = dt->message;
		ok(!dt->has_identity && !dt->has_version,
		   "no identity or version when none given");
		ok(msg->type == DNSTAP__MESSAGE__TYPE__FORWARDER_RESPONSE,
		   "type FORWARDER_RESPONSE");
		ok(msg->socket_protocol == DNSTAP__SOCKET_PROTOCOL__DOT,
		   "protocol DOT");
		ok(!msg->has_socket_family && !msg->has_query_address,
		   "upstream address left out, not invented");
		ok(msg->query_time_sec == 1700000001 &&
			   msg->query_time_nsec == 5 &&
			   msg->response_time_sec == 1700000002 &&
			   msg->response_time_nsec == 999999999,
		   "query and response times");
		ok(msg->has_response_message &&
			   same_bytes(msg->response_message, resp,
				      sizeof(resp)) &&
			   !msg->has_query_message,
		   "response message only");
	}
	if (dt)
		dnstap__dnstap__free_unpacked(dt, NULL);
	free(buf);

	/* A client's IPv6 address and a DoH transport. */
	inet_pton(AF_INET6, "2001:db8::53", &sin6.sin6_addr);
	m = (struct dnstap_msg){
		.type = DNSTAP_CLIENT_RESPONSE,
		.protocol = DNSTAP_PROTO_DOH,
		.query_addr = (const struct sockaddr *)&sin6,
		.response = resp,
		.response_len = sizeof(resp),
	};
	buf = dnstap_encode(&m, "", NULL, &len);
	dt = buf ? dnstap__dnstap__unpack(NULL, len, buf) : NULL;
	ok(dt && dt->message &&
		   dt->message->type ==
			   DNSTAP__MESSAGE__TYPE__CLIENT_RESPONSE &&
		   dt->message->socket_family ==
			   DNSTAP__SOCKET_FAMILY__INET6 &&
		   same_bytes(dt->message->query_address, &sin6.sin6_addr,
			      16) &&
		   dt->message->query_port == 5353 &&
		   dt->message->socket_protocol ==
			   DNSTAP__SOCKET_PROTOCOL__DOH,
	   "CLIENT_RESPONSE over DoH from 2001:db8::53 port 5353");
	if (dt)
		dnstap__dnstap__free_unpacked(dt, NULL);
	free(buf);
}

int main(void)
{
	client_query_v4();
	forwarder_response_v6();
	return done_testing();
}
