// SPDX-License-Identifier: MIT
/*
 * peers_sync.c - POSIX and floor rows of the synchronisation benches:
 * mutex_uncontended, mutex_handoff_2proc, cond_pingpong, sem_pingpong.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "bench_util.h"

#define BATCH 1000u

/* ---- floor: test-and-test-and-set spinlock ------------------------------ */

static inline void tas_lock(atomic_uint *l)
{
	unsigned spins = 0;

	while (atomic_exchange_explicit(l, 1, memory_order_acquire)) {
		while (atomic_load_explicit(l, memory_order_relaxed)) {
			bench_relax();
			if (++spins % 4096 == 0)
				sched_yield();	/* the holder may need this CPU */
		}
	}
}

static inline void tas_unlock(atomic_uint *l)
{
	atomic_store_explicit(l, 0, memory_order_release);
}

/* ---- mutex_uncontended --------------------------------------------------- */

struct mtx_shared {
	pthread_mutex_t m;
	atomic_uint spin;
	uint64_t counter;	/* guarded: checks mutual exclusion */
	atomic_int ready;
	atomic_int done;
};

static int mtx_init(pthread_mutex_t *m, bool robust)
{
	pthread_mutexattr_t a;
	int ret;

	pthread_mutexattr_init(&a);
	pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
	if (robust)
		pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
	ret = pthread_mutex_init(m, &a);
	pthread_mutexattr_destroy(&a);
	return ret;
}

static int unc_pthread(const struct bench_env *env, struct bench_run *run, bool robust)
{
	struct mtx_shared *s = bench_shared(sizeof(*s));
	uint64_t b, i, nb = env->iters / BATCH, warm = bench_warmup(env);
	int ret = 0;

	if (!s)
		return bench_fail(run, "mmap");
	if (mtx_init(&s->m, robust)) {
		bench_shared_free(s, sizeof(*s));
		return bench_fail(run, "pthread_mutex_init");
	}
	for (i = 0; i < warm; i++) {
		if (pthread_mutex_lock(&s->m))
			return bench_fail(run, "pthread_mutex_lock");
		s->counter++;
		pthread_mutex_unlock(&s->m);
	}
	run->per_sample = BATCH;
	for (b = 0; b < nb; b++) {
		uint64_t t0 = bench_now_ns();
		int r = 0;

		for (i = 0; i < BATCH; i++) {
			r |= pthread_mutex_lock(&s->m);
			s->counter++;
			r |= pthread_mutex_unlock(&s->m);
		}
		bench_sample(run, bench_now_ns() - t0);
		if (r) {
			ret = bench_fail(run, "pthread_mutex_lock/unlock failed");
			break;
		}
	}
	if (!ret && s->counter != warm + nb * BATCH)
		ret = bench_fail(run, "counter %llu != %llu", (unsigned long long)s->counter,
				 (unsigned long long)(warm + nb * BATCH));
	pthread_mutex_destroy(&s->m);
	bench_shared_free(s, sizeof(*s));
	return ret;
}

static int unc_pthread_robust(const struct bench_env *env, struct bench_run *run)
{
	return unc_pthread(env, run, true);
}
BENCH_CASE("mutex_uncontended", "pthread", "ns/op", unc_pthread_robust);

static int unc_pthread_plain(const struct bench_env *env, struct bench_run *run)
{
	return unc_pthread(env, run, false);
}
BENCH_CASE("mutex_uncontended", "pthread_plain", "ns/op", unc_pthread_plain);

static int unc_spin(const struct bench_env *env, struct bench_run *run)
{
	struct mtx_shared *s = bench_shared(sizeof(*s));
	uint64_t b, i, nb = env->iters / BATCH, warm = bench_warmup(env);
	int ret = 0;

	if (!s)
		return bench_fail(run, "mmap");
	for (i = 0; i < warm; i++) {
		tas_lock(&s->spin);
		s->counter++;
		tas_unlock(&s->spin);
	}
	run->per_sample = BATCH;
	for (b = 0; b < nb; b++) {
		uint64_t t0 = bench_now_ns();

		for (i = 0; i < BATCH; i++) {
			tas_lock(&s->spin);
			s->counter++;
			tas_unlock(&s->spin);
		}
		bench_sample(run, bench_now_ns() - t0);
	}
	if (s->counter != warm + nb * BATCH)
		ret = bench_fail(run, "counter mismatch");
	bench_shared_free(s, sizeof(*s));
	return ret;
}
BENCH_CASE("mutex_uncontended", "floor_spin", "ns/op", unc_spin);

/* ---- mutex_handoff_2proc ----------------------------------------------- */

struct handoff {
	struct mtx_shared *s;
	uint64_t per_side;
	bool spin;
	uint64_t t0, t1;
};

static void sync_start(atomic_int *ready)
{
	unsigned spins = 0;

	atomic_fetch_add(ready, 1);
	while (atomic_load(ready) < 2)
		if (++spins % 1024 == 0)
			sched_yield();
		else
			bench_relax();
}

