/*
 * The memif wire protocol, as VPP's libmemif and DPDK's net_memif driver speak it: control
 * messages on an AF_UNIX SOCK_SEQPACKET socket, and the ring / descriptor layout in the shared
 * memory regions. Defined once, here; every size and offset is asserted because the peer is
 * another program compiled by someone else.
 *
 * The protocol version on the wire is 2.0 (0x0200): that is what both implementations send in
 * HELLO / INIT today. ("Version 1" in older write-ups is the pre-2018 layout nobody speaks.)
 *
 * Roles: the client (called "slave" in older sources) owns all shared memory. It creates the
 * regions and rings, passes them to the server with ADD_REGION / ADD_RING, and for each ring an
 * eventfd that the producer writes to interrupt the consumer. Ring directions are named from
 * the client: C2S (client to server, "S2M" in older sources) and S2C.
 *
 * Ring semantics (both directions use buffers the client provides):
 *   C2S: the client writes descriptors and advances head; the server consumes from its last
 *        position up to head and advances tail when the buffers may be reused.
 *   S2C: the client puts empty buffers in descriptors and advances head; the server fills
 *        them (length, flags) and advances tail; the client consumes up to tail.
 * head and tail are free-running 16-bit counters; slot = counter & (size - 1).
 */
#ifndef XRING_NIC_MEMIF_PROTO_H
#define XRING_NIC_MEMIF_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define MEMIF_COOKIE    0x3E31F20u
#define MEMIF_VERSION   0x0200u /* major 2, minor 0 */
#define MEMIF_NAME_SZ   32
#define MEMIF_SECRET_SZ 24
#define MEMIF_MSG_SIZE  128

enum memif_msg_type {
	MEMIF_MSG_NONE = 0,
	MEMIF_MSG_ACK = 1,
	MEMIF_MSG_HELLO = 2,
	MEMIF_MSG_INIT = 3,
	MEMIF_MSG_ADD_REGION = 4,
	MEMIF_MSG_ADD_RING = 5,
	MEMIF_MSG_CONNECT = 6,
	MEMIF_MSG_CONNECTED = 7,
	MEMIF_MSG_DISCONNECT = 8,
};

enum memif_mode {
	MEMIF_MODE_ETHERNET = 0,
	MEMIF_MODE_IP = 1,
	MEMIF_MODE_PUNT_INJECT = 2,
};

/* server -> client, first message on a new connection */
struct memif_msg_hello {
	uint8_t name[MEMIF_NAME_SZ];
	uint16_t min_version;
	uint16_t max_version;
	uint16_t max_region;   /* highest region index accepted */
	uint16_t max_s2c_ring; /* highest S2C ring index accepted */
	uint16_t max_c2s_ring; /* highest C2S ring index accepted */
	uint8_t max_log2_ring_size;
} __attribute__((packed));

/* client -> server: which interface, and proof of the secret */
struct memif_msg_init {
	uint16_t version;
	uint32_t id;
	uint8_t mode; /* enum memif_mode */
	uint8_t secret[MEMIF_SECRET_SZ];
	uint8_t name[MEMIF_NAME_SZ];
} __attribute__((packed));

/* client -> server, the region's fd in SCM_RIGHTS */
struct memif_msg_add_region {
	uint16_t index;
	uint64_t size;
} __attribute__((packed));

#define MEMIF_ADD_RING_C2S 1u /* flags: ring is client -> server */

/* client -> server, the ring's interrupt eventfd in SCM_RIGHTS */
struct memif_msg_add_ring {
	uint16_t flags;
	uint16_t index;
	uint16_t region;
	uint32_t offset; /* of the ring header within the region */
	uint8_t log2_ring_size;
	uint16_t private_hdr_size;
} __attribute__((packed));

/* CONNECT (client -> server) and CONNECTED (server -> client) */
struct memif_msg_connect {
	uint8_t if_name[MEMIF_NAME_SZ];
} __attribute__((packed));

struct memif_msg_disconnect {
	uint32_t code;
	uint8_t string[96];
} __attribute__((packed));

struct memif_msg {
	uint16_t type; /* enum memif_msg_type */
	union {
		struct memif_msg_hello hello;
		struct memif_msg_init init;
		struct memif_msg_add_region add_region;
		struct memif_msg_add_ring add_ring;
		struct memif_msg_connect connect;
		struct memif_msg_connect connected;
		struct memif_msg_disconnect disconnect;
		uint8_t raw[MEMIF_MSG_SIZE - 2];
	};
} __attribute__((packed, aligned(128)));

