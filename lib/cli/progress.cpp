#include "cli/progress.hpp"

#include <cstdio>

#include "common/json.hpp"
#include "common/text.hpp"

namespace osu::cli {

void ProgressPrinter::Update(const Progress& p) {
  if (mode_ == Mode::Plain) return;
  const auto now = std::chrono::steady_clock::now();
  int percent = p.total ? static_cast<int>(p.done * 100 / p.total) : -1;
  // At most ~10 updates a second, and only when something visible changed.
  if (percent == last_percent_ && now - last_ < std::chrono::milliseconds(500)) return;
  if (now - last_ < std::chrono::milliseconds(100) && percent != 100) return;
  last_ = now;
  last_percent_ = percent;
  const double secs = std::chrono::duration<double>(now - start_).count();
  const double rate = secs > 0 ? static_cast<double>(p.done) / secs / 1e6 : 0;
  if (mode_ == Mode::Json) {
    out_ << Json::MakeObject()
                .Set("event", "progress")
                .Set("phase", p.phase)
                .Set("done", p.done)
                .Set("total", p.total)
                .Set("mb_per_s", rate)
                .Dump()
         << std::endl;
    return;
  }
  constexpr int kWidth = 30;
  int filled = percent < 0 ? 0 : percent * kWidth / 100;
  char line[160];
  std::snprintf(line, sizeof line, "\r%-6s [%-*s] %3d%%  %7.1f MiB  %6.1f MB/s", p.phase.c_str(),
                kWidth, std::string(static_cast<size_t>(filled), '#').c_str(),
                percent < 0 ? 0 : percent, static_cast<double>(p.done) / 1048576.0, rate);
  out_ << line << std::flush;
  bar_open_ = true;
}

void ProgressPrinter::Info(const std::string& line) {
  if (mode_ == Mode::Json) {
    out_ << Json::MakeObject().Set("event", "info").Set("message", Printable(line)).Dump()
         << std::endl;
    return;
  }
  Finish();
  out_ << Printable(line) << std::endl;
}

void ProgressPrinter::Finish() {
  if (bar_open_) out_ << std::endl;
  bar_open_ = false;
}

Reporter ProgressPrinter::MakeReporter() {
  Reporter r;
  r.progress = [this](const Progress& p) { Update(p); };
  r.info = [this](const std::string& line) { Info(line); };
  return r;
}

}  // namespace osu::cli
