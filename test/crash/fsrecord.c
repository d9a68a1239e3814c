// LD_PRELOAD recorder for the crash-state tests: logs every call a program makes that changes
// files under the watched roots (open/create, write/pwrite, truncate, fsync/fdatasync, rename,
// unlink, mkdir, rmdir, close), one line each, tab-separated, to $OSU_FSRECORD_LOG.
//   $OSU_FSRECORD_BYTES  a directory whose files are logged with their bytes (hex): the boot dir
//   $OSU_FSRECORD_EXTENT a file logged as offset+length only: the disk image holding the slots
// A test tool, never installed: os-update itself has no hook for it.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

enum { kNone = 0, kBytes = 1, kExtent = 2 };
enum { kMaxFd = 4096 };

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int log_fd = -1;
static char bytes_root[PATH_MAX];
static char extent_file[PATH_MAX];
static unsigned char watched[kMaxFd];  // kNone / kBytes / kExtent per fd

static void Setup(void) {
  static int done;
  if (done) return;
  done = 1;
  const char* log = getenv("OSU_FSRECORD_LOG");
  const char* b = getenv("OSU_FSRECORD_BYTES");
  const char* e = getenv("OSU_FSRECORD_EXTENT");
  if (b) snprintf(bytes_root, sizeof bytes_root, "%s", b);
  if (e) snprintf(extent_file, sizeof extent_file, "%s", e);
  if (log) log_fd = (int)syscall(SYS_openat, AT_FDCWD, log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
}

static void Emit(const char* fmt, ...) {
  char line[8192];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if (n >= (int)sizeof line) n = (int)sizeof line - 1;
  syscall(SYS_write, log_fd, line, (size_t)n);
}

// What a path (absolute or relative to cwd) is to us.
static int Classify(const char* path, char* abs_out) {
  Setup();
  char abs[PATH_MAX];
  if (path[0] == '/') {
    snprintf(abs, sizeof abs, "%s", path);
  } else {
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd)) return kNone;
    snprintf(abs, sizeof abs, "%s/%s", cwd, path);
  }
  if (abs_out) snprintf(abs_out, PATH_MAX, "%s", abs);
  size_t bl = strlen(bytes_root);
  if (bl && strncmp(abs, bytes_root, bl) == 0 && (abs[bl] == '/' || abs[bl] == 0)) return kBytes;
  if (extent_file[0] && strcmp(abs, extent_file) == 0) return kExtent;
  return kNone;
}

static int ClassifyFd(int fd, char* abs_out) {
  char link[64], target[PATH_MAX];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, target, sizeof target - 1);
  if (n <= 0) return kNone;
  target[n] = 0;
  return Classify(target, abs_out);
}

