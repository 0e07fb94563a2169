/* posix.c - the POSIX functions picolibc declares and a guest has no service for: files by
 * name, directories, processes, pipes and signals. Each fails cleanly, with errno, so that
 * code written for an operating system (interpreters' os and io libraries) links and reports
 * "Function not implemented" at run time. docs/guest.md lists them with their results.
 * (File descriptors, clocks and memory are libc_glue.c's.) */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hyperlight/abi.h"

/* Every leaf that has no service: errno = ENOSYS and the failure value of its type. */
static int no_service(void)
{
    errno = ENOSYS;
    return -1;
}

/* ---- files and directories by name: the guest has no file system ---- */
int unlink(const char *path)
{
    (void)path;
    return no_service();
}

int rename(const char *from, const char *to)
{
    (void)from, (void)to;
    return no_service();
}

int link(const char *from, const char *to)
{
    (void)from, (void)to;
    return no_service();
}

int symlink(const char *target, const char *path)
{
    (void)target, (void)path;
    return no_service();
}

ssize_t readlink(const char *restrict path, char *restrict buf, size_t size)
{
    (void)path, (void)buf, (void)size;
    return no_service();
}

int mkdir(const char *path, mode_t mode)
{
    (void)path, (void)mode;
    return no_service();
}

int rmdir(const char *path)
{
    (void)path;
    return no_service();
}

int chdir(const char *path)
{
    (void)path;
    return no_service();
}

char *getcwd(char *buf, size_t size)
{
    (void)buf, (void)size;
    no_service();
    return NULL;
}

char *realpath(const char *restrict path, char *restrict resolved)
{
    (void)path, (void)resolved;
    no_service();
    return NULL;
}

int chmod(const char *path, mode_t mode)
{
    (void)path, (void)mode;
    return no_service();
}

int utimes(const char *path, const struct timeval times[2])
{
    (void)path, (void)times;
    return no_service();
}

int chown(const char *path, uid_t owner, gid_t group)
{
    (void)path, (void)owner, (void)group;
    return no_service();
}

int lchown(const char *path, uid_t owner, gid_t group)
{
    (void)path, (void)owner, (void)group;
    return no_service();
}

int truncate(const char *path, off_t length)
{
    (void)path, (void)length;
    return no_service();
}

int mkfifo(const char *path, mode_t mode)
{
    (void)path, (void)mode;
    return no_service();
}

int mknod(const char *path, mode_t mode, dev_t dev)
{
    (void)path, (void)mode, (void)dev;
    return no_service();
}

char *mkdtemp(char *template)
{
    (void)template;
    no_service();
    return NULL;
}

/* The file-mode creation mask: kept, though nothing creates files. */
static mode_t file_mask = 022;

mode_t umask(mode_t mask)
{
    mode_t old = file_mask;
    file_mask = mask & 0777;
    return old;
}

/* ---- descriptors the guest cannot make: stdout and stderr are the host's print stream,
 * not a terminal ---- */
int isatty(int fd)
{
    (void)fd;
    errno = ENOTTY;
    return 0;
}

char *ttyname(int fd)
{
    (void)fd;
    errno = ENOTTY;
    return NULL;
}

int dup(int fd)
{
    (void)fd;
    return no_service();
}

int dup2(int fd, int fd2)
{
    (void)fd, (void)fd2;
    return no_service();
}

int pipe(int fds[2])
{
    (void)fds;
    return no_service();
}

int select(int n, fd_set *r, fd_set *w, fd_set *e, struct timeval *timeout)
{
    (void)n, (void)r, (void)w, (void)e, (void)timeout;
    return no_service();
}

/* ---- processes and signals: a sandbox is one process, with no other to signal or wait
 * for. getpid names it (1, like the first process of a system) and never fails. ---- */
pid_t getpid(void) { return 1; }

pid_t getppid(void) { return 0; }

pid_t fork(void) { return no_service(); }

pid_t vfork(void) { return no_service(); }

/* One user, the sandbox's: uid and gid 0. */
uid_t getuid(void) { return 0; }

uid_t geteuid(void) { return 0; }

gid_t getgid(void) { return 0; }

gid_t getegid(void) { return 0; }

int execve(const char *path, char *const argv[], char *const envp[])
{
    (void)path, (void)argv, (void)envp;
    return no_service();
}

int execv(const char *path, char *const argv[])
{
    (void)path, (void)argv;
    return no_service();
}

int execvp(const char *file, char *const argv[])
{
    (void)file, (void)argv;
    return no_service();
}

int execl(const char *path, const char *arg, ...)
{
    (void)path, (void)arg;
    return no_service();
}

int execle(const char *path, const char *arg, ...)
{
    (void)path, (void)arg;
    return no_service();
}

int execlp(const char *file, const char *arg, ...)
{
    (void)file, (void)arg;
    return no_service();
}

pid_t wait(int *status)
{
    (void)status;
    return no_service();
}

pid_t waitpid(pid_t pid, int *status, int options)
{
    (void)pid, (void)status, (void)options;
    return no_service();
}

int kill(pid_t pid, int sig)
{
    (void)pid, (void)sig;
    return no_service();
}

int sigaction(int sig, const struct sigaction *restrict act, struct sigaction *restrict old)
{
    (void)sig, (void)act, (void)old;
    return no_service();
}

int sigprocmask(int how, const sigset_t *set, sigset_t *old)
{
    (void)how, (void)set, (void)old;
    return no_service();
}

/* ---- limits: the few a program asks about, true for every guest ---- */
long sysconf(int name)
{
    switch (name) {
    case _SC_PAGESIZE: return HL_PAGE_SIZE;
    case _SC_NPROCESSORS_CONF:
    case _SC_NPROCESSORS_ONLN: return 1; /* one vCPU */
    default: errno = EINVAL; return -1;
    }
}
