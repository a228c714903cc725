/*
 * memif interop with DPDK: dpdk-testpmd (Debian's dpdk-dev) runs a net_memif server in macswap
 * mode; xring connects as the client, sends numbered frames and checks that each comes back
 * intact with its MAC addresses swapped.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "memif_frames.h"

#define TESTPMD "/usr/bin/dpdk-testpmd"

static pid_t tp_pid = -1;
static int tp_stdin = -1;
static char tp_sock[108];
static struct port *tp_server;

static void testpmd_start_as(const char *role);

static void testpmd_start(void)
{
	testpmd_start_as("server");
}

static void testpmd_start_client(void)
{
	testpmd_start_as("client");
}

static void testpmd_start_as(const char *role)
{
	char vdev[256], prefix[64], logp[128];
	int in[2];

	if (access(TESTPMD, X_OK) != 0)
		cr_skip_test("%s not installed (Debian package dpdk-dev)", TESTPMD);
	snprintf(tp_sock, sizeof(tp_sock), "/tmp/xring-m-%d.sock", getpid());
	snprintf(vdev, sizeof(vdev), "--vdev=net_memif0,role=%s,socket=%s,socket-abstract=no", role,
		 tp_sock);
	snprintf(prefix, sizeof(prefix), "--file-prefix=xring-memif-%d", getpid());
	snprintf(logp, sizeof(logp), "/tmp/xring-m-%d.log", getpid());
	unlink(tp_sock);
	if (!strcmp(role, "client")) {
		/* testpmd connects to us: our server must listen first */
		struct memif_config cfg = {.path = tp_sock,
					   .role = MEMIF_ROLE_SERVER,
					   .id = 0,
					   .name = "xring0",
					   .mac = {0x02, 0, 0, 0, 0, 0x01}};

		cr_assert_eq(memif_port_create(&cfg, &tp_server), 0);
	}
	cr_assert_eq(pipe(in), 0);
	tp_pid = fork();
	cr_assert_geq(tp_pid, 0);
	if (tp_pid == 0) {
		int log = open(logp, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		dup2(in[0], 0);
		if (log >= 0) {
			dup2(log, 1);
			dup2(log, 2);
		}
		close(in[1]);
		execl(TESTPMD, TESTPMD, "--no-huge", "-m", "1024", "--no-pci", prefix, vdev, "--",
		      "--no-mlockall", "--total-num-mbufs=8192", "--auto-start",
		      "--forward-mode=macswap", (char *) NULL);
		_exit(127);
	}
	close(in[0]);
	tp_stdin = in[1]; /* testpmd runs until its stdin closes */
}

static void testpmd_stop(void)
{
	if (tp_pid > 0) {
		int st;

		close(tp_stdin);
		kill(tp_pid, SIGTERM);
		for (int i = 0; i < 100 && waitpid(tp_pid, &st, WNOHANG) == 0; i++)
			usleep(50000);
		kill(tp_pid, SIGKILL);
		waitpid(tp_pid, &st, 0);
		tp_pid = -1;
	}
	unlink(tp_sock);
}

static struct port *wait_connected(struct port *p)
{
	uint64_t end = mf_now_ms() + 60000;

	while (!memif_connected(p) && mf_now_ms() < end) {
		int st;

		memif_poll(p);
		cr_assert_eq(waitpid(tp_pid, &st, WNOHANG), 0, "testpmd exited early (status %d)",
			     st);
		usleep(2000);
	}
	cr_assert(memif_connected(p), "testpmd's memif client connected to us");
	return p;
}

static struct port *connect_client(void)
{
	struct memif_config cfg = {.path = tp_sock,
				   .role = MEMIF_ROLE_CLIENT,
				   .id = 0,
				   .retry_ms = 100,
				   .name = "xring0",
				   .mac = {0x02, 0, 0, 0, 0, 0x01}};
	struct port *p = NULL;
	uint64_t end = mf_now_ms() + 60000;

	cr_assert_eq(memif_port_create(&cfg, &p), 0);
	while (!memif_connected(p) && mf_now_ms() < end) {
		int st;

		memif_poll(p);
		cr_assert_eq(waitpid(tp_pid, &st, WNOHANG), 0, "testpmd exited early (status %d)",
			     st);
		usleep(2000);
	}
	cr_assert(memif_connected(p), "connected to testpmd's memif server");
	return p;
}

/*
 * testpmd drains and drops whatever is in its queues when forwarding starts, which is after our
 * link is up: probe until a frame comes back, then let stragglers drain.
 */
