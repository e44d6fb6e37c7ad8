/* SPDX-License-Identifier: MIT */
/*
 * Workers: an own-GIL subinterpreter on its own thread, or a process.
 * What port.c needs from the worker*.c files, and what those share.
 */
#ifndef PYSHM_PYMOD_WORKER_H
#define PYSHM_PYMOD_WORKER_H

#include <spawn.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>

#include "port.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

#define WORKER_INTERP	1
#define WORKER_PROCESS	2

/* What a worker says before its target runs (struct worker.started). */
#define WORKER_STARTED_UNKNOWN	0	/* not yet */
#define WORKER_STARTED_TARGET	1	/* the target is about to run */
#define WORKER_STARTED_REFUSED	2	/* an import refused the subinterpreter:
					 * the parent starts a process instead */
#define WORKER_STARTED_ENDED	3	/* it ended without saying */

/* Exit code of a worker ended by terminate() in interpreter mode. */
#define WORKER_TERMINATED_CODE (-15)

/*
 * A worker's resource limits (process mode) and what it used
 * (worker_usage.c). All zero in a new worker: no limits, nothing known.
 */
struct worker_usage {
	unsigned long long max_memory;	/* bytes (RLIMIT_DATA); 0: none */
	double max_cpu;			/* seconds (RLIMIT_CPU); 0: none */
	int report_fd;			/* + 1; read end: the child reports its
					 * target's MemoryError, its peak RSS at exit */
	long long spawn_hwm;		/* our peak RSS as it was spawned */
	long long rss_seen;		/* [L] its peak RSS last read, -1 none */
	bool memory_hit;		/* [L] it did */
	bool join_raised;		/* (GIL) join() raised the WorkerError */
	bool final;			/* [L] cpu_final, rss_final are the last word */
	double cpu_final;		/* [L] seconds */
	long long rss_final;		/* [L] bytes; -1: unknown (interpreter) */
	bool clock_set;			/* [L] interpreter mode: clock is its
					 * thread's CPU clock, cpu_base where it began */
	clockid_t clock;		/* [L] */
	double cpu_base;		/* [L] */
};

struct worker {
	atomic_long refs;
	int mode;
	/* lock guards the fields marked [L]; never held with a worker's GIL
	 * being waited for by the worker itself (see worker_terminate()). */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool running;			/* [L] the interpreter runs its target */
	bool ending;			/* [L] the interpreter is being torn down */
	bool exited;			/* [L] exit_code is final */
	bool terminated;		/* [L] terminate() was asked */
	bool orphaned;			/* [L] the parent's Worker object went
					 * while it ran: parent_end is ours alone */
	int exit_code;			/* [L] */
	/* futex word: set to 1 by terminate(); interruptible sleeps wait on it */
	atomic_uint terminate;
	/* futex word: set to 1 once exit_code is final; join() waits on it */
	atomic_uint done;
	/* futex word (interpreter mode): what the worker said before calling
	 * its target, WORKER_STARTED_*; the parent of an "auto" worker waits
	 * on it before it posts */
	atomic_uint started;
	/* parent side (GIL + the port's rx lock) */
	bool error_seen;		/* an error record was delivered */
	bool eof_seen;			/* the end of the stream was reported */
	struct port *parent_end;	/* closed for the parent when the worker ends */
	/* interpreter mode */
	PyInterpreterState *interp;	/* [L] while running */
	unsigned long thread_id;	/* [L] the worker thread's Python thread id */
	PyThreadState *tstate;		/* [L] the worker thread's, while running */
	int interp_users;		/* [L] terminators inside the interpreter;
					 * it is not ended while there are any */
	bool traced;			/* [L] the stop tracer was set on its threads */
	bool exit_requested;		/* [L] os._exit() was called in it... */
	int exit_request;		/* [L] ...with this code */
	char where[96];			/* [L] where its thread was when last
					 * interrupted ("file:line in function") */
	atomic_bool gil_wait;		/* a terminator waits for its GIL */
	struct port *link;		/* the worker's end, until it takes it */
	char **sys_path;		/* the parent's sys.path, for the new interpreter */
	bool counted;			/* in the spare's count of running workers */
	pthread_mutex_t block_lock;	/* guards blocked[] */
	struct {
		struct pyshm_ring *ring;
		bool producer;		/* waits for room, not for a record */
	} blocked[16];			/* rings the worker sleeps on */
	/* process mode */
	pid_t pid;
	int pidfd;			/* [L] signals and waits without pid reuse
					 * races; closed once the child is reaped */
	int status_fd;			/* forked by the template: where its wait
					 * status and rusage come (-1: our child) */
	int lifeline;			/* write end; the child notices our death */
	int child_waiter;		/* the child's io_uring fd, to wake it */
	struct worker_usage usage;	/* resource limits and usage */
};

/* In a worker interpreter being terminated: raise SystemExit, return -1. */
int worker_check_terminated(pymod_state *st);
/* Register a ring this interpreter sleeps on (as its consumer, or as a
 * @producer waiting for room), so terminate() can wake it. */
