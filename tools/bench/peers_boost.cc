// SPDX-License-Identifier: MIT
/*
 * peers_boost.cc - the Boost.Interprocess rows of every bench. C++ only here;
 * the workloads are the C drivers of peers.h where one exists, so Boost runs
 * exactly what the other rows run. No exception leaves this file.
 */
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <array>
#include <new>
#include <vector>

#include <boost/interprocess/ipc/message_queue.hpp>
#include <boost/interprocess/managed_shared_memory.hpp>
#include <boost/interprocess/mapped_region.hpp>
#include <boost/interprocess/shared_memory_object.hpp>
#include <boost/interprocess/sync/interprocess_condition.hpp>
#include <boost/interprocess/sync/interprocess_mutex.hpp>
#include <boost/interprocess/sync/interprocess_semaphore.hpp>
#include <boost/interprocess/sync/scoped_lock.hpp>

#include <sched.h>

#include "bench_util.h"
#include "peers.h"

namespace bip = boost::interprocess;

namespace {

const unsigned BATCH = 1000;

/* ---- mutex_uncontended, mutex_handoff_2proc -------------------------------- */

struct bmtx {
	bip::interprocess_mutex m;
	uint64_t counter;
	int ready, done;
	uint64_t per_side, t0, t1;
};

int unc_boost(const struct bench_env *env, struct bench_run *run)
{
	void *mem = bench_shared(sizeof(bmtx));
	uint64_t nb = env->iters / BATCH, warm = bench_warmup(env);
	int ret = 0;

	if (!mem)
		return bench_fail(run, "mmap");
	try {
		bmtx *s = new (mem) bmtx();

		for (uint64_t i = 0; i < warm; i++) {
			s->m.lock();
			s->counter++;
			s->m.unlock();
		}
		run->per_sample = BATCH;
		for (uint64_t b = 0; b < nb; b++) {
			uint64_t t0 = bench_now_ns();

			for (unsigned i = 0; i < BATCH; i++) {
				s->m.lock();
				s->counter++;
				s->m.unlock();
			}
			bench_sample(run, bench_now_ns() - t0);
		}
		if (s->counter != warm + nb * BATCH)
			ret = bench_fail(run, "counter mismatch");
		s->~bmtx();
	} catch (const std::exception &e) {
		ret = bench_fail(run, "boost: %s", e.what());
	}
	bench_shared_free(mem, sizeof(bmtx));
	return ret;
}
BENCH_CASE("mutex_uncontended", "boost", "ns/op", unc_boost);

int handoff_side(void *arg, int side)
{
	bmtx *s = static_cast<bmtx *>(arg);
	unsigned spins = 0;

	try {
		__atomic_fetch_add(&s->ready, 1, __ATOMIC_ACQ_REL);
		while (__atomic_load_n(&s->ready, __ATOMIC_ACQUIRE) < 2)
			if (++spins % 1024 == 0)
				sched_yield();
		if (side == 0)
			s->t0 = bench_now_ns();
		for (uint64_t i = 0; i < s->per_side; i++) {
			s->m.lock();
			s->counter++;
			s->m.unlock();
		}
		__atomic_fetch_add(&s->done, 1, __ATOMIC_ACQ_REL);
		if (side == 0) {
			while (__atomic_load_n(&s->done, __ATOMIC_ACQUIRE) < 2)
				sched_yield();
			s->t1 = bench_now_ns();
		}
	} catch (const std::exception &e) {
		return bench_fail(nullptr, "boost: %s", e.what());
	}
	return 0;
}

int handoff_boost(const struct bench_env *env, struct bench_run *run)
{
	void *mem = bench_shared(sizeof(bmtx));
	int ret;

	if (!mem)
		return bench_fail(run, "mmap");
	try {
		bmtx *s = new (mem) bmtx();

		s->per_side = env->iters / 2;
		ret = bench_two_procs(env, handoff_side, s);
		if (!ret && s->counter != 2 * s->per_side)
			ret = bench_fail(run, "counter mismatch: mutual exclusion broken");
		if (!ret)
			run->ops_per_s = 2.0 * (double)s->per_side * 1e9 / (double)(s->t1 - s->t0);
		s->~bmtx();
	} catch (const std::exception &e) {
		ret = bench_fail(run, "boost: %s", e.what());
	}
	bench_shared_free(mem, sizeof(bmtx));
	return ret;
}
BENCH_CASE("mutex_handoff_2proc", "boost", "ns/op", handoff_boost);

/* ---- cond_pingpong, sem_pingpong ---------------------------------------------- */

struct bpp {
	bip::interprocess_mutex m;
	bip::interprocess_condition c[2];
	bip::interprocess_semaphore s0{0}, s1{0};
	uint64_t seq;
	bool sem;
	uint64_t total, warm;
	struct bench_run *run;
};

int pp_side(void *arg, int side)
{
	bpp *p = static_cast<bpp *>(arg);

	try {
		for (uint64_t i = 0; i < p->total; i++) {
			uint64_t t0 = bench_now_ns();
			/* round i: side 0 posts 2i+1, side 1 answers 2i+2 */
			uint64_t mine = 2 * i + 1 + (uint64_t)side;
			uint64_t theirs = 2 * i + 2 - (uint64_t)side;
			bool ok = true;

			if (p->sem) {
				if (side == 0) {
					p->seq = mine;
					p->s1.post();
					p->s0.wait();
					ok = p->seq == theirs;
				} else {
					p->s1.wait();
					ok = p->seq == theirs;
					p->seq = mine;
					p->s0.post();
				}
			} else {
				bip::scoped_lock<bip::interprocess_mutex> l(p->m);

				if (side == 0) {
					p->seq = mine;
					p->c[1].notify_one();
					while (p->seq < theirs)
						p->c[0].wait(l);
				} else {
					while (p->seq < theirs)
						p->c[1].wait(l);
					ok = p->seq == theirs;
					p->seq = mine;
					p->c[0].notify_one();
				}
				if (side == 0)
					ok = p->seq == theirs;
			}
			if (!ok)
				return bench_fail(nullptr, "ping-pong round %llu: wrong sequence",
						  (unsigned long long)i);
			if (side == 0 && i >= p->warm)
				bench_sample(p->run, bench_now_ns() - t0);
		}
	} catch (const std::exception &e) {
		return bench_fail(nullptr, "boost: %s", e.what());
	}
	return 0;
}

int pingpong(const struct bench_env *env, struct bench_run *run, bool sem)
{
	void *mem = bench_shared(sizeof(bpp));
	int ret;

	if (!mem)
		return bench_fail(run, "mmap");
	try {
		bpp *p = new (mem) bpp();

		p->sem = sem;
		p->warm = bench_warmup(env);
		p->total = p->warm + env->iters;
		p->run = run;
		ret = bench_two_procs(env, pp_side, p);
		if (ret)
			bench_fail(run, "ping-pong failed");
		p->~bpp();
	} catch (const std::exception &e) {
		ret = bench_fail(run, "boost: %s", e.what());
	}
	bench_shared_free(mem, sizeof(bpp));
	return ret;
}

int cond_boost(const struct bench_env *env, struct bench_run *run)
{
	return pingpong(env, run, false);
}
BENCH_CASE("cond_pingpong", "boost", "ns/rtt", cond_boost);

int sem_boost(const struct bench_env *env, struct bench_run *run)
{
	return pingpong(env, run, true);
}
BENCH_CASE("sem_pingpong", "boost", "ns/rtt", sem_boost);

/* ---- message_queue ---------------------------------------------------------------- */

struct bmq {
	bip::message_queue *q[2];
	char name[2][80];
	int nq;
	size_t msgsize;
};

int bmq_create(void *vctx, int nq, unsigned cap, size_t msgsize, struct bench_run *run)
{
	bmq *c = static_cast<bmq *>(vctx);

	c->nq = 0;
	c->msgsize = msgsize;
	try {
		for (int i = 0; i < nq; i++) {
			char tag[16];

			snprintf(tag, sizeof(tag), "bmq%d", i);
			bench_name(c->name[i], sizeof(c->name[i]), tag, 0);
			bip::message_queue::remove(c->name[i]);
			c->q[i] = new bip::message_queue(bip::create_only, c->name[i], cap, msgsize);
			c->nq = i + 1;
		}
	} catch (const std::exception &e) {
		for (int i = 0; i < c->nq; i++) {
			delete c->q[i];
			bip::message_queue::remove(c->name[i]);
		}
		return bench_fail(run, "message_queue: %s", e.what());
	}
	return 0;
}

int bmq_send(void *vctx, int q, const void *msg, size_t len, unsigned prio)
{
	bmq *c = static_cast<bmq *>(vctx);

	try {
		c->q[q]->send(msg, len, prio);
	} catch (const std::exception &e) {
		return bench_fail(nullptr, "message_queue::send: %s", e.what());
	}
	return 0;
}

int bmq_recv(void *vctx, int q, void *msg, size_t len, unsigned *prio)
{
	bmq *c = static_cast<bmq *>(vctx);
	bip::message_queue::size_type got = 0;

	try {
		c->q[q]->receive(msg, c->msgsize, got, *prio);
	} catch (const std::exception &e) {
		return bench_fail(nullptr, "message_queue::receive: %s", e.what());
	}
	if (got != len)
		return bench_fail(nullptr, "message_queue::receive: %zu bytes, want %zu",
				  (size_t)got, len);
	return 0;
}

void bmq_destroy(void *vctx)
{
	bmq *c = static_cast<bmq *>(vctx);

	for (int i = 0; i < c->nq; i++) {
		delete c->q[i];
		bip::message_queue::remove(c->name[i]);
	}
	c->nq = 0;
}

const struct mq_transport bmq_tp = { bmq_create, bmq_send, bmq_recv, bmq_destroy };

int tp64_boost(const struct bench_env *env, struct bench_run *run)
{
	bmq c{};
	return mq_drive_throughput(env, run, &bmq_tp, &c, 64, false);
}
BENCH_CASE("mq_throughput_64", "boost", "ns/msg", tp64_boost);

int tpprio_boost(const struct bench_env *env, struct bench_run *run)
{
	bmq c{};
	return mq_drive_throughput(env, run, &bmq_tp, &c, 64, true);
}
BENCH_CASE("mq_throughput_64_prio", "boost", "ns/msg", tpprio_boost);

int tp1k_boost(const struct bench_env *env, struct bench_run *run)
{
	bmq c{};
	return mq_drive_throughput(env, run, &bmq_tp, &c, 1024, false);
}
BENCH_CASE("mq_throughput_1k", "boost", "ns/msg", tp1k_boost);

int rtt_boost(const struct bench_env *env, struct bench_run *run)
{
	bmq c{};
	return mq_drive_rtt(env, run, &bmq_tp, &c, 64);
}
BENCH_CASE("mq_rtt_64", "boost", "ns/rtt", rtt_boost);

/* ---- managed_shared_memory: alloc_random, named objects ----------------------- */

void *bm_alloc(void *ctx, size_t size)
{
	return static_cast<bip::managed_shared_memory *>(ctx)->allocate(size, std::nothrow);
}

void bm_release(void *ctx, void *p)
{
	static_cast<bip::managed_shared_memory *>(ctx)->deallocate(p);
}

int alloc_boost(const struct bench_env *env, struct bench_run *run)
{
	char name[80];
	int ret;

	bench_name(name, sizeof(name), "alloc", 0);
	bip::shared_memory_object::remove(name);
	try {
		bip::managed_shared_memory m(bip::create_only, name, 256u << 20);

		ret = alloc_drive_random(env, run, bm_alloc, bm_release, &m);
		if (!ret && !m.all_memory_deallocated())
			ret = bench_fail(run, "segment not empty after freeing every block");
	} catch (const std::exception &e) {
		ret = bench_fail(run, "managed_shared_memory: %s", e.what());
	}
	bip::shared_memory_object::remove(name);
	return ret;
}
BENCH_CASE("alloc_random", "boost", "ns/op", alloc_boost);

const unsigned NBATCH = 100;

/* names "obj0000000".."objNNNNNNN", made before timing */
std::vector<std::array<char, 24>> make_names(uint64_t n)
{
	std::vector<std::array<char, 24>> v(n);

	for (uint64_t i = 0; i < n; i++)
		snprintf(v[i].data(), 24, "obj%07llu", (unsigned long long)i);
	return v;
}

int named(const struct bench_env *env, struct bench_run *run, bool find)
{
	uint64_t n = env->iters;
	char name[80];
	int ret = 0;

	bench_name(name, sizeof(name), "named", 0);
	bip::shared_memory_object::remove(name);
	try {
		auto names = make_names(n);
		std::vector<uint32_t> order(n);
		bip::managed_shared_memory m(bip::create_only, name, 256u << 20);

		run->per_sample = NBATCH;
		for (uint64_t i = 0; i < n; i += NBATCH) {
			uint64_t t0 = bench_now_ns(), e = i + NBATCH < n ? i + NBATCH : n;

			for (uint64_t k = i; k < e; k++)
				m.construct<uint64_t>(names[k].data())(k * 0x9e3779b97f4a7c15ull);
			if (!find && e - i == NBATCH)
				bench_sample(run, bench_now_ns() - t0);
		}
		/*
		 * Every object findable with its value, looked up once each in
		 * creation order (timed only in named_find).
		 */
		for (uint64_t i = 0; i < n; i++)
			order[i] = (uint32_t)i;
		for (uint64_t i = 0; i < n; i += NBATCH) {
			uint64_t t0 = bench_now_ns(), e = i + NBATCH < n ? i + NBATCH : n;
			bool bad = false;

			for (uint64_t k = i; k < e; k++) {
				auto r = m.find<uint64_t>(names[order[k]].data());

				bad |= !r.first || *r.first != order[k] * 0x9e3779b97f4a7c15ull;
			}
			if (find && e - i == NBATCH)
				bench_sample(run, bench_now_ns() - t0);
			if (bad) {
				ret = bench_fail(run, "find: object missing or wrong value");
				break;
			}
		}
		if (!ret && m.get_num_named_objects() != n)
			ret = bench_fail(run, "%zu named objects, want %llu",
					 (size_t)m.get_num_named_objects(), (unsigned long long)n);
	} catch (const std::exception &e) {
		ret = bench_fail(run, "managed_shared_memory: %s", e.what());
	}
	bip::shared_memory_object::remove(name);
	return ret;
}

int construct_boost(const struct bench_env *env, struct bench_run *run)
{
	return named(env, run, false);
}
BENCH_CASE("named_construct", "boost", "ns/op", construct_boost);

int find_boost(const struct bench_env *env, struct bench_run *run)
{
	return named(env, run, true);
}
BENCH_CASE("named_find", "boost", "ns/op", find_boost);

/* ---- segment_create --------------------------------------------------------------- */

/* managed_shared_memory: create, size, map, build the segment manager, remove */
int segcreate_boost(const struct bench_env *env, struct bench_run *run)
{
	uint64_t warm = bench_warmup(env);
	char name[80];

	bench_name(name, sizeof(name), "seg", 0);
	bip::shared_memory_object::remove(name);
	try {
		for (uint64_t i = 0; i < warm + env->iters; i++) {
			uint64_t t0 = bench_now_ns();

			{
				bip::managed_shared_memory m(bip::create_only, name, 1u << 20);

				if (m.get_size() != 1u << 20)
					return bench_fail(run, "segment size %zu", (size_t)m.get_size());
			}
			if (!bip::shared_memory_object::remove(name))
				return bench_fail(run, "shared_memory_object::remove failed");
			if (i >= warm)
				bench_sample(run, bench_now_ns() - t0);
		}
	} catch (const std::exception &e) {
		bip::shared_memory_object::remove(name);
		return bench_fail(run, "managed_shared_memory: %s", e.what());
	}
	bench_note(run, "managed_shared_memory");
	return 0;
}
BENCH_CASE("segment_create", "boost", "ns/seg", segcreate_boost);

/* the raw layer: shared_memory_object + truncate + mapped_region, first word written */
int segcreate_boost_region(const struct bench_env *env, struct bench_run *run)
{
	uint64_t warm = bench_warmup(env);
	char name[80];

	bench_name(name, sizeof(name), "segr", 0);
	bip::shared_memory_object::remove(name);
	try {
		for (uint64_t i = 0; i < warm + env->iters; i++) {
			uint64_t t0 = bench_now_ns();

			{
				bip::shared_memory_object shm(bip::create_only, name, bip::read_write);

				shm.truncate(1u << 20);
				bip::mapped_region r(shm, bip::read_write);
				uint64_t *p = static_cast<uint64_t *>(r.get_address());

				p[0] = i;
				if (p[0] != i)
					return bench_fail(run, "segment content lost");
			}
			if (!bip::shared_memory_object::remove(name))
				return bench_fail(run, "shared_memory_object::remove failed");
			if (i >= warm)
				bench_sample(run, bench_now_ns() - t0);
		}
	} catch (const std::exception &e) {
		bip::shared_memory_object::remove(name);
		return bench_fail(run, "shared_memory_object: %s", e.what());
	}
	bench_note(run, "shared_memory_object + mapped_region");
	return 0;
}
BENCH_CASE("segment_create", "boost_region", "ns/seg", segcreate_boost_region);

} // namespace
