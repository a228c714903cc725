/*
 * The wire layer: parse and emit of every header the stack speaks, with no state and no
 * policy. Include this for all of it, or the one header you need.
 *
 *	bytes.h  network-order loads and stores at any alignment (memcpy based)
 *	csum.h   Internet checksum, 64-bit accumulate, RFC 1624 update, IPv4 pseudo-header
 *	eth.h    Ethernet II (VLAN tags refused, never misparsed)
 *	arp.h    ARP, IPv4 over Ethernet only
 *	ipv4.h   IPv4 header (fragments identified, options skipped)
 *	icmp.h   ICMPv4 echo and errors (the quoted datagram exposed safely)
 *	udp.h    UDP
 *	tcp.h    TCP header, option parser and emitter
 *
 * Conventions, the same in every file:
 *  - A parser takes (buf, len) and fills a view: host-order numbers plus pointers into buf.
 *    It never reads outside [buf, buf + len), whatever the bytes claim; the view is valid as
 *    long as buf is. It returns 0 or a negated errno:
 *	-EBADMSG          truncated or inconsistent lengths: the bytes cannot be this protocol
 *	-EPROTONOSUPPORT  a well-formed header of a variant we do not speak (IP version 6,
 *	                  ARP over token ring)
 *	-EOPNOTSUPP       a well-formed frame we deliberately do not handle (802.1Q tags, RARP)
 *	-EILSEQ           checksum mismatch
 *    so the caller can count drops by reason from the return value alone.
 *  - An emitter writes into (buf, cap) and returns the bytes written or -EMSGSIZE when they
 *    would not fit; it writes nothing past cap.
 *  - IPv4 addresses are uint32_t in network byte order (as struct in_addr's s_addr) everywhere;
 *    every other multi-byte field in a view or emit argument is a host-order number.
 *  - Checksum fields are in memory order (see csum.h). *_CSUM_OK flags say the device already
 *    verified (parse) or will fill in (emit) a checksum.
 */
#ifndef XRING_STACK_WIRE_WIRE_H
#define XRING_STACK_WIRE_WIRE_H

#include "stack/wire/arp.h"
#include "stack/wire/bytes.h"
#include "stack/wire/csum.h"
#include "stack/wire/eth.h"
#include "stack/wire/icmp.h"
#include "stack/wire/ipv4.h"
#include "stack/wire/tcp.h"
#include "stack/wire/udp.h"

#endif
