// How long work shows itself: a bar on a terminal, one JSON object per line with --json,
// nothing otherwise (logs of provisioning scripts stay readable).
#pragma once

#include <chrono>
#include <ostream>
#include <string>

#include "install/system.hpp"

namespace osu::cli {

class ProgressPrinter {
 public:
  enum class Mode { Plain, Bar, Json };  // Plain: narrative lines only, no bar
  ProgressPrinter(Mode mode, std::ostream& out) : mode_(mode), out_(out) {}
  ~ProgressPrinter() { Finish(); }

  void Update(const Progress& p);
  void Info(const std::string& line);
  void Finish();  // ends the bar's line
  Reporter MakeReporter();

 private:
  Mode mode_;
  std::ostream& out_;
  bool bar_open_ = false;
  int last_percent_ = -1;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_ = {};
};

}  // namespace osu::cli