static int handoff_side(void *arg, int side)
{
	struct handoff *h = arg;
	struct mtx_shared *s = h->s;
	uint64_t i;
	int r = 0;

	sync_start(&s->ready);
	if (side == 0)
		h->t0 = bench_now_ns();
	for (i = 0; i < h->per_side; i++) {
		if (h->spin) {
			tas_lock(&s->spin);
			s->counter++;
			tas_unlock(&s->spin);
		} else {
			r |= pthread_mutex_lock(&s->m);
			s->counter++;
			r |= pthread_mutex_unlock(&s->m);
		}
	}
	atomic_fetch_add(&s->done, 1);
	if (side == 0) {
		while (atomic_load(&s->done) < 2)
			sched_yield();
		h->t1 = bench_now_ns();
	}
	return r ? bench_fail(NULL, "pthread_mutex_lock/unlock failed") : 0;
}

static int handoff(const struct bench_env *env, struct bench_run *run, int kind)
{
	struct handoff h = { .per_side = env->iters / 2, .spin = kind == 2 };
	int ret;

	h.s = bench_shared(sizeof(*h.s));
	if (!h.s)
		return bench_fail(run, "mmap");
	if (kind != 2 && mtx_init(&h.s->m, kind == 0))
		return bench_fail(run, "pthread_mutex_init");
	ret = bench_two_procs(env, handoff_side, &h);
	if (!ret && h.s->counter != 2 * h.per_side)
		ret = bench_fail(run, "counter %llu != %llu: mutual exclusion broken",
				 (unsigned long long)h.s->counter,
				 (unsigned long long)(2 * h.per_side));
	if (!ret)
		run->ops_per_s = 2.0 * (double)h.per_side * 1e9 / (double)(h.t1 - h.t0);
	if (kind != 2)
		pthread_mutex_destroy(&h.s->m);
	bench_shared_free(h.s, sizeof(*h.s));
	return ret;
}

static int handoff_pthread(const struct bench_env *env, struct bench_run *run)
{
	return handoff(env, run, 0);
}
BENCH_CASE("mutex_handoff_2proc", "pthread", "ns/op", handoff_pthread);

static int handoff_plain(const struct bench_env *env, struct bench_run *run)
{
	return handoff(env, run, 1);
}
BENCH_CASE("mutex_handoff_2proc", "pthread_plain", "ns/op", handoff_plain);

static int handoff_spin(const struct bench_env *env, struct bench_run *run)
{
	return handoff(env, run, 2);
}
BENCH_CASE("mutex_handoff_2proc", "floor_spin", "ns/op", handoff_spin);

/* ---- ping-pongs: cond_pingpong, sem_pingpong --------------------------- */

enum pp_kind { PP_COND, PP_SEM, PP_FUTEX, PP_SPIN };

struct pp_shared {
	pthread_mutex_t m;
	pthread_cond_t c[2];
	sem_t sem[2];
	uint64_t seq;			/* PP_COND/PP_SEM: sequence word */
	_Alignas(64) uint32_t word;	/* PP_FUTEX/PP_SPIN: seq (<< 1 | waiters for PP_SPIN) */
};

struct pp {
	struct pp_shared *s;
	enum pp_kind kind;
	uint64_t total, warm;
	struct bench_run *run;
};

/* floor_futex: always wake, sleep until the word changes. */
static int futex_await(uint32_t *w, uint32_t want)
{
	uint32_t v;

	while ((v = __atomic_load_n(w, __ATOMIC_ACQUIRE)) != want) {
		if (v != want - 1)
			return bench_fail(NULL, "futex ping-pong: word %u, want %u", v, want);
		bench_futex_wait(w, v);
	}
	return 0;
}

/* floor_spin: spin up to 20 us, then publish a waiter bit and sleep. */
#define SPIN_NS 20000u
static int spin_await(uint32_t *w, uint32_t want)
{
	uint64_t start = 0;
	unsigned spins = 0;
	uint32_t v;

	for (;;) {
		v = __atomic_load_n(w, __ATOMIC_ACQUIRE);
		if (v >> 1 == want)
			return 0;
		if (v >> 1 != want - 1)
			return bench_fail(NULL, "spin ping-pong: seq %u, want %u", v >> 1, want);
		if (++spins % 64)
			bench_relax();
		else if (!start)
			start = bench_now_ns();
		else if (bench_now_ns() - start > SPIN_NS) {
			if ((v & 1) || __atomic_compare_exchange_n(w, &v, v | 1, false,
								 __ATOMIC_ACQ_REL,
								 __ATOMIC_ACQUIRE))
				bench_futex_wait(w, v | 1);
		}
	}
}

static void spin_post(uint32_t *w, uint32_t seq)
{
	if (__atomic_exchange_n(w, seq << 1, __ATOMIC_ACQ_REL) & 1)
		bench_futex_wake(w, 1);
}

