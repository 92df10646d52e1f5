/*
 * A single-threaded PAM-caller stand-in for the nsjoin tests (amd64).
 *
 *   caller plain|signal|signal-eintr ITERATIONS HELPER NETNS...
 *
 * Each iteration runs HELPER (the test binary in join mode) with
 * NSJOIN_TEST_NETNS set to the next NETNS, and waits for it with a raw
 * wait4 whose every register holds a known value and whose stack is a
 * pattern-filled buffer. After the wait it checks that the registers the
 * kernel preserves across a syscall, the whole stack buffer, the fd count
 * and the namespace (its own and a new child's) are as they must be.
 * In the signal modes the helper sends SIGUSR1 while it is attached; the
 * handler (on an alternate stack) must run exactly once per join, and the
 * wait must restart (SA_RESTART, "signal") or fail with EINTR
 * ("signal-eintr"), as it would have without the join. With
 * NSJOIN_TEST_MOUNT set (the helper then joins that mount namespace too), it
 * also checks that it is in that mount namespace and that its working
 * directory is still the one it started in.
 *
 *   caller report WAIT HELPER NETNS...
 *
 * runs HELPER once per NETNS, waiting for it the way WAIT says, and reports
 * what the join did to it on one line per run, "caller: run=N status=S
 * fds-before=A fds-after=B self=DEV:INO child=DEV:INO mnt=DEV:INO
 * cwdid=DEV:INO cwd=PATH", for the test to judge: mnt is its mount namespace,
 * cwdid and cwd its working directory and the kernel's name for it
 * (/proc/self/cwd, last as it may hold spaces). WAIT is "pid" (wait4 on the
 * helper, as pam_exec does), "waitid" (waitid P_PID), "any" (wait4 on any
 * child, as a shell or a reaper does), "waitid-all" (waitid P_ALL), or
 * "stdout" (reads the helper's output to its end before wait4 on it, as
 * pam_exec's stdout option does). With NSJOIN_TEST_GATE set, each run first
 * waits for a line on stdin.
 *
 *   caller orphan WAIT HELPER NETNS
 *
 * is a child subreaper (PR_SET_CHILD_SUBREAPER) whose child starts HELPER
 * with NSJOIN_TEST_KILL_PARENT set and waits for it: the helper pins that
 * child, kills it and so becomes the orphan of this process, which waits for
 * it the way WAIT ("pid" or "any") says and reports as above.
 *
 * With NSJOIN_TEST_EXPECT_FAIL set, plain and signal modes want every join
 * to fail, and check, besides the registers, stack, fds and signals, that
 * the caller is still in the network and mount namespaces, the root and the
 * working directory it started in.
 *
 * In every mode the caller first changes to the directory NSJOIN_TEST_CWD if
 * that is set, and then removes it if NSJOIN_TEST_CWD_RMDIR is set too. With
 * NSJOIN_TEST_DENY_NETNS_SETNS set, it then confines itself with a seccomp
 * filter under which setns(fd, CLONE_NEWNET) fails with EPERM, as a service
 * whose systemd unit restricts namespaces would be.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define PATTERN 0xa5
#define NREGS 14

/* raw_wait4 and the values it loads; after_regs gets, in this order:
 * rax rbx rbp r12 r13 r14 r15 r8 r9 r10 rdx rdi rsi rsp. */
long raw_wait4(long pid, int *status, void *stack_top);
uint64_t after_regs[NREGS];
uint64_t caller_rsp;