static void warm_up(struct port *p)
{
	struct port_queue *q = p->queues[0];
	struct port_frame f[64];
	uint64_t end = mf_now_ms() + 60000, next = 0, quiet = 0;
	bool back = false;

	while (mf_now_ms() < end && (!back || mf_now_ms() < quiet)) {
		memif_poll(p);
		if (!back && mf_now_ms() >= next && port_tx_alloc(q, f, 1) == 1) {
			mf_build(f[0].data, 64, 0);
			((uint8_t *) f[0].data)[13] ^= 1; /* a probe, not a test frame */
			f[0].len = 64;
			port_tx_post(q, f, 1);
			port_tx_flush(q);
			next = mf_now_ms() + 20;
		}
		int n = port_rx_poll(q, f, 64);

		if (n > 0) {
			if (!back)
				quiet = mf_now_ms() + 300;
			back = true;
			port_rx_release(q, f, (unsigned) n);
		}
	}
	cr_assert(back, "testpmd forwards");
}

/*
 * Send count frames of the given size with at most window in flight; each must come back in
 * order, MACs swapped, everything else as sent.
 */
static void echo(struct port *p, uint64_t count, size_t size, unsigned window)
{
	struct port_queue *q = p->queues[0];
	static uint8_t frame[MF_MAX], back[MF_MAX];
	struct port_frame f[64], spare[64];
	unsigned nspare = 0;
	uint64_t sent = 0, got = 0, bad = 0;
	size_t have = 0;
	uint64_t end = mf_now_ms() + 120000;

	while (got < count && mf_now_ms() < end) {
		memif_poll(p);
		cr_assert(memif_connected(p), "link stayed up");
		while (sent < count && sent - got < window) {
			unsigned pieces, cap;
			size_t left = size;
			int k = port_tx_alloc(q, spare + nspare, 64 - nspare);

			if (k > 0)
				nspare += (unsigned) k;
			if (nspare == 0)
				break; /* a server waits for the client to hand out buffers */
			cap = spare[0].len;
			pieces = (unsigned) ((size + cap - 1) / cap);
			if (nspare < pieces)
				break;
			mf_build(frame, size, sent);
			for (unsigned j = 0; j < pieces; j++) {
				struct port_frame *fr = &spare[nspare - pieces + j];
				size_t len = left < fr->len ? left : fr->len;

				memcpy(fr->data, frame + (size - left), len);
				left -= len;
				fr->len = (uint32_t) len;
				fr->flags = left ? PORT_F_MORE : 0;
			}
			cr_assert_eq(port_tx_post(q, spare + nspare - pieces, pieces),
				     (int) pieces);
			nspare -= pieces;
			sent++;
		}
		port_tx_flush(q);
		int n = port_rx_poll(q, f, 64);

		for (int i = 0; i < n; i++) {
			if (have + f[i].len > sizeof(back)) {
				bad++;
				have = 0;
				continue;
			}
			memcpy(back + have, f[i].data, f[i].len);
			have += f[i].len;
			if (f[i].flags & PORT_F_MORE)
				continue;
			uint8_t mac[6];
			bool swapped = have == size;

			/* swap back, then the checksum covers every byte */
			memcpy(mac, back, 6);
			memcpy(back, back + 6, 6);
			memcpy(back + 6, mac, 6);
			if (!swapped || back[0] != 0x02 || back[5] != 0x02 || mac[5] != 0x01 ||
			    mf_check(back, have) != got)
				bad++;
			got++;
			have = 0;
		}
		if (n > 0)
			port_rx_release(q, f, (unsigned) n);
	}
	cr_log_info("testpmd echo: %llu of %llu frames of %zu bytes back, %llu bad",
		    (unsigned long long) got, (unsigned long long) count, size,
		    (unsigned long long) bad);
	cr_expect_eq(got, count, "every frame came back");
	cr_expect_eq(bad, 0, "intact, in order, MACs swapped");
	cr_expect_eq(q->stats.rx_bad, 0);
}

Test(memif_dpdk, frames_sent_through_testpmd_macswap_come_back_intact_and_swapped,
     .init = testpmd_start, .fini = testpmd_stop, .timeout = 300)
{
	struct port *p = connect_client();

	warm_up(p);
	echo(p, 100000, 64, 256);
	echo(p, 20000, 1500, 256);
	p->ops->destroy(p);
}

Test(memif_dpdk, chained_9000_byte_frames_come_back_through_testpmd, .init = testpmd_start,
     .fini = testpmd_stop, .timeout = 300)
{
	struct port *p = connect_client();

	warm_up(p);
	echo(p, 5000, 9000, 64);
	p->ops->destroy(p);
}

Test(memif_dpdk, testpmd_as_client_echoes_what_our_server_sends, .init = testpmd_start_client,
     .fini = testpmd_stop, .timeout = 300)
{
	struct port *p = wait_connected(tp_server);

	warm_up(p);
	echo(p, 100000, 64, 256);
	echo(p, 20000, 1500, 256);
	echo(p, 2000, 9000, 32);
	p->ops->destroy(p);
	tp_server = NULL;
}
