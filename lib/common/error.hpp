// One error type for the whole tool: a kind (which decides the exit code) and a
// message with context, e.g. "Failed to open '/dev/vda3': Permission denied".
#pragma once

#include <cerrno>
#include <string>
#include <utility>
#include <variant>

namespace osu {

// Each kind maps to exactly one exit code, in cli/exit_code.cpp.
enum class ErrorKind {
  Usage,         // bad command line or config                      -> 1
  Verification,  // signature, hash, size, compatible, downgrade    -> 2
  Source,        // source missing, network, truncated transfer     -> 3
  State,         // refused by state: trial, lock, no valid target  -> 4
  Device,        // block device, file system, I/O                  -> 5
};

class Error {
 public:
  Error(ErrorKind kind, std::string message) : kind_(kind), message_(std::move(message)) {}

  ErrorKind kind() const { return kind_; }
  const std::string& message() const { return message_; }

  // Prefix context: Error(..., "Permission denied").Context("Failed to open '/x'")
  Error Context(const std::string& what) const { return Error(kind_, what + ": " + message_); }

 private:
  ErrorKind kind_;
  std::string message_;
};

inline Error UsageError(std::string m) { return Error(ErrorKind::Usage, std::move(m)); }
inline Error VerificationError(std::string m) { return Error(ErrorKind::Verification, std::move(m)); }
inline Error SourceError(std::string m) { return Error(ErrorKind::Source, std::move(m)); }
inline Error StateError(std::string m) { return Error(ErrorKind::State, std::move(m)); }
inline Error DeviceError(std::string m) { return Error(ErrorKind::Device, std::move(m)); }

// "what: strerror(errno)" as an error of the given kind (default: device / I/O).
Error ErrnoError(const std::string& what, int err = errno, ErrorKind kind = ErrorKind::Device);

template <class T>
class [[nodiscard]] Expected {
 public:
  Expected(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Expected(Error error) : v_(std::move(error)) {}  // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Expected<void> {
 public:
  Expected() = default;
  Expected(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return error_; }

 private:
  Error error_{ErrorKind::Device, ""};
  bool ok_ = true;
};

using Result = Expected<void>;

}  // namespace osu