__asm__(
	"	.text\n"
	"	.globl raw_wait4\n"
	"	.type raw_wait4, @function\n"
	"raw_wait4:\n"
	"	pushq %rbx\n"
	"	pushq %rbp\n"
	"	pushq %r12\n"
	"	pushq %r13\n"
	"	pushq %r14\n"
	"	pushq %r15\n"
	"	movq %rsp, caller_rsp(%rip)\n"
	"	movq %rdx, %rsp\n"
	"	xorl %edx, %edx\n"  /* options */
	"	xorl %r10d, %r10d\n" /* rusage */
	"	movabsq $0x1111111111111111, %rbx\n"
	"	movabsq $0x2222222222222222, %rbp\n"
	"	movabsq $0x3333333333333333, %r12\n"
	"	movabsq $0x4444444444444444, %r13\n"
	"	movabsq $0x5555555555555555, %r14\n"
	"	movabsq $0x6666666666666666, %r15\n"
	"	movabsq $0x7777777777777777, %r8\n"
	"	movabsq $0x8888888888888888, %r9\n"
	"	movl $61, %eax\n"
	"	syscall\n"
	"	movq %rax, after_regs+0(%rip)\n"
	"	movq %rbx, after_regs+8(%rip)\n"
	"	movq %rbp, after_regs+16(%rip)\n"
	"	movq %r12, after_regs+24(%rip)\n"
	"	movq %r13, after_regs+32(%rip)\n"
	"	movq %r14, after_regs+40(%rip)\n"
	"	movq %r15, after_regs+48(%rip)\n"
	"	movq %r8, after_regs+56(%rip)\n"
	"	movq %r9, after_regs+64(%rip)\n"
	"	movq %r10, after_regs+72(%rip)\n"
	"	movq %rdx, after_regs+80(%rip)\n"
	"	movq %rdi, after_regs+88(%rip)\n"
	"	movq %rsi, after_regs+96(%rip)\n"
	"	movq %rsp, after_regs+104(%rip)\n"
	"	movq caller_rsp(%rip), %rsp\n"
	"	popq %r15\n"
	"	popq %r14\n"
	"	popq %r13\n"
	"	popq %r12\n"
	"	popq %rbp\n"
	"	popq %rbx\n"
	"	ret\n");

static const char *reg_names[NREGS] = {"rax", "rbx", "rbp", "r12", "r13", "r14", "r15",
				       "r8",  "r9",  "r10", "rdx", "rdi", "rsi", "rsp"};

static unsigned char wait_stack[1 << 16] __attribute__((aligned(16)));
static volatile sig_atomic_t handled;

