#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xring.h>

#include "conf/proc.h"
#include "util/log.h"

static pthread_once_t once = PTHREAD_ONCE_INIT;
static const struct xring_conf *conf;
static struct rules rules;
static int ret;
static pthread_mutex_t add_lock = PTHREAD_MUTEX_INITIALIZER;

static void load(void)
{
	char err[CONF_ERR_LEN + 256];

	ret = conf_get(&conf, err, sizeof(err));
	if (ret) {
		log_error("%s", err);
		return;
	}
	log_set_details(conf->log_details);
	if (conf->log_file[0]) {
		char path[CONF_PATH_LEN + 16] = "";

		ret = conf_expand_pid(conf->log_file, (int) getpid(), path, sizeof(path));
		if (ret >= 0)
			ret = log_open_file(path);
		if (ret < 0) {
			log_error("XRING_LOG_FILE='%s': cannot open %s: %s", conf->log_file, path,
				  strerror(-ret));
			return;
		}
		ret = 0;
	}
	log_set_level((enum log_level) conf->log_level);
	conf_log(conf, environ);
	ret = rules_setup(&rules, conf->config_file, getenv("XRING_CONFIG_FILE") != NULL,
			  conf->application_id, err, sizeof(err));
	if (ret)
		log_error("%s", err);
}

int proc_conf(const struct xring_conf **out)
{
	pthread_once(&once, load);
	if (ret)
		return ret;
	*out = conf;
	return 0;
}

const struct rules *proc_rules(void)
{
	return &rules;
}

/*
 * xring_thread_offload(): the threads that chose, in a small table. Decisions are made once per
 * socket (bind, connect, listen), never per packet, so a lock is fine; a counter lets processes
 * that never call it skip the lock.
 */
#define THREADS_MAX 256

static struct {
	pthread_t thread;
	bool on;
} threads[THREADS_MAX];
static unsigned nthreads;
static pthread_mutex_t thr_lock = PTHREAD_MUTEX_INITIALIZER;

XRING_API int xring_thread_offload(int on, pthread_t thread)
{
	int r = 0;
	unsigned i;

	if (on < -1 || on > 1)
		return -EINVAL;
	pthread_mutex_lock(&thr_lock);
	for (i = 0; i < nthreads && !pthread_equal(threads[i].thread, thread); i++)
		;
	if (on == -1) {
		if (i < nthreads)
			threads[i] = threads[--nthreads];
	} else if (i < nthreads) {
		threads[i].on = on;
	} else if (nthreads == THREADS_MAX) {
		r = -ENOSPC;
	} else {
		threads[nthreads].thread = thread;
		threads[nthreads].on = on;
		__atomic_store_n(&nthreads, nthreads + 1, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&thr_lock);
	return r;
}

/* The calling thread's choice: 1, 0, or -1 when it made none. */
static int thread_choice(void)
{
	pthread_t self = pthread_self();
	int on = -1;

	if (!__atomic_load_n(&nthreads, __ATOMIC_ACQUIRE))
		return -1;
	pthread_mutex_lock(&thr_lock);
	for (unsigned i = 0; i < nthreads; i++)
		if (pthread_equal(threads[i].thread, self))
			on = threads[i].on;
	pthread_mutex_unlock(&thr_lock);
	return on;
}

bool proc_offload(enum rules_role role, uint32_t addr, uint16_t port)
{
	int on;

	switch (rules_match(&rules, role, addr, port, NULL)) {
	case RULES_XRING:
		return true;
	case RULES_OS:
		return false;
	default:
		/* No rule decides: the thread's own choice, then XRING_OFFLOAD. */
		on = thread_choice();
		return on >= 0 ? on : conf->offload;
	}
}

XRING_API int xring_add_conf_rule(const char *line)
{
	const struct xring_conf *c;
	char err[256];
	int r;

	if (!line)
		return -EINVAL;
	r = proc_conf(&c);
	if (r)
		return r;
	/* Matching reads the runtime rules without a lock; adding takes one. */
	pthread_mutex_lock(&add_lock);
	r = rules_add_line(&rules, line, err, sizeof(err));
	pthread_mutex_unlock(&add_lock);
	if (r)
		log_error("xring_add_conf_rule: %s", err);
	return r;
}
