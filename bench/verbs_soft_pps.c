/*
 * Frames per second through the verbs port (src/nic/verbs) over softverbs, the software verbs
 * device of the test suite, next to the in-memory link (memlink) in the same run: 64-byte UDP
 * frames, one thread driving both ends, in batches of 32 and of 1.
 *
 * There is no kernel equivalent of a verbs raw-packet queue to measure here (no RDMA device),
 * so the reference is memlink and the ratio printed is verbs/memlink. softverbs copies every
 * frame, takes a mutex per call and classifies frames against its flow list in software, so
 * these figures bound the port's own overhead from above; they say nothing about a ConnectX.
 *
 * usage: verbs_soft_pps [seconds per measurement, default 1]
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "nic/memlink.h"
#include "nic/verbs/verbs_port.h"
#include "softverbs.h"

enum {
	FRAME = 64,
	CHUNK = 1 << 14
};

static double secs;
static uint8_t tmpl[FRAME];

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* A UDP frame from 198.18.0.1:5000 to 198.18.0.2:7000; checksums are not checked here. */
static void make_template(const uint8_t *dst, const uint8_t *src)
{
	uint32_t sip = htonl(0xc6120001), dip = htonl(0xc6120002);
	uint16_t sp = htons(5000), dp = htons(7000);

	memcpy(tmpl, dst, 6);
	memcpy(tmpl + 6, src, 6);
	tmpl[12] = 0x08;
	tmpl[14] = 0x45;
	tmpl[17] = FRAME - 14;
	tmpl[22] = 64;
	tmpl[23] = 17;
	memcpy(tmpl + 26, &sip, 4);
	memcpy(tmpl + 30, &dip, 4);
	memcpy(tmpl + 34, &sp, 2);
	memcpy(tmpl + 36, &dp, 2);
	tmpl[39] = FRAME - 34;
}

static unsigned send_batch(struct port_queue *q, unsigned batch, uint32_t seq)
{
	struct port_frame f[32];
	int n = port_tx_alloc(q, f, batch);

	for (int i = 0; i < n; i++) {
		memcpy(f[i].data, tmpl, FRAME); /* write the frame like a real sender */
		memcpy((uint8_t *) f[i].data + 42, &seq, sizeof(seq));
		seq++;
		f[i].len = FRAME;
	}
	if (n > 0 && port_tx_post(q, f, (unsigned) n) != n) {
		fprintf(stderr, "tx_post refused frames\n");
		exit(1);
	}
	port_tx_flush(q);
	return n > 0 ? (unsigned) n : 0;
}

static unsigned recv_batch(struct port_queue *q, unsigned batch, uint64_t *sum)
{
	struct port_frame f[32];
	int n = port_rx_poll(q, f, batch);

	for (int i = 0; i < n; i++)
		*sum += ((const uint8_t *) f[i].data)[42]; /* read it like a real receiver */
	if (n > 0)
		port_rx_release(q, f, (unsigned) n);
	return n > 0 ? (unsigned) n : 0;
}

static double run(struct port *p[2], unsigned batch)
{
	uint64_t frames = 0, sum = 0;
	double t0 = now_s(), t;

	do {
		for (unsigned k = 0; k < CHUNK / batch; k++) {
			send_batch(p[0]->queues[0], batch, (uint32_t) frames);
			frames += recv_batch(p[1]->queues[0], batch, &sum);
		}
		t = now_s() - t0;
	} while (t < secs);
	if (!frames) {
		fprintf(stderr, "no frame went through\n");
		exit(1);
	}
	return (double) frames / t + (double) (sum & 0);
}

static double memlink(unsigned batch)
{
	struct port *p[2];
	double r;

	if (memlink_create(&(struct memlink_config){.nbufs = 512}, p)) {
		fprintf(stderr, "memlink_create failed\n");
		exit(1);
	}
	make_template(p[1]->mac, p[0]->mac);
	r = run(p, batch);
	p[0]->ops->destroy(p[0]);
	p[1]->ops->destroy(p[1]);
	return r;
}

static double verbs(unsigned batch)
{
	static const uint8_t ma[6] = {2, 0, 0x5e, 0, 0, 0xa}, mb[6] = {2, 0, 0x5e, 0, 0, 0xb};
	struct sv_dev_config ca = {.name = "svmlx0"}, cb = {.name = "svmlx1"};
	struct port_verbs_config c = {.dev = "svmlx0", .rx_bufs = 512, .tx_bufs = 512};
	struct port_rule r = {
		.kind = PORT_RULE_UDP, .local_ip = htonl(0xc6120002), .local_port = htons(7000)};
	struct port *p[2];
	char err[256];
	uint32_t h;
	double res;

	sv_reset();
	memcpy(ca.mac, ma, 6);
	memcpy(cb.mac, mb, 6);
	if (sv_add(&ca) < 0 || sv_add(&cb) < 0 || sv_connect(0, 1)) {
		fprintf(stderr, "softverbs setup failed\n");
		exit(1);
	}
	if (port_verbs_open(&c, &p[0], err, sizeof(err)) ||
	    (c.dev = "svmlx1", port_verbs_open(&c, &p[1], err, sizeof(err)))) {
		fprintf(stderr, "port_verbs_open: %s\n", err);
		exit(1);
	}
	if (p[1]->ops->steer(p[1], &r, &h)) {
		fprintf(stderr, "steer failed\n");
		exit(1);
	}
	make_template(p[1]->mac, p[0]->mac);
	res = run(p, batch);
	p[0]->ops->destroy(p[0]);
	p[1]->ops->destroy(p[1]);
	return res;
}

int main(int argc, char **argv)
{
	static const unsigned batches[] = {32, 1};

	secs = argc > 1 ? atof(argv[1]) : 1.0;
	if (secs <= 0)
		secs = 1.0;
	printf("kernel: no kernel equivalent for a verbs raw-packet queue on this machine (no RDMA "
	       "device); reference is the in-memory link in the same run\n");
	for (unsigned i = 0; i < sizeof(batches) / sizeof(batches[0]); i++) {
		unsigned b = batches[i];
		double m = memlink(b), v = verbs(b);

		printf("memlink 64 B, batch %u, 1 thread: %.2f Mframes/s\n", b, m / 1e6);
		printf("verbs over softverbs 64 B, batch %u, 1 thread: %.2f Mframes/s (%.2f of "
		       "memlink)\n",
		       b, v / 1e6, v / m);
	}
	return 0;
}