static void on_usr1(int sig)
{
	(void)sig;
	handled++;
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static int same_file(const char *a, const char *b)
{
	struct stat sa, sb;

	return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* same_as tells whether path is the file that was want when stated. */
static int same_as(const char *path, const struct stat *want)
{
	struct stat st;

	return stat(path, &st) == 0 && st.st_dev == want->st_dev && st.st_ino == want->st_ino;
}

/* child_in runs a new child and tells whether it starts in netns. */
static int child_in(const char *netns)
{
	int status;
	pid_t pid = fork();

	if (pid == 0)
		_exit(same_file("/proc/self/ns/net", netns) ? 0 : 1);
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return 0;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static int fail(int iter, const char *what)
{
	printf("caller: iteration %d: %s\n", iter, what);
	return 1;
}

/* netns_of formats the namespace of path as DEV:INO, as stat -L -c %d:%i does. */
static void netns_of(const char *path, char *buf, size_t len)
{
	struct stat st;

	if (stat(path, &st) != 0)
		snprintf(buf, len, "?");
	else
		snprintf(buf, len, "%llu:%llu", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
}

/* child_netns runs a new child and returns the namespace it starts in. */
static void child_netns(char *buf, size_t len)
{
	int fds[2], status;
	ssize_t n;
	pid_t pid;

	snprintf(buf, len, "?");
	if (pipe(fds) != 0)
		return;
	pid = fork();
	if (pid == 0) {
		char own[64];

		netns_of("/proc/self/ns/net", own, sizeof(own));
		n = write(fds[1], own, strlen(own));
		_exit(n < 0);
	}
	close(fds[1]);
	n = read(fds[0], buf, len - 1);
	buf[n > 0 ? n : 0] = 0;
	close(fds[0]);
	if (pid > 0)
		waitpid(pid, &status, 0);
}

/* await waits for helper pid the way style says and returns its status, or -1. */
static int await(const char *style, pid_t pid, int out)
{
	siginfo_t info;
	int status;

	if (strcmp(style, "stdout") == 0) {
		char buf[4096];
		ssize_t n;

		while ((n = read(out, buf, sizeof(buf))) > 0)
			fwrite(buf, 1, n, stdout);
		close(out);
		fflush(stdout);
	}
	if (strcmp(style, "pid") == 0 || strcmp(style, "stdout") == 0)
		return waitpid(pid, &status, 0) == pid ? status : -1;
	if (strcmp(style, "any") == 0)
		return wait4(-1, &status, 0, NULL) == pid ? status : -1;
	memset(&info, 0, sizeof(info));
	if (strcmp(style, "waitid") == 0 && waitid(P_PID, pid, &info, WEXITED) != 0)
		return -1;
	if (strcmp(style, "waitid-all") == 0 && waitid(P_ALL, 0, &info, WEXITED) != 0)
		return -1;
	if (info.si_pid != pid)
		return -1;
	return info.si_code == CLD_EXITED ? info.si_status << 8 : info.si_status;
}

/* cwd_of reads the working directory as /proc/self/cwd names it. */
static void cwd_of(char *buf, size_t len)
{
	ssize_t n = readlink("/proc/self/cwd", buf, len - 1);

	buf[n > 0 ? n : 0] = 0;
}

static void report(int run, int status, int fds_before)
{
	char self[64], child[64], mnt[64], cwdid[64], cwd[4096];

	netns_of("/proc/self/ns/net", self, sizeof(self));
	child_netns(child, sizeof(child));
	netns_of("/proc/self/ns/mnt", mnt, sizeof(mnt));
	netns_of(".", cwdid, sizeof(cwdid));
	cwd_of(cwd, sizeof(cwd));
	printf("caller: run=%d status=%d fds-before=%d fds-after=%d self=%s child=%s mnt=%s cwdid=%s cwd=%s\n", run,
	       status, fds_before, count_fds(), self, child, mnt, cwdid, cwd);
}

/* enter_cwd changes to $NSJOIN_TEST_CWD, and removes it if asked to. */
static int enter_cwd(void)
{
	const char *dir = getenv("NSJOIN_TEST_CWD");

	if (!dir)
		return 0;
	if (chdir(dir) != 0) {
		perror("caller: chdir");
		return -1;
	}
	if (getenv("NSJOIN_TEST_CWD_RMDIR") && rmdir(dir) != 0) {
		perror("caller: rmdir");
		return -1;
	}
	return 0;
}

static int report_main(const char *style, char *helper, char **netns, int nnetns)
{
	int gated = getenv("NSJOIN_TEST_GATE") != NULL;

	for (int i = 0; i < nnetns; i++) {
		int out[2] = {-1, -1}, fds_before, status;
		pid_t pid;

		if (gated) {
			char line[64];

			if (!fgets(line, sizeof(line), stdin))
				return 1;
		}
		setenv("NSJOIN_TEST_NETNS", netns[i], 1);
		fds_before = count_fds();
		if (strcmp(style, "stdout") == 0 && pipe(out) != 0)
			return 1;
		fflush(stdout);
		pid = fork();
		if (pid < 0)
			return 1;
		if (pid == 0) {
			if (out[1] >= 0 && (dup2(out[1], 1) < 0 || close(out[0]) != 0 || close(out[1]) != 0))
				_exit(127);
			execl(helper, helper, (char *)NULL);
			_exit(127);
		}
		if (out[1] >= 0)
			close(out[1]);
		status = await(style, pid, out[0]);
		report(i, status, fds_before);
	}
	return 0;
}

static int orphan_main(const char *style, char *helper, char *netns)
{
	int fds[2], status, fds_before;
	pid_t middle, helper_pid = 0;

	fds_before = count_fds();
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0 || pipe(fds) != 0)
		return 1;
	setenv("NSJOIN_TEST_NETNS", netns, 1);
	setenv("NSJOIN_TEST_KILL_PARENT", "1", 1);
	fflush(stdout);
	middle = fork();
	if (middle < 0)
		return 1;
	if (middle == 0) {
		/* The caller the helper pins: it starts the helper and waits
		 * for it as pam_exec does, until the helper kills it. */
		pid_t pid = fork();

		if (pid == 0) {
			close(fds[0]);
			close(fds[1]);
			execl(helper, helper, (char *)NULL);
			_exit(127);
		}
		if (pid < 0 || write(fds[1], &pid, sizeof(pid)) != sizeof(pid))
			_exit(1);
		waitpid(pid, &status, 0);
		_exit(0);
	}
	close(fds[1]);
	if (read(fds[0], &helper_pid, sizeof(helper_pid)) != sizeof(helper_pid))
		return 1;
	close(fds[0]);
	if (waitpid(middle, &status, 0) != middle || !WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL) {
		printf("caller: the helper's parent was not killed (status %#x)\n", status);
		return 1;
	}
	status = await(style, helper_pid, -1);
	report(0, status, fds_before);
	return 0;
}

/* deny_netns_setns makes setns(fd, CLONE_NEWNET) fail with EPERM, and
 * nothing else. */
static int deny_netns_setns(void)
{
	struct sock_filter filter[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_setns, 0, 3),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[1])),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, CLONE_NEWNET, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {.len = sizeof(filter) / sizeof(filter[0]), .filter = filter};

	if (!getenv("NSJOIN_TEST_DENY_NETNS_SETNS"))
		return 0;
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
		perror("caller: seccomp");
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	int signal_mode, restart, iterations, nnetns, expect_fail;
	char *helper, **netns, cwd_before[4096], cwd_after[4096];
	const char *mount;
	struct stat start_net, start_mnt, start_root, start_cwd;

	if (argc < 5) {
		fprintf(stderr, "usage: caller plain|signal|signal-eintr ITERATIONS HELPER NETNS...\n"
				"       caller report pid|waitid|any|waitid-all|stdout HELPER NETNS...\n"
				"       caller orphan pid|any HELPER NETNS\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (enter_cwd() != 0 || deny_netns_setns() != 0)
		return 1;
	if (strcmp(argv[1], "report") == 0)
		return report_main(argv[2], argv[3], argv + 4, argc - 4);
	if (strcmp(argv[1], "orphan") == 0)
		return orphan_main(argv[2], argv[3], argv[4]);
	signal_mode = strncmp(argv[1], "signal", 6) == 0;
	restart = strcmp(argv[1], "signal-eintr") != 0;
	iterations = atoi(argv[2]);
	helper = argv[3];
	netns = argv + 4;
	nnetns = argc - 4;
	mount = getenv("NSJOIN_TEST_MOUNT");
	expect_fail = getenv("NSJOIN_TEST_EXPECT_FAIL") != NULL;
	cwd_of(cwd_before, sizeof(cwd_before));
	if (stat("/proc/self/ns/net", &start_net) != 0 || stat("/proc/self/ns/mnt", &start_mnt) != 0 ||
	    stat("/", &start_root) != 0 || stat(".", &start_cwd) != 0) {
		perror("caller: stat");
		return 1;
	}

	if (signal_mode) {
		static unsigned char alt[1 << 16];
		stack_t ss = {.ss_sp = alt, .ss_size = sizeof(alt)};
		struct sigaction sa = {.sa_handler = on_usr1, .sa_flags = SA_ONSTACK | (restart ? SA_RESTART : 0)};

		if (sigaltstack(&ss, NULL) != 0 || sigaction(SIGUSR1, &sa, NULL) != 0) {
			perror("caller: setting up SIGUSR1");
			return 1;
		}
	}

	for (int i = 0; i < iterations; i++) {
		const char *target = netns[i % nnetns];
		unsigned char *top = wait_stack + sizeof(wait_stack) / 2;
		int status = -1, fds_before, fds_after;
		char msg[256];
		long ret;
		pid_t pid;

		setenv("NSJOIN_TEST_NETNS", target, 1);
		fds_before = count_fds();
		pid = fork();
		if (pid < 0)
			return fail(i, "fork failed");
		if (pid == 0) {
			execl(helper, helper, (char *)NULL);
			_exit(127);
		}

		memset(wait_stack, PATTERN, sizeof(wait_stack));
		ret = raw_wait4(pid, &status, top);

		long want_ret = restart ? pid : -EINTR;
		if (ret != want_ret) {
			snprintf(msg, sizeof(msg), "wait4 returned %ld, want %ld", ret, want_ret);
			return fail(i, msg);
		}
		if (!restart && waitpid(pid, &status, 0) != pid)
			return fail(i, "reaping the helper failed");
		if (!WIFEXITED(status) || (WEXITSTATUS(status) != 0) != expect_fail) {
			snprintf(msg, sizeof(msg), "helper status %#x, want it to %s", status, expect_fail ? "fail" : "succeed");
			return fail(i, msg);
		}
		uint64_t want[NREGS] = {
			(uint64_t)want_ret,  0x1111111111111111, 0x2222222222222222, 0x3333333333333333,
			0x4444444444444444, 0x5555555555555555, 0x6666666666666666, 0x7777777777777777,
			0x8888888888888888, 0,			 0,			 (uint64_t)pid,
			(uint64_t)(uintptr_t)&status, (uint64_t)(uintptr_t)top,
		};
		for (int r = 0; r < NREGS; r++) {
			if (after_regs[r] != want[r]) {
				snprintf(msg, sizeof(msg), "%s = %#llx, want %#llx", reg_names[r],
					 (unsigned long long)after_regs[r], (unsigned long long)want[r]);
				return fail(i, msg);
			}
		}
		for (size_t b = 0; b < sizeof(wait_stack); b++) {
			if (wait_stack[b] != PATTERN) {
				snprintf(msg, sizeof(msg), "stack byte at top%+ld changed to %#x",
					 (long)(wait_stack + b - top), wait_stack[b]);
				return fail(i, msg);
			}
		}
		fds_after = count_fds();
		if (fds_after != fds_before) {
			snprintf(msg, sizeof(msg), "fd count %d, was %d", fds_after, fds_before);
			return fail(i, msg);
		}
		if (expect_fail) {
			if (!same_as("/proc/self/ns/net", &start_net))
				return fail(i, "caller left its network namespace");
			if (!same_as("/proc/self/ns/mnt", &start_mnt))
				return fail(i, "caller left its mount namespace");
			if (!same_as("/", &start_root))
				return fail(i, "caller has another root");
			if (!same_as(".", &start_cwd))
				return fail(i, "caller left its working directory");
		} else {
			if (!same_file("/proc/self/ns/net", target))
				return fail(i, "caller is not in the target namespace");
			if (!child_in(target))
				return fail(i, "a new child is not in the target namespace");
			if (mount && !same_file("/proc/self/ns/mnt", mount))
				return fail(i, "caller is not in the mount namespace");
		}
		cwd_of(cwd_after, sizeof(cwd_after));
		if (strcmp(cwd_after, cwd_before) != 0) {
			snprintf(msg, sizeof(msg), "working directory %.100s, was %.100s", cwd_after, cwd_before);
			return fail(i, msg);
		}
		if (signal_mode && handled != i + 1) {
			snprintf(msg, sizeof(msg), "SIGUSR1 handled %d times, want %d", (int)handled, i + 1);
			return fail(i, msg);
		}
	}
	printf("caller: ok %d\n", iterations);
	return 0;
}
