/*
 * The liburing compatibility header: a liburing echo server built unmodified through it serves
 * kernel clients byte for byte, and a translation unit written in liburing's names compiles
 * (its constants checked against the kernel's header at compile time) and runs.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "compat/compat_names.h"

#define NR_CLIENTS 3
#define PAYLOAD    (100 * 1024)
#define DEADLINE_S 30

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

struct server {
	pid_t pid;
	int in; /* its standard input: closing it asks it to stop */
	FILE *out;
	unsigned port;
};

static void server_start(struct server *s)
{
	int in[2], out[2];
	char line[64];

	cr_assert_eq(pipe(in), 0);
	cr_assert_eq(pipe(out), 0);
	s->pid = fork();
	cr_assert_geq(s->pid, 0);
	if (s->pid == 0) {
		dup2(in[0], STDIN_FILENO);
		dup2(out[1], STDOUT_FILENO);
		close(in[0]);
		close(in[1]);
		close(out[0]);
		close(out[1]);
		execl(ECHO_SERVER_PATH, "echo_server", "0", (char *) NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	s->in = in[1];
	s->out = fdopen(out[0], "r");
	cr_assert_not_null(s->out);
	cr_assert_not_null(fgets(line, sizeof(line), s->out), "the server printed no port");
	cr_assert_eq(sscanf(line, "port %u", &s->port), 1, "unexpected first line: %s", line);
	cr_assert(s->port > 0 && s->port < 65536);
}

/* Asks the server to stop and waits for it, for a bounded time; returns its wait status. */
static int server_stop(struct server *s)
{
	int status = -1;
	double end = now_s() + 10;

	close(s->in);
	while (now_s() < end) {
		pid_t r = waitpid(s->pid, &status, WNOHANG);

		if (r == s->pid) {
			fclose(s->out);
			return status;
		}
		usleep(10000);
	}
	kill(s->pid, SIGKILL);
	waitpid(s->pid, &status, 0);
	fclose(s->out);
	cr_expect_fail("the server did not stop within 10 s of end of input");
	return status;
}

static unsigned char pattern(int client, size_t i)
{
	return (unsigned char) (i * 131 + (i >> 8) * 7 + (size_t) client * 29);
}

Test(compat, echo_server_built_through_the_header_echoes_every_byte_to_every_client)
{
	struct server srv;
	struct sockaddr_in addr = {.sin_family = AF_INET};
	static unsigned char tx[NR_CLIENTS][PAYLOAD], rx[NR_CLIENTS][PAYLOAD];
	size_t sent[NR_CLIENTS] = {0}, got[NR_CLIENTS] = {0};
	int fd[NR_CLIENTS], status, done = 0;
	double end;

	server_start(&srv);
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	addr.sin_port = htons((unsigned short) srv.port);
	for (int c = 0; c < NR_CLIENTS; c++) {
		for (size_t i = 0; i < PAYLOAD; i++)
			tx[c][i] = pattern(c, i);
		fd[c] = socket(AF_INET, SOCK_STREAM, 0);
		cr_assert_geq(fd[c], 0);
		cr_assert_eq(connect(fd[c], (struct sockaddr *) &addr, sizeof(addr)), 0,
			     "connect: %s", strerror(errno));
		fcntl(fd[c], F_SETFL, O_NONBLOCK);
	}

	/* All clients at once, writing and reading as the sockets allow, so neither side can
	 * block the other. */
	end = now_s() + DEADLINE_S;
	while (done < NR_CLIENTS && now_s() < end) {
		struct pollfd pfd[NR_CLIENTS];

		for (int c = 0; c < NR_CLIENTS; c++) {
			pfd[c].fd = got[c] < PAYLOAD ? fd[c] : -1;
			pfd[c].events = (short) (POLLIN | (sent[c] < PAYLOAD ? POLLOUT : 0));
		}
		cr_assert_geq(poll(pfd, NR_CLIENTS, 100), 0);
		for (int c = 0; c < NR_CLIENTS; c++) {
			ssize_t n;

			if ((pfd[c].revents & POLLOUT) && sent[c] < PAYLOAD) {
				size_t chunk = PAYLOAD - sent[c] < 7000 ? PAYLOAD - sent[c] : 7000;

				n = send(fd[c], tx[c] + sent[c], chunk, MSG_NOSIGNAL);
				cr_assert(n > 0 || errno == EAGAIN, "send: %s", strerror(errno));
				if (n > 0)
					sent[c] += (size_t) n;
			}
			if (pfd[c].revents & (POLLIN | POLLHUP | POLLERR)) {
				n = recv(fd[c], rx[c] + got[c], PAYLOAD - got[c], 0);
				cr_assert(n > 0 || (n < 0 && errno == EAGAIN),
					  "client %d: recv gave %zd (%s) after %zu bytes", c, n,
					  strerror(errno), got[c]);
				if (n > 0) {
					got[c] += (size_t) n;
					if (got[c] == PAYLOAD)
						done++;
				}
			}
		}
	}
	for (int c = 0; c < NR_CLIENTS; c++) {
		cr_expect_eq(got[c], PAYLOAD, "client %d received %zu of %d bytes", c, got[c],
			     PAYLOAD);
		cr_expect_eq(memcmp(rx[c], tx[c], PAYLOAD), 0, "client %d got other bytes back", c);
	}
	/* A clean close from each client: the server sees EOF and closes its side. */
	for (int c = 0; c < NR_CLIENTS; c++) {
		char b;
		struct pollfd p = {.fd = fd[c], .events = POLLIN};

		shutdown(fd[c], SHUT_WR);
		cr_expect_eq(poll(&p, 1, 5000), 1, "client %d: the server did not close", c);
		cr_expect_eq(recv(fd[c], &b, 1, 0), 0, "client %d: expected EOF", c);
		close(fd[c]);
	}
	status = server_stop(&srv);
	cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "the server did not exit cleanly (status %#x)", status);
}

Test(compat, every_liburing_function_name_resolves)
{
	cr_expect_geq(compat_function_count(), 100);
	cr_expect_eq(compat_kernel_consts_checked(), 47);
}

Test(compat, a_linked_nop_and_timeout_run_in_liburing_names)
{
	int line = compat_nop_chain();

	cr_expect_eq(line, 0, "failed at compat_names.c line %d", line);
}

Test(compat, the_probe_reports_the_socket_opcodes)
{
	int line = compat_probe();

	cr_expect_eq(line, 0, "failed at compat_names.c line %d", line);
}

Test(compat, a_socket_option_set_through_uring_cmd_takes_effect)
{
	int line = compat_cmd_sock();

	cr_expect_eq(line, 0, "failed at compat_names.c line %d", line);
}

Test(compat, added_prep_helpers_encode_sqes_as_liburing_does)
{
	int line = compat_prep_encodings();

	cr_expect_eq(line, 0, "failed at compat_names.c line %d", line);
}

Test(compat, the_errors_the_manual_pages_list_are_the_ones_returned)
{
	const char *what = "";
	int got = 0, want = 0;
	int line = compat_documented_errors(&what, &got, &want);

	cr_expect_eq(line, 0, "%s: got %d, expected %d (compat_names.c line %d)", what, got, want,
		     line);
}
