/* The neighbour (ARP) cache behind struct iface: private to the interface's own files. */
#ifndef XRING_STACK_IFACE_NEIGH_H
#define XRING_STACK_IFACE_NEIGH_H

#include "stack/iface/iface.h"

int neigh_init(struct iface *ifc);
void neigh_fini(struct iface *ifc);

/* Index of the entry for ip, or -1. */
int32_t neigh_find(const struct iface *ifc, uint32_t ip);

/*
 * Resolve ip for output. Returns 0 with the MAC copied to mac (send now), 1 with *idx set to an
 * INCOMPLETE entry (the caller queues with neigh_pkt_take/neigh_pkt_queue), or -ENOBUFS when no
 * entry can be had. Starts resolution (a broadcast request) when the address is new.
 */
int neigh_resolve(struct iface *ifc, uint64_t now, uint32_t ip, uint8_t *mac, int32_t *idx);

/* A pending slot for entry n (dropping n's oldest frame when n has its fill), or -1 (counted);
 * *data points to the slot's pkt_size bytes. */
int32_t neigh_pkt_take(struct iface *ifc, int32_t n, uint8_t **data);
void neigh_pkt_queue(struct iface *ifc, int32_t n, int32_t pkt, uint32_t len);
void neigh_pkt_put(struct iface *ifc, int32_t pkt);

/* What an ARP packet taught us about ip. */
enum {
	NEIGH_CREATE = 1u << 0,  /* make an entry if there is none */
	NEIGH_CONFIRM = 1u << 1, /* a reply to us: proof of reachability */
};
void neigh_learn(struct iface *ifc, uint64_t now, uint32_t ip, const uint8_t *mac, unsigned how);
void neigh_confirm(struct iface *ifc, uint64_t now, uint32_t ip);

uint64_t neigh_tick(struct iface *ifc, uint64_t now);

/* Provided by iface.c for the cache: send an ARP request for tpa (eth_dst NULL: broadcast). */
int iface_arp_request(struct iface *ifc, const uint8_t *eth_dst, uint32_t tpa);
/* Send a ready frame (a released pending slot). */
void iface_xmit_frame(struct iface *ifc, const uint8_t *frame, uint32_t len);

#endif