static int pp_side(void *arg, int side)
{
	struct pp *p = arg;
	struct pp_shared *s = p->s;
	uint64_t i;

	for (i = 0; i < p->total; i++) {
		uint64_t t0 = bench_now_ns();
		uint64_t mine = 2 * i + 1 + (uint64_t)side, theirs = 2 * i + 2 - (uint64_t)side;
		int r = 0;

		/*
		 * Round i: side 0 posts 2i+1 and waits for 2i+2; side 1 waits
		 * for 2i+1 and posts 2i+2.
		 */
		switch (p->kind) {
		case PP_COND:
			r |= pthread_mutex_lock(&s->m);
			if (side == 0) {
				s->seq = mine;
				r |= pthread_cond_signal(&s->c[1]);
				while (s->seq < theirs)
					r |= pthread_cond_wait(&s->c[0], &s->m);
				if (s->seq != theirs)
					r = -1;
			} else {
				while (s->seq < theirs)
					r |= pthread_cond_wait(&s->c[1], &s->m);
				if (s->seq != theirs)
					r = -1;
				s->seq = mine;
				r |= pthread_cond_signal(&s->c[0]);
			}
			r |= pthread_mutex_unlock(&s->m);
			break;
		case PP_SEM:
			if (side == 0) {
				s->seq = mine;
				r |= sem_post(&s->sem[1]);
				while (sem_wait(&s->sem[0]) && errno == EINTR)
					;
			} else {
				while (sem_wait(&s->sem[1]) && errno == EINTR)
					;
				if (s->seq != theirs)
					r = -1;
				s->seq = mine;
				r |= sem_post(&s->sem[0]);
			}
			if (side == 0 && s->seq != theirs)
				r = -1;
			break;
		case PP_FUTEX:
			if (side == 1 && futex_await(&s->word, (uint32_t)theirs))
				return -1;
			__atomic_store_n(&s->word, (uint32_t)mine, __ATOMIC_RELEASE);
			bench_futex_wake(&s->word, 1);
			if (side == 0 && futex_await(&s->word, (uint32_t)theirs))
				return -1;
			break;
		case PP_SPIN:
			if (side == 1 && spin_await(&s->word, (uint32_t)theirs))
				return -1;
			spin_post(&s->word, (uint32_t)mine);
			if (side == 0 && spin_await(&s->word, (uint32_t)theirs))
				return -1;
			break;
		}
		if (r)
			return bench_fail(NULL, "ping-pong round %llu: wrong sequence or call failed",
					  (unsigned long long)i);
		if (side == 0 && i >= p->warm)
			bench_sample(p->run, bench_now_ns() - t0);
	}
	return 0;
}

static int pingpong(const struct bench_env *env, struct bench_run *run, enum pp_kind kind)
{
	struct pp p = { .kind = kind, .warm = bench_warmup(env), .run = run };
	pthread_condattr_t ca;
	pthread_mutexattr_t ma;
	int ret;

	p.total = p.warm + env->iters;
	/* 2^31 rounds fit the 32-bit futex words (2 per round, 1 bit for waiters) */
	if (p.total > (1ull << 29))
		return bench_fail(run, "too many rounds");
	p.s = bench_shared(sizeof(*p.s));
	if (!p.s)
		return bench_fail(run, "mmap");
	if (kind == PP_COND) {
		pthread_mutexattr_init(&ma);
		pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
		pthread_mutex_init(&p.s->m, &ma);
		pthread_condattr_init(&ca);
		pthread_condattr_setpshared(&ca, PTHREAD_PROCESS_SHARED);
		pthread_cond_init(&p.s->c[0], &ca);
		pthread_cond_init(&p.s->c[1], &ca);
	} else if (kind == PP_SEM) {
		sem_init(&p.s->sem[0], 1, 0);
		sem_init(&p.s->sem[1], 1, 0);
	}
	ret = bench_two_procs(env, pp_side, &p);
	if (ret)
		bench_fail(run, "ping-pong failed");
	bench_shared_free(p.s, sizeof(*p.s));
	return ret;
}

static int cond_pthread(const struct bench_env *env, struct bench_run *run)
{
	return pingpong(env, run, PP_COND);
}
BENCH_CASE("cond_pingpong", "pthread", "ns/rtt", cond_pthread);

static int cond_futex(const struct bench_env *env, struct bench_run *run)
{
	return pingpong(env, run, PP_FUTEX);
}
BENCH_CASE("cond_pingpong", "floor_futex", "ns/rtt", cond_futex);

static int sem_posix(const struct bench_env *env, struct bench_run *run)
{
	return pingpong(env, run, PP_SEM);
}
BENCH_CASE("sem_pingpong", "posix", "ns/rtt", sem_posix);

static int sem_futex(const struct bench_env *env, struct bench_run *run)
{
	return pingpong(env, run, PP_FUTEX);
}
BENCH_CASE("sem_pingpong", "floor_futex", "ns/rtt", sem_futex);

static int sem_spin(const struct bench_env *env, struct bench_run *run)
{
	int ret = pingpong(env, run, PP_SPIN);

	if (!ret)
		bench_note(run, "spin 20us, then futex");
	return ret;
}
BENCH_CASE("sem_pingpong", "floor_spin", "ns/rtt", sem_spin);