void worker_block(pymod_state *st, struct pyshm_ring *ring, bool producer, bool on);
/* Raise WorkerError for an error record's details (a dict). */
void worker_raise_error(pymod_state *st, struct worker *w, PyObject *details);
/* Raise at the end of a worker's stream, once it has exited (TimeoutError
 * if it has not by @deadline, mono_now() seconds, < 0 without limit):
 * WorkerError once for a worker that died without reporting an error, else
 * EOFError. */
void worker_raise_eof(pymod_state *st, struct worker *w, double deadline);
/* Seconds on the monotonic clock. */
double mono_now(void);
void worker_put(struct worker *w);

/* What a thread stopping a worker gets: its reference, and the grace period
 * before it escalates. */
struct stopper {
	struct worker *w;
	double grace;
};

/* Wake the rings the worker sleeps on (it checks for terminate() then). */
void worker_kick_blocked(struct worker *w);
/* Interruptible sleeps, blocked receives and sends of an interpreter worker
 * end (they raise SystemExit): terminate(), os._exit(). */
void worker_interrupt(struct worker *w);
/* Run @fn with a stopper for @w (a new reference) and @grace on a new
 * detached thread; 0 or -errno. */
int worker_start_stopper(void *(*fn)(void *), struct worker *w, double grace);

/* Between worker.c, worker_interp.c and worker_process.c. */
struct worker *worker_new(int mode);
struct worker *worker_get(struct worker *w);
/* What the worker says before its target runs (WORKER_STARTED_*). */
void worker_say_started(struct worker *w, unsigned int what);
/* The worker has ended with @code: wake join()ers, end the parent's stream. */
void worker_finished(struct worker *w, int code);
/* Wrap @w (taking over the caller's reference) in a WorkerHandle. */
PyObject *handle_wrap(pymod_state *st, struct worker *w);
/* Run @fn(@arg) on a new detached thread; 0 or -errno. */
int start_detached(void *(*fn)(void *), void *arg);
/* NULL-terminated string vectors (PyMem_Raw), e.g. sys.path or argv. */
char **strv_from_list(PyObject *list);
void free_strv(char **v);
/* Take the C port out of a MessagePort object (which becomes closed). */
struct port *take_port(pymod_state *st, PyObject *obj);
#if PYMOD_HAVE_SUBINTERPRETERS
/* An interpreter worker ended: a CPU may be free for a spare again. */
void worker_spare_ended(struct worker *w);
/* terminate() of an interpreter worker: a stopper's thread (see
 * worker_interp.c). */
void *worker_terminator_main(void *arg);
#endif

/* The worker of a WorkerHandle object; NULL with TypeError if @obj is none. */
struct worker *handle_worker(pymod_state *st, PyObject *obj);

/* worker_usage.c: process mode, in the parent. Spawn-time: a pipe whose
 * write end the child gets (report[1]) to report on, then @w's limits
 * applied to @pid; 0 or -errno. The monitor records the final usage of the
 * exited (unreaped) child. */
int worker_usage_pipe(struct worker *w, int report[2]);
int worker_usage_apply(struct worker *w, pid_t pid);
void worker_usage_exited(struct worker *w, const struct rusage *ru);
/* Interpreter mode, on the worker's thread as its target starts and ends. */
void worker_usage_thread_start(struct worker *w);
void worker_usage_thread_end(struct worker *w);
/* With a WorkerError of @w's raised: name the resource limit that ended it
 * in its text, if one did. */
void worker_usage_annotate(pymod_state *st, struct worker *w);
/* In a process worker: the fd its parent reads reports from (from the
 * spawn spec). */
void worker_usage_child_fd(int fd);
extern PyMethodDef worker_usage_methods[];

/* Process mode: at most this many fds are passed to a worker. */
#define WORKER_MAX_PASS 10
/* posix_spawn() @argv with @fa (destroyed), no signal blocked and the ones
 * Python ignores back to their defaults; 0 or -errno. */
int worker_spawn(pid_t *pid, char **argv, posix_spawn_file_actions_t *fa);
/* worker_template.c: start a worker from the process template (argv starts
 * it): the @npass fds as its 3.., @spec its argv[-1]. Its pid, a pidfd, and
 * the fd worker_template_status() reads its end from (once it ended: its
 * exit code as exit_code has it, and its rusage); 0 or -errno: -ECHILD when
 * the template got the request (the child may exist: no new start), else
 * spawn it afresh. */
int worker_template_spawn(char **argv, const int *pass, int npass, const char *spec,
			  pid_t *pid, int *pidfd, int *status_fd);
int worker_template_status(int fd, int *code, struct rusage *ru);
/* The socket to this process's template, -1 if none. */
int worker_template_fd(void);
extern PyMethodDef worker_template_methods[];

int worker_init_types(PyObject *mod, pymod_state *st);
extern PyMethodDef worker_module_methods[];
extern PyMethodDef worker_interp_methods[];
extern PyMethodDef worker_process_methods[];
extern PyMethodDef port_module_methods[];

#endif /* PYSHM_PYMOD_WORKER_H */