#define REAL(ret, name, ...) \
  static ret (*real_##name)(__VA_ARGS__); \
  if (!real_##name) real_##name = (ret(*)(__VA_ARGS__))dlsym(RTLD_NEXT, #name)

static void AfterOpen(int fd, int flags) {
  if (fd < 0 || fd >= kMaxFd) return;
  Setup();
  char abs[PATH_MAX];
  int kind = log_fd >= 0 ? ClassifyFd(fd, abs) : kNone;
  pthread_mutex_lock(&lock);
  watched[fd] = (unsigned char)kind;
  if (kind != kNone) Emit("open\t%d\t%x\t%s\n", fd, (unsigned)flags, abs);
  pthread_mutex_unlock(&lock);
}

static void LogPath(const char* op, const char* path) {
  Setup();
  char abs[PATH_MAX];
  if (log_fd < 0 || Classify(path, abs) == kNone) return;
  pthread_mutex_lock(&lock);
  Emit("%s\t%s\n", op, abs);
  pthread_mutex_unlock(&lock);
}

static void LogWrite(int fd, const void* buf, ssize_t n, off_t at) {
  if (n <= 0 || fd < 0 || fd >= kMaxFd || watched[fd] == kNone) return;
  pthread_mutex_lock(&lock);
  if (watched[fd] == kExtent) {
    Emit("write\t%d\t%lld\t%lld\n", fd, (long long)at, (long long)n);
  } else {
    static const char hex[] = "0123456789abcdef";
    char chunk[4096 + 1];
    Emit("write\t%d\t%lld\t%lld\t", fd, (long long)at, (long long)n);
    const unsigned char* p = buf;
    for (ssize_t i = 0; i < n;) {
      int k = 0;
      for (; k < 2048 && i < n; ++i) {
        chunk[k++] = hex[p[i] >> 4];
        chunk[k++] = hex[p[i] & 15];
      }
      syscall(SYS_write, log_fd, chunk, (size_t)k);
    }
    syscall(SYS_write, log_fd, "\n", 1);
  }
  pthread_mutex_unlock(&lock);
}

static void LogFd(const char* op, int fd, long long arg, int with_arg) {
  if (fd < 0 || fd >= kMaxFd || watched[fd] == kNone) return;
  pthread_mutex_lock(&lock);
  if (with_arg)
    Emit("%s\t%d\t%lld\n", op, fd, arg);
  else
    Emit("%s\t%d\n", op, fd);
  pthread_mutex_unlock(&lock);
}

static mode_t ModeArg(int flags, va_list ap) {
  return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? (mode_t)va_arg(ap, int) : 0;
}

// open, open64, openat, openat64: the same wrapper around each (mode only with O_CREAT).
#define OPEN_WRAPPER(name, PARAMS, ARGS)                  \
  int name PARAMS {                                       \
    va_list ap;                                           \
    va_start(ap, flags);                                  \
    mode_t mode = ModeArg(flags, ap);                     \
    va_end(ap);                                           \
    static int(*real_##name) PARAMS;                      \
    if (!real_##name) real_##name = (int(*) PARAMS)dlsym(RTLD_NEXT, #name); \
    int fd = real_##name ARGS;                            \
    if (fd >= 0) AfterOpen(fd, flags);                    \
    return fd;                                            \
  }
OPEN_WRAPPER(open, (const char* path, int flags, ...), (path, flags, mode))
OPEN_WRAPPER(open64, (const char* path, int flags, ...), (path, flags, mode))
OPEN_WRAPPER(openat, (int dirfd, const char* path, int flags, ...), (dirfd, path, flags, mode))
OPEN_WRAPPER(openat64, (int dirfd, const char* path, int flags, ...), (dirfd, path, flags, mode))

int creat(const char* path, mode_t mode) { return open(path, O_CREAT | O_WRONLY | O_TRUNC, mode); }

int close(int fd) {
  REAL(int, close, int);
  if (fd >= 0 && fd < kMaxFd && watched[fd] != kNone) {
    LogFd("close", fd, 0, 0);
    watched[fd] = kNone;
  }
  return real_close(fd);
}

ssize_t write(int fd, const void* buf, size_t len) {
  REAL(ssize_t, write, int, const void*, size_t);
  off_t at = (fd >= 0 && fd < kMaxFd && watched[fd] != kNone) ? lseek(fd, 0, SEEK_CUR) : 0;
  ssize_t n = real_write(fd, buf, len);
  LogWrite(fd, buf, n, at);
  return n;
}

ssize_t pwrite(int fd, const void* buf, size_t len, off_t at) {
  REAL(ssize_t, pwrite, int, const void*, size_t, off_t);
  ssize_t n = real_pwrite(fd, buf, len, at);
  LogWrite(fd, buf, n, at);
  return n;
}

ssize_t pwrite64(int fd, const void* buf, size_t len, off_t at) {
  REAL(ssize_t, pwrite64, int, const void*, size_t, off_t);
  ssize_t n = real_pwrite64(fd, buf, len, at);
  LogWrite(fd, buf, n, at);
  return n;
}

int ftruncate(int fd, off_t len) {
  REAL(int, ftruncate, int, off_t);
  int r = real_ftruncate(fd, len);
  if (r == 0) LogFd("truncate", fd, (long long)len, 1);
  return r;
}

int ftruncate64(int fd, off_t len) {
  REAL(int, ftruncate64, int, off_t);
  int r = real_ftruncate64(fd, len);
  if (r == 0) LogFd("truncate", fd, (long long)len, 1);
  return r;
}

int fsync(int fd) {
  REAL(int, fsync, int);
  int r = real_fsync(fd);
  if (r == 0) LogFd("fsync", fd, 0, 0);
  return r;
}

int fdatasync(int fd) {
  REAL(int, fdatasync, int);
  int r = real_fdatasync(fd);
  if (r == 0) LogFd("fdatasync", fd, 0, 0);
  return r;
}

int rename(const char* from, const char* to) {
  REAL(int, rename, const char*, const char*);
  int r = real_rename(from, to);
  if (r == 0) {
    Setup();
    char a[PATH_MAX], b[PATH_MAX];
    if (log_fd >= 0 && (Classify(from, a) != kNone || Classify(to, b) != kNone)) {
      Classify(from, a);
      Classify(to, b);
      pthread_mutex_lock(&lock);
      Emit("rename\t%s\t%s\n", a, b);
      pthread_mutex_unlock(&lock);
    }
  }
  return r;
}

int unlink(const char* path) {
  REAL(int, unlink, const char*);
  int r = real_unlink(path);
  if (r == 0) LogPath("unlink", path);
  return r;
}

int mkdir(const char* path, mode_t mode) {
  REAL(int, mkdir, const char*, mode_t);
  int r = real_mkdir(path, mode);
  if (r == 0) LogPath("mkdir", path);
  return r;
}

int rmdir(const char* path) {
  REAL(int, rmdir, const char*);
  int r = real_rmdir(path);
  if (r == 0) LogPath("rmdir", path);
  return r;
}

// Calls os-update does not make; refused loudly so a new one cannot slip past the recorder.
static int Unrecorded(const char* what) {
  Setup();
  if (log_fd >= 0) Emit("unrecorded\t%s\n", what);
  errno = ENOSYS;
  return -1;
}
int renameat(int a, const char* f, int b, const char* t) {
  REAL(int, renameat, int, const char*, int, const char*);
  if (Classify(f, NULL) != kNone || Classify(t, NULL) != kNone) return Unrecorded("renameat");
  return real_renameat(a, f, b, t);
}
int renameat2(int a, const char* f, int b, const char* t, unsigned flags) {
  REAL(int, renameat2, int, const char*, int, const char*, unsigned);
  if (Classify(f, NULL) != kNone || Classify(t, NULL) != kNone) return Unrecorded("renameat2");
  return real_renameat2(a, f, b, t, flags);
}
int unlinkat(int d, const char* p, int flags) {
  REAL(int, unlinkat, int, const char*, int);
  if (d == AT_FDCWD) {
    int r = real_unlinkat(d, p, flags);
    if (r == 0) LogPath((flags & AT_REMOVEDIR) ? "rmdir" : "unlink", p);
    return r;
  }
  return Unrecorded("unlinkat");
}
ssize_t pwritev(int fd, const struct iovec* v, int n, off_t at) {
  REAL(ssize_t, pwritev, int, const struct iovec*, int, off_t);
  if (fd >= 0 && fd < kMaxFd && watched[fd] != kNone) return Unrecorded("pwritev");
  return real_pwritev(fd, v, n, at);
}
ssize_t writev(int fd, const struct iovec* v, int n) {
  REAL(ssize_t, writev, int, const struct iovec*, int);
  if (fd >= 0 && fd < kMaxFd && watched[fd] != kNone) return Unrecorded("writev");
  return real_writev(fd, v, n);
}
