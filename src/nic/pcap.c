#include "nic/pcap.h"

#include <errno.h>
#include <pcap/pcap.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conf/params.h"
#include "util/log.h"

enum {
	PW_SNAPLEN = 65535
};

struct pw_queue {
	struct port_queue q;
	struct pw_port *pp;
	struct port_queue *in;
};

struct pw_port {
	struct port port;
	struct port *in;
	uint64_t (*now)(void *arg);
	void *now_arg;
	pcap_t *pcap;
	pcap_dumper_t *dump;
	pthread_mutex_t lock;
	uint64_t nrx, ntx;
	struct pw_queue *qs;
	struct port_queue **qptrs;
	uint8_t scratch[PW_SNAPLEN]; /* a chained frame, gathered */
};

static const struct port_ops pw_ops;

static inline struct pw_queue *pwq(struct port_queue *q)
{
	return (struct pw_queue *) q;
}

static uint64_t pw_now(const struct pw_port *pp)
{
	struct timespec ts;

	if (pp->now)
		return pp->now(pp->now_arg);
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

/* Write frames (whole chains, one record each); returns the number of records. */
static uint64_t pw_write(struct pw_port *pp, const struct port_frame *f, unsigned n)
{
	uint64_t t = pw_now(pp), records = 0;
	struct pcap_pkthdr h = {
		/* The file is opened with nanosecond precision: tv_usec carries nanoseconds. */
		.ts = {.tv_sec = (time_t) (t / 1000000000u),
		       .tv_usec = (suseconds_t) (t % 1000000000u)},
	};

	for (unsigned i = 0; i < n;) {
		const uint8_t *data = f[i].data;
		uint32_t len = f[i].len, cap;

		if (f[i].flags & PORT_F_MORE) {
			len = cap = 0;
			for (; i < n; i++) {
				uint32_t room = PW_SNAPLEN - cap,
					 k = f[i].len < room ? f[i].len : room;

				memcpy(pp->scratch + cap, f[i].data, k);
				cap += k;
				len += f[i].len;
				if (!(f[i].flags & PORT_F_MORE))
					break;
			}
			data = pp->scratch;
		} else {
			cap = len < PW_SNAPLEN ? len : PW_SNAPLEN;
		}
		i++;
		h.caplen = cap;
		h.len = len;
		pcap_dump((u_char *) pp->dump, &h, data);
		records++;
	}
	return records;
}

static int pw_rx_poll(struct port_queue *q, struct port_frame *f, unsigned max)
{
	struct pw_queue *wq = pwq(q);
	int n = wq->in->ops->rx_poll(wq->in, f, max);

	q->stats = wq->in->stats;
	if (n > 0) {
		pthread_mutex_lock(&wq->pp->lock);
		wq->pp->nrx += pw_write(wq->pp, f, (unsigned) n);
		pthread_mutex_unlock(&wq->pp->lock);
	}
	return n;
}

static void pw_rx_release(struct port_queue *q, const struct port_frame *f, unsigned n)
{
	struct pw_queue *wq = pwq(q);

	wq->in->ops->rx_release(wq->in, f, n);
}

static int pw_tx_alloc(struct port_queue *q, struct port_frame *f, unsigned n)
{
	struct pw_queue *wq = pwq(q);

	return wq->in->ops->tx_alloc(wq->in, f, n);
}

static int pw_tx_post(struct port_queue *q, const struct port_frame *f, unsigned n)
{
	struct pw_queue *wq = pwq(q);
	int r = wq->in->ops->tx_post(wq->in, f, n);

	q->stats = wq->in->stats;
	if (r > 0) {
		pthread_mutex_lock(&wq->pp->lock);
		wq->pp->ntx += pw_write(wq->pp, f, (unsigned) r);
		pthread_mutex_unlock(&wq->pp->lock);
	}
	return r;
}

static int pw_tx_flush(struct port_queue *q)
{
	struct pw_queue *wq = pwq(q);
	int r = wq->in->ops->tx_flush(wq->in);

	q->stats = wq->in->stats;
	return r;
}

static int pw_tx_reap(struct port_queue *q, uint64_t *cookies, unsigned max)
{
	struct pw_queue *wq = pwq(q);

	return wq->in->ops->tx_reap(wq->in, cookies, max);
}

static int pw_wait_fd(struct port_queue *q)
{
	struct pw_queue *wq = pwq(q);

	return wq->in->ops->wait_fd(wq->in);
}

static int pw_arm(struct port_queue *q)
{
	struct pw_queue *wq = pwq(q);

	return wq->in->ops->arm(wq->in);
}

static int pw_steer(struct port *p, const struct port_rule *rule, uint32_t *handle)
{
	struct port *in = ((struct pw_port *) p)->in;

	return in->ops->steer(in, rule, handle);
}

static int pw_unsteer(struct port *p, uint32_t handle)
{
	struct port *in = ((struct pw_port *) p)->in;

	return in->ops->unsteer(in, handle);
}

static int pw_mem_register(struct port *p, void *addr, size_t len, uint32_t *key)
{
	struct port *in = ((struct pw_port *) p)->in;

	return in->ops->mem_register(in, addr, len, key);
}

static int pw_mem_deregister(struct port *p, uint32_t key)
{
	struct port *in = ((struct pw_port *) p)->in;

	return in->ops->mem_deregister(in, key);
}

static void pw_free(struct pw_port *pp)
{
	if (pp->dump)
		pcap_dump_close(pp->dump);
	if (pp->pcap)
		pcap_close(pp->pcap);
	pthread_mutex_destroy(&pp->lock);
	free(pp->qs);
	free(pp->qptrs);
	free(pp);
}

static void pw_destroy(struct port *p)
{
	struct pw_port *pp = (struct pw_port *) p;

	if (pcapw_flush(p))
		log_error("pcap: writing the capture of %s failed", p->name);
	pp->in->ops->destroy(pp->in);
	pw_free(pp);
}

static const struct port_ops pw_ops = {
	.rx_poll = pw_rx_poll,
	.rx_release = pw_rx_release,
	.tx_alloc = pw_tx_alloc,
	.tx_post = pw_tx_post,
	.tx_flush = pw_tx_flush,
	.tx_reap = pw_tx_reap,
	.wait_fd = pw_wait_fd,
	.arm = pw_arm,
	.steer = pw_steer,
	.unsteer = pw_unsteer,
	.mem_register = pw_mem_register,
	.mem_deregister = pw_mem_deregister,
	.destroy = pw_destroy,
};

int pcapw_wrap(struct port *inner, const char *path, uint64_t (*now)(void *arg), void *now_arg,
	       struct port **out)
{
	struct pw_port *pp;

	if (!inner || !path || !*path || !out)
		return -EINVAL;
	pp = calloc(1, sizeof(*pp));
	if (!pp)
		return -ENOMEM;
	pthread_mutex_init(&pp->lock, NULL);
	pp->port = *inner;
	pp->port.ops = &pw_ops;
	pp->in = inner;
	pp->now = now;
	pp->now_arg = now_arg;
	pp->qs = calloc(inner->nqueues, sizeof(*pp->qs));
	pp->qptrs = calloc(inner->nqueues, sizeof(*pp->qptrs));
	pp->pcap = pcap_open_dead_with_tstamp_precision(DLT_EN10MB, PW_SNAPLEN,
							PCAP_TSTAMP_PRECISION_NANO);
	if (!pp->qs || !pp->qptrs || !pp->pcap) {
		pw_free(pp);
		return -ENOMEM;
	}
	pp->dump = pcap_dump_open(pp->pcap, path);
	if (!pp->dump) {
		log_error("pcap: cannot write %s: %s", path, pcap_geterr(pp->pcap));
		pw_free(pp);
		return -EIO;
	}
	pp->port.queues = pp->qptrs;
	for (unsigned i = 0; i < inner->nqueues; i++) {
		struct pw_queue *wq = &pp->qs[i];

		wq->q.ops = &pw_ops;
		wq->q.port = &pp->port;
		wq->q.index = (uint16_t) i;
		wq->pp = pp;
		wq->in = inner->queues[i];
		pp->qptrs[i] = &wq->q;
	}
	*out = &pp->port;
	return 0;
}

int pcapw_wrap_env(struct port **p)
{
	const char *v = getenv("XRING_PCAP"), *tok = "{port}", *s;
	char path[4096], tmpl[4096];
	size_t n = 0, name_len;
	struct port *out;
	int err;

	if (!v || !*v)
		return 0;
	if (!p || !*p)
		return -EINVAL;
	/* %d: the process id, as for XRING_LOG_FILE, so that processes do not share a file. */
	err = conf_expand_pid(v, (int) getpid(), tmpl, sizeof(tmpl));
	if (err < 0)
		return err;
	name_len = strlen((*p)->name);
	for (s = tmpl; *s;) {
		if (!strncmp(s, tok, strlen(tok))) {
			if (n + name_len >= sizeof(path))
				return -ENAMETOOLONG;
			memcpy(path + n, (*p)->name, name_len);
			n += name_len;
			s += strlen(tok);
		} else {
			if (n + 1 >= sizeof(path))
				return -ENAMETOOLONG;
			path[n++] = *s++;
		}
	}
	path[n] = 0;
	err = pcapw_wrap(*p, path, NULL, NULL, &out);
	if (err)
		return err;
	log_info("pcap: capturing %s to %s", (*p)->name, path);
	*p = out;
	return 1;
}

int pcapw_flush(struct port *p)
{
	struct pw_port *pp = (struct pw_port *) p;
	int err;

	if (!p || p->ops != &pw_ops)
		return -EINVAL;
	pthread_mutex_lock(&pp->lock);
	err = pcap_dump_flush(pp->dump) ? -EIO : 0;
	pthread_mutex_unlock(&pp->lock);
	return err;
}

int pcapw_get_counts(struct port *p, uint64_t *rx, uint64_t *tx)
{
	struct pw_port *pp = (struct pw_port *) p;

	if (!p || p->ops != &pw_ops)
		return -EINVAL;
	pthread_mutex_lock(&pp->lock);
	if (rx)
		*rx = pp->nrx;
	if (tx)
		*tx = pp->ntx;
	pthread_mutex_unlock(&pp->lock);
	return 0;
}