#define MEMIF_DESC_NEXT 1u /* desc.flags: the frame continues in the next slot */

struct memif_desc {
	uint16_t flags;
	uint16_t region;
	uint32_t length;
	uint32_t offset;
	uint32_t metadata;
};

#define MEMIF_RING_MASK_INT 1u /* ring.flags: the consumer polls; producer, do not interrupt */

/* Producer and consumer indices live on their own cache lines so they do not false-share. */
struct memif_ring {
	uint32_t cookie;
	uint16_t flags;
	uint16_t head;
	uint8_t pad0[56];
	uint16_t tail;
	uint8_t pad1[62];
	struct memif_desc desc[];
};

#define MEMIF_RING_HDR_SIZE 128u

static inline size_t memif_ring_bytes(unsigned log2_size)
{
	return MEMIF_RING_HDR_SIZE + (sizeof(struct memif_desc) << log2_size);
}

_Static_assert(sizeof(struct memif_msg) == MEMIF_MSG_SIZE, "memif message is 128 bytes");
_Static_assert(offsetof(struct memif_msg, hello) == 2, "body follows the 16-bit type");
_Static_assert(sizeof(struct memif_msg_hello) == 43, "hello");
_Static_assert(offsetof(struct memif_msg_hello, min_version) == 32, "hello.min_version");
_Static_assert(offsetof(struct memif_msg_hello, max_region) == 36, "hello.max_region");
_Static_assert(offsetof(struct memif_msg_hello, max_s2c_ring) == 38, "hello.max_s2c_ring");
_Static_assert(offsetof(struct memif_msg_hello, max_c2s_ring) == 40, "hello.max_c2s_ring");
_Static_assert(offsetof(struct memif_msg_hello, max_log2_ring_size) == 42, "hello.max_log2");
_Static_assert(sizeof(struct memif_msg_init) == 63, "init");
_Static_assert(offsetof(struct memif_msg_init, id) == 2, "init.id");
_Static_assert(offsetof(struct memif_msg_init, mode) == 6, "init.mode");
_Static_assert(offsetof(struct memif_msg_init, secret) == 7, "init.secret");
_Static_assert(offsetof(struct memif_msg_init, name) == 31, "init.name");
_Static_assert(sizeof(struct memif_msg_add_region) == 10, "add_region");
_Static_assert(offsetof(struct memif_msg_add_region, size) == 2, "add_region.size");
_Static_assert(sizeof(struct memif_msg_add_ring) == 13, "add_ring");
_Static_assert(offsetof(struct memif_msg_add_ring, region) == 4, "add_ring.region");
_Static_assert(offsetof(struct memif_msg_add_ring, offset) == 6, "add_ring.offset");
_Static_assert(offsetof(struct memif_msg_add_ring, log2_ring_size) == 10, "add_ring.log2");
_Static_assert(offsetof(struct memif_msg_add_ring, private_hdr_size) == 11, "add_ring.priv");
_Static_assert(sizeof(struct memif_msg_connect) == 32, "connect");
_Static_assert(sizeof(struct memif_msg_disconnect) == 100, "disconnect");
_Static_assert(offsetof(struct memif_msg_disconnect, string) == 4, "disconnect.string");
_Static_assert(sizeof(struct memif_desc) == 16, "descriptor is 16 bytes in protocol 2.0");
_Static_assert(offsetof(struct memif_desc, region) == 2, "desc.region");
_Static_assert(offsetof(struct memif_desc, length) == 4, "desc.length");
_Static_assert(offsetof(struct memif_desc, offset) == 8, "desc.offset");
_Static_assert(offsetof(struct memif_desc, metadata) == 12, "desc.metadata");
_Static_assert(offsetof(struct memif_ring, flags) == 4, "ring.flags");
_Static_assert(offsetof(struct memif_ring, head) == 6, "ring.head");
_Static_assert(offsetof(struct memif_ring, tail) == 64, "ring.tail on the second cache line");
_Static_assert(offsetof(struct memif_ring, desc) == MEMIF_RING_HDR_SIZE, "descs on the third");
_Static_assert(sizeof(struct memif_ring) == MEMIF_RING_HDR_SIZE, "ring header");

#endif
